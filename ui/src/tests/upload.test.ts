import { describe, expect, it } from "vitest";
import type { ImportEvent } from "../bindings/ImportEvent";
import {
  comparison,
  describeSend,
  fold,
  notStarted,
  outcomeWords,
  retryingIn,
  stageWords,
  type Sending,
} from "../lib/upload";

const run = (events: ImportEvent[], now = 0): Sending => events.reduce((s, e) => fold(s, e, now), notStarted);

const server = (stage: string, status: string, items: number | null, total: number | null): ImportEvent => ({
  type: "step",
  data: {
    step: "server",
    piece: 1,
    event: {
      event_id: null,
      run_id: "r1",
      stage,
      status,
      message: null,
      progress: null,
      items_processed: items,
      items_total: total,
      error: null,
      metadata: null,
    },
  },
});

describe("an import's events", () => {
  it("show bytes, rate, time left and part i of N while sending", () => {
    const s = run([
      { type: "step", data: { step: "plan", method: "multipart", pieces: 1, why: "the server takes multipart uploads" } },
      { type: "step", data: { step: "sending", piece: 1, pieces: 1, bytes: 100_000_000 } },
      {
        type: "progress",
        data: { event: "advanced", phase: "upload", done: 25_000_000, total: 100_000_000, rate: 5_000_000, eta_secs: 15, part: { index: 3, count: 12 } },
      },
    ]);
    expect(s.plan?.method).toBe("multipart");
    expect(describeSend(s, 0)).toEqual({
      title: "Sending 25 %",
      detail: "25.0 MB of 100 MB · 5.0 MB/s · 15 s left · part 3 of 12",
    });
  });

  it("say a network hiccup is a retry with a countdown, not a failure", () => {
    const s = run(
      [
        { type: "step", data: { step: "sending", piece: 1, pieces: 1, bytes: 10 } },
        { type: "progress", data: { event: "retrying", phase: "upload", attempt: 1, delay_ms: 4000, reason: "connection reset" } },
      ],
      1000,
    );
    expect(retryingIn(s, 1000)).toBe(4);
    expect(describeSend(s, 2100).title).toBe("Retrying in 3 s");
    const moving = fold(s, { type: "progress", data: { event: "advanced", phase: "upload", done: 5, total: 10, rate: 1, eta_secs: 5, part: null } }, 6000);
    expect(retryingIn(moving, 6000)).toBeNull();
  });

  it("keep each server stage once, with its latest counts, then the comparison", () => {
    const s = run([
      server("queued", "pending", null, null),
      server("processing", "in_progress", 100, 400),
      server("processing", "in_progress", 400, 400),
      server("completed", "success", 400, 400),
      { type: "step", data: { step: "compared", found: 1204, expected: 1204 } },
    ]);
    expect(s.stages.map((x) => x.stage)).toEqual(["queued", "processing", "completed"]);
    expect(s.stages[1]?.items).toBe(400);
    expect(s.phase).toBe("done");
    expect(s.serverError).toBeNull();
    expect(describeSend(s, 0).detail).toBe("1,204 of 1,204 workouts imported");
    expect(s.stages.map(stageWords)).toEqual([
      "Queued",
      "Processing — 400 of 400 items",
      "Completed — 400 of 400 items",
    ]);
  });

  it("name a stage in words, with the status only when it says more", () => {
    const words = (stage: string, status: string, message: string | null) =>
      stageWords({ stage, status, items: null, total: null, message });
    expect(words("queued", "in_progress", "Waiting to be processed")).toBe("Queued — Waiting to be processed");
    expect(words("processing", "failed", null)).toBe("Processing — failed");
    expect(words("failed", "failed", "XML parse error")).toBe("Failed — XML parse error");
  });

  it("report the server's failure in its words", () => {
    const failed = server("failed", "failed", null, null);
    if (failed.type === "step" && failed.data.step === "server") failed.data.event.error = "XML parse error at line 3";
    expect(run([failed]).serverError).toBe("XML parse error at line 3");
    expect(comparison({ found: 1, expected: 1 })).toBe("1 of 1 workout imported");
  });
});

describe("a server that says nothing", () => {
  const waiting: ImportEvent = { type: "step", data: { step: "waiting", names: ["owi-1-a.xml"], silence_secs: 120 } };
  const arriving = (workouts: number, samples: number | null): ImportEvent => ({
    type: "step",
    data: { step: "arriving", on_server: { workouts, samples }, workouts: 2000, samples: 61000 },
  });

  it("shows the data arriving while it imports", () => {
    const s = run([waiting, arriving(0, 0), arriving(1204, 52301)]);
    expect(s.phase).toBe("server");
    expect(describeSend(s, 0)).toEqual({
      title: "The server is importing",
      detail: "1,204 of 2,000 workouts · 52,301 of 61,000 samples on the server",
    });
  });

  it("leaves the upload awaiting the server, and History says so", () => {
    const s = run([
      waiting,
      arriving(0, 0),
      { type: "step", data: { step: "awaiting", keys: ["u/raw/owi-1-a.xml"], waited_secs: 120 } },
    ]);
    expect(s.phase).toBe("awaiting");
    expect(s.awaiting).toEqual({ keys: ["u/raw/owi-1-a.xml"], waited: 120 });
    expect(describeSend(s, 0).title).toBe("Uploaded — awaiting the server");
    expect(outcomeWords("sent")).toBe("uploaded, awaiting the server");
    expect(outcomeWords("imported")).toBe("imported");
  });
});
