import { describe, expect, it } from "vitest";
import type { Progress } from "../bindings/Progress";
import { advance, describe as words, fraction, idle } from "../lib/progress";

describe("progress bar", () => {
  it("follows an ingest from start to indexes", () => {
    const events: Progress[] = [
      { event: "started", phase: "ingest", total: 1_000_000_000 },
      { event: "advanced", phase: "ingest", done: 250_000_000, total: 1_000_000_000, rate: 200_000_000, eta_secs: 3.75, part: null },
    ];
    const bar = events.reduce(advance, idle);
    expect(fraction(bar)).toBe(0.25);
    expect(words(bar)).toEqual({ title: "Reading 25 %", detail: "250 MB of 1.0 GB · 200 MB/s · 4 s left" });

    const indexing = [
      { event: "finished", phase: "ingest", done: 1_000_000_000, elapsed_ms: 5000 },
      { event: "started", phase: "index", total: null },
      { event: "stage", phase: "index", message: "building indexes" },
    ] satisfies Progress[];
    const later = indexing.reduce(advance, bar);
    expect(fraction(later)).toBeNull();
    expect(words(later)).toEqual({ title: "Finishing", detail: "building indexes" });
  });

  it("says it is starting before the first event", () => {
    expect(words(idle).title).toBe("Starting");
    expect(fraction(idle)).toBeNull();
  });
});
