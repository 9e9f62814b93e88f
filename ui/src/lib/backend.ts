// What the UI needs from the app's Rust side. Components and the session
// depend on this interface only; `ipc.ts` implements it over Tauri's IPC,
// and tests run the same code against a mocked IPC.
import type { CommandError } from "../bindings/CommandError";
import type { DailySeries } from "../bindings/DailySeries";
import type { ExportInfo } from "../bindings/ExportInfo";
import type { FileCheck } from "../bindings/FileCheck";
import type { Opened } from "../bindings/Opened";
import type { Progress } from "../bindings/Progress";
import type { SeriesRequest } from "../bindings/SeriesRequest";
import type { ServerPreview } from "../bindings/ServerPreview";
import type { Summary } from "../bindings/Summary";
import type { WorkoutDetail } from "../bindings/WorkoutDetail";
import type { WorkoutFilter } from "../bindings/WorkoutFilter";
import type { WorkoutRow } from "../bindings/WorkoutRow";

/** Files dragged over or dropped on the window. */
export type DropEvent =
  | { type: "enter"; paths: string[] }
  | { type: "over" }
  | { type: "drop"; paths: string[] }
  | { type: "leave" };

export interface Backend {
  /** The export given on the command line ("Open with…"), once. */
  startupExport(): Promise<string | null>;
  /** A quick look at a file: is it an export, and if not, why. */
  checkExport(path: string): Promise<FileCheck>;
  /** Reads an export into the local store, or finds it there. */
  openExport(
    path: string,
    operation: string,
    onProgress: (event: Progress) => void,
    force?: boolean,
  ): Promise<Opened>;
  cancelOperation(operation: string): Promise<boolean>;
  listExports(): Promise<ExportInfo[]>;
  exportSummary(exportId: number): Promise<Summary>;
  serverPreview(exportId: number): Promise<ServerPreview>;
  listWorkouts(exportId: number, filter: WorkoutFilter): Promise<WorkoutRow[]>;
  workoutDetail(workoutId: number): Promise<WorkoutDetail>;
  dailySeries(request: SeriesRequest): Promise<DailySeries>;
  /** The system's open-file dialog, for exports only. */
  pickExport(): Promise<string | null>;
  /** Listens for files dragged onto the window; resolves to an unlisten. */
  onFileDrop(handler: (event: DropEvent) => void): Promise<() => void>;
}

const KINDS: ReadonlySet<string> = new Set([
  "not_an_export",
  "damaged",
  "cancelled",
  "not_found",
  "io",
  "database",
  "internal",
]);

/** Whatever a command rejected with, as the `{kind, message}` it should be. */
export function asCommandError(error: unknown): CommandError {
  if (typeof error === "object" && error !== null) {
    const { kind, message } = error as Record<string, unknown>;
    if (typeof kind === "string" && KINDS.has(kind) && typeof message === "string") {
      return { kind: kind as CommandError["kind"], message };
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return { kind: "internal", message };
}
