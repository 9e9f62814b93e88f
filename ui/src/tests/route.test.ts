import { describe, expect, it } from "vitest";
import { MAX_POINTS, drawRoute } from "../lib/route";

describe("route drawing", () => {
  it("fits the route in the box, north up, proportions kept", () => {
    // A run due north, then due east for the same ground distance at 60°N.
    const points = [
      { lat: 60, lon: 10 },
      { lat: 60.01, lon: 10 },
      { lat: 60.01, lon: 10.02 },
    ];
    const drawing = drawRoute(points, 300, 300, 0);
    expect(drawing).not.toBeNull();
    const [sx, sy] = drawing!.start;
    const [ex, ey] = drawing!.end;
    expect(sy).toBeGreaterThan(ey); // went north: up the screen
    expect(ex).toBeGreaterThan(sx); // then east: to the right
    // 0.02° of longitude at 60°N is as long as 0.01° of latitude: a square.
    expect(Math.abs(ex - sx - (sy - ey))).toBeLessThan(2);
    expect(drawing!.d.startsWith("M")).toBe(true);
  });

  it("needs two usable points and thins long routes", () => {
    expect(drawRoute([{ lat: 1, lon: 1 }], 100, 100)).toBeNull();
    expect(drawRoute([{ lat: NaN, lon: 1 }, { lat: 1, lon: 1 }], 100, 100)).toBeNull();
    const many = Array.from({ length: 10_000 }, (_, i) => ({ lat: 50 + i * 1e-5, lon: 8 }));
    const drawing = drawRoute(many, 100, 100);
    const segments = drawing!.d.split(" L").length;
    expect(segments).toBeLessThanOrEqual(MAX_POINTS + 1);
  });
});
