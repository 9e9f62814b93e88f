import { afterEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import type { Channel } from "@tauri-apps/api/core";
import { tauriBackend } from "../ipc";
import { Session } from "../lib/session.svelte";
import type { Progress } from "../bindings/Progress";
import { exportInfo, summary } from "./fixtures";

afterEach(() => clearMocks());

describe("the session", () => {
  it("opens the command-line export at start, showing progress, then its summary", async () => {
    const bars: number[] = [];
    let session: Session | null = null;
    let startupAnswered = 0;
    mockIPC((cmd, args) => {
      switch (cmd) {
        case "list_exports":
          return [];
        case "startup_export":
          // Answered once, as the shell does.
          return startupAnswered++ === 0 ? "/home/ada/export.zip" : null;
        case "open_export": {
          const channel = (args as { onProgress: Channel<Progress> }).onProgress;
          channel.onmessage({ event: "started", phase: "ingest", total: 10 });
          channel.onmessage({ event: "advanced", phase: "ingest", done: 4, total: 10, rate: 1, eta_secs: 6, part: null });
          bars.push(session?.opening?.bar.done ?? -1);
          return { export: exportInfo(1), reused: false, seconds: 2.04 };
        }
        case "export_summary":
          return summary(1);
        default:
          return null;
      }
    });
    session = new Session(tauriBackend);
    await session.start();
    expect(bars).toEqual([4]);
    expect(session.opening).toBeNull();
    expect(session.current?.id).toBe(1);
    expect(session.summary?.records).toBe(3);
    expect(session.notice).toBe("Read in 2.0 s.");
    expect(session.error).toBeNull();
  });

  it("a refused file shows its reason; a cancelled one shows nothing", async () => {
    let answer: unknown = { kind: "not_an_export", message: "notes.txt is neither a zip archive nor an XML file" };
    mockIPC((cmd) => {
      if (cmd === "open_export") throw answer;
      return [];
    });
    const session = new Session(tauriBackend);
    await session.open("/tmp/notes.txt");
    expect(session.error?.kind).toBe("not_an_export");
    expect(session.current).toBeNull();

    answer = { kind: "cancelled", message: "reading export.zip was cancelled" };
    await session.open("/tmp/export.zip");
    expect(session.error).toBeNull();
    expect(session.opening).toBeNull();
  });

  it("cancels the operation it started", async () => {
    let release: (() => void) | null = null;
    const cancelled: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "open_export") {
        return new Promise((_, reject) => {
          release = () => reject({ kind: "cancelled", message: "cancelled" });
        });
      }
      if (cmd === "cancel_operation") {
        cancelled.push(args);
        release?.();
        return true;
      }
      return [];
    });
    const session = new Session(tauriBackend);
    const opening = session.open("/tmp/big.zip");
    await Promise.resolve();
    const operation = session.opening?.operation;
    expect(operation).toBeTruthy();
    await session.cancel();
    await opening;
    expect(cancelled).toEqual([{ request: { operation } }]);
    expect(session.opening).toBeNull();
  });
});
