// The one module that talks to Tauri: every command, the progress channel,
// the open dialog, drag-and-drop and the shell's events (the menu, files
// handed over). Nothing else imports @tauri-apps/*.
import { Channel, invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import { getCurrentWebview } from "@tauri-apps/api/webview";
import { open } from "@tauri-apps/plugin-dialog";

import type { Glimpse } from "./bindings/Glimpse";
import type { Backend, DropEvent } from "./lib/backend";
import { asCommandError } from "./lib/backend";
import type { CancelRequest } from "./bindings/CancelRequest";
import type { ExportRequest } from "./bindings/ExportRequest";
import type { OpenRequest } from "./bindings/OpenRequest";
import type { PathRequest } from "./bindings/PathRequest";
import type { Progress } from "./bindings/Progress";
import type { WorkoutRequest } from "./bindings/WorkoutRequest";
import type { WorkoutsRequest } from "./bindings/WorkoutsRequest";
import type { HistoryRequest } from "./bindings/HistoryRequest";
import type { LedgerRequest } from "./bindings/LedgerRequest";
import type { ImportEvent } from "./bindings/ImportEvent";
import type { UsersRequest } from "./bindings/UsersRequest";
import type { ShellEvent } from "./bindings/ShellEvent";

/** Calls a command; a rejection is always a `CommandError`. */
async function call<T>(command: string, args: Record<string, unknown> = {}): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    throw asCommandError(error);
  }
}

const exportRequest = (exportId: number): { request: ExportRequest } => ({
  request: { export_id: exportId },
});

export const tauriBackend: Backend = {
  startupExport: () => call("startup_export"),
  checkExport: (path) => call("check_export", { request: { path } satisfies PathRequest }),
  openExport: (path, operation, onProgress, force, onGlimpse) => {
    const channel = new Channel<Progress>();
    channel.onmessage = onProgress;
    const glimpses = new Channel<Glimpse>();
    glimpses.onmessage = (glimpse) => onGlimpse?.(glimpse);
    const request: OpenRequest = { path, operation, force: force ?? false };
    return call("open_export", { request, onProgress: channel, onGlimpse: glimpses });
  },
  cancelOperation: (operation) =>
    call("cancel_operation", { request: { operation } satisfies CancelRequest }),
  listExports: () => call("list_exports"),
  exportSummary: (exportId) => call("export_summary", exportRequest(exportId)),
  serverPreview: (exportId) => call("server_preview", exportRequest(exportId)),
  listWorkouts: (exportId, filter) =>
    call("list_workouts", {
      request: { export_id: exportId, filter } satisfies WorkoutsRequest,
    }),
  workoutDetail: (workoutId) =>
    call("workout_detail", { request: { workout_id: workoutId } satisfies WorkoutRequest }),
  dailySeries: (request) => call("daily_series", { request }),
  connectionStatus: () => call("connection_status"),
  connectLocal: () => call("connect_local"),
  connectRemote: (request) => call("connect_remote", { request }),
  disconnect: () => call("disconnect"),
  listUsers: (search, page) =>
    call("list_users", { request: { search: search ?? undefined, page } satisfies UsersRequest }),
  createUser: (request) => call("create_user", { request }),
  startImport: (request, onEvent) => {
    const channel = new Channel<ImportEvent>();
    channel.onmessage = onEvent;
    return call("start_import", { request, onEvent: channel });
  },
  planImport: (request, onProgress) => {
    const channel = new Channel<Progress>();
    channel.onmessage = onProgress;
    return call("plan_import", { request, onProgress: channel });
  },
  ledgerSummary: (userId) =>
    call("ledger_summary", { request: { user_id: userId } satisfies LedgerRequest }),
  uploadHistory: (limit) =>
    call("upload_history", { request: { limit: limit ?? 50 } satisfies HistoryRequest }),
  interruptedUploads: () => call("interrupted_uploads"),
  pickExport: async () => {
    const chosen = await open({
      title: "Open an Apple Health export",
      multiple: false,
      directory: false,
      filters: [{ name: "Apple Health export", extensions: ["zip", "xml"] }],
    });
    return typeof chosen === "string" ? chosen : null;
  },
  onFileDrop: (handler) =>
    getCurrentWebview().onDragDropEvent((event) => {
      const p = event.payload;
      const mapped: DropEvent =
        p.type === "enter" || p.type === "drop" ? { type: p.type, paths: p.paths } : { type: p.type };
      handler(mapped);
    }),
  onShellEvent: (handler) => listen<ShellEvent>("shell", (event) => handler(event.payload)),
};
