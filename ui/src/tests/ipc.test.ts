import { afterEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import type { Channel } from "@tauri-apps/api/core";
import { tauriBackend } from "../ipc";
import type { Progress } from "../bindings/Progress";
import { exportInfo, summary } from "./fixtures";

afterEach(() => clearMocks());

describe("the IPC wrapper", () => {
  it("sends each command its request under the names the Rust side reads", async () => {
    const calls: [string, unknown][] = [];
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "export_summary") return summary(7);
      if (cmd === "list_workouts") return [];
      if (cmd === "daily_series") return { kind: "x", name: "x", unit: null, aggregation: "sum", days: [] };
      return null;
    });
    await tauriBackend.exportSummary(7);
    await tauriBackend.listWorkouts(7, { activity_type: null, from_day: 1, to_day: null, sort: "distance", descending: true });
    await tauriBackend.workoutDetail(12);
    await tauriBackend.dailySeries({ export_id: 7, kind: "k", from_day: null, to_day: null });
    await tauriBackend.cancelOperation("op-1");
    await tauriBackend.checkExport("/tmp/a.zip");
    expect(calls).toEqual([
      ["export_summary", { request: { export_id: 7 } }],
      [
        "list_workouts",
        {
          request: {
            export_id: 7,
            filter: { activity_type: null, from_day: 1, to_day: null, sort: "distance", descending: true },
          },
        },
      ],
      ["workout_detail", { request: { workout_id: 12 } }],
      ["daily_series", { request: { export_id: 7, kind: "k", from_day: null, to_day: null } }],
      ["cancel_operation", { request: { operation: "op-1" } }],
      ["check_export", { request: { path: "/tmp/a.zip" } }],
    ]);
  });

  it("streams progress over a channel while the export opens", async () => {
    mockIPC((cmd, args) => {
      expect(cmd).toBe("open_export");
      const { request, onProgress } = args as { request: unknown; onProgress: Channel<Progress> };
      expect(request).toEqual({ path: "/tmp/export.zip", operation: "op-9", force: false });
      onProgress.onmessage({ event: "started", phase: "ingest", total: 100 });
      onProgress.onmessage({ event: "advanced", phase: "ingest", done: 50, total: 100, rate: 10, eta_secs: 5, part: null });
      return { export: exportInfo(3), reused: false, seconds: 1.5 };
    });
    const seen: Progress[] = [];
    const opened = await tauriBackend.openExport("/tmp/export.zip", "op-9", (p) => seen.push(p));
    expect(opened.export.id).toBe(3);
    expect(seen.map((p) => p.event)).toEqual(["started", "advanced"]);
  });

  it("rejects with {kind, message} whatever the failure", async () => {
    mockIPC((cmd) => {
      if (cmd === "export_summary") throw { kind: "not_found", message: "no export with id 4" };
      throw new Error("the IPC broke");
    });
    await expect(tauriBackend.exportSummary(4)).rejects.toEqual({ kind: "not_found", message: "no export with id 4" });
    await expect(tauriBackend.listExports()).rejects.toEqual({ kind: "internal", message: "the IPC broke" });
  });
});
