import { describe, expect, it } from "vitest";
import { scrollToRow, visibleRows } from "../lib/virtual";

describe("virtual rows", () => {
  it("renders only the rows in view plus a margin", () => {
    const w = visibleRows(3200, 400, 32, 10_000, 5);
    expect(w.start).toBe(95);
    expect(w.end).toBe(118);
    expect(w.offset).toBe(95 * 32);
    expect(w.height).toBe(320_000);
  });

  it("stays inside the list at both ends", () => {
    expect(visibleRows(0, 400, 32, 3, 5)).toEqual({ start: 0, end: 3, offset: 0, height: 96 });
    const bottom = visibleRows(1e9, 400, 32, 1000, 5);
    expect(bottom.end).toBe(1000);
    expect(visibleRows(0, 400, 32, 0)).toEqual({ start: 0, end: 0, offset: 0, height: 0 });
  });

  it("scrolls just enough to show a row", () => {
    expect(scrollToRow(0, 320, 400, 32)).toBe(0);
    expect(scrollToRow(20, 0, 400, 32)).toBe(21 * 32 - 400);
    expect(scrollToRow(5, 0, 400, 32)).toBe(0);
  });
});
