// What the UI needs from the app's Rust side. Components and the session
// depend on this interface only; `ipc.ts` implements it over Tauri's IPC,
// and tests run the same code against a mocked IPC.
import type { Glimpse } from "../bindings/Glimpse";
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
import type { ConnectRequest } from "../bindings/ConnectRequest";
import type { Connection } from "../bindings/Connection";
import type { ConnectionStatus } from "../bindings/ConnectionStatus";
import type { ImportEvent } from "../bindings/ImportEvent";
import type { ImportReport } from "../bindings/ImportReport";
import type { ShellEvent } from "../bindings/ShellEvent";
import type { ImportStartRequest } from "../bindings/ImportStartRequest";
import type { LedgerSummary } from "../bindings/LedgerSummary";
import type { Plan } from "../bindings/Plan";
import type { Interrupted } from "../bindings/Interrupted";
import type { NewUserRequest } from "../bindings/NewUserRequest";
import type { UploadRecord } from "../bindings/UploadRecord";
import type { User } from "../bindings/User";
import type { UserPage } from "../bindings/UserPage";

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
    /** The live preview while the export is read (none if it was read before). */
    onGlimpse?: (glimpse: Glimpse) => void,
  ): Promise<Opened>;
  cancelOperation(operation: string): Promise<boolean>;
  listExports(): Promise<ExportInfo[]>;
  exportSummary(exportId: number): Promise<Summary>;
  serverPreview(exportId: number): Promise<ServerPreview>;
  listWorkouts(exportId: number, filter: WorkoutFilter): Promise<WorkoutRow[]>;
  workoutDetail(workoutId: number): Promise<WorkoutDetail>;
  dailySeries(request: SeriesRequest): Promise<DailySeries>;
  /** The server in use, and the one logged in to last time. */
  connectionStatus(): Promise<ConnectionStatus>;
  /** Starts the bundled server on a loopback port and connects to it. */
  connectLocal(): Promise<Connection>;
  /** Logs in to a server; the password is sent once and never comes back. */
  connectRemote(request: ConnectRequest): Promise<Connection>;
  disconnect(): Promise<void>;
  listUsers(search: string | null, page: number): Promise<UserPage>;
  createUser(request: NewUserRequest): Promise<User>;
  /** Sends an export and follows the server's import; cancel by operation. */
  startImport(request: ImportStartRequest, onEvent: (event: ImportEvent) => void): Promise<ImportReport>;
  /** What `startImport` with this request would send: nothing is uploaded. */
  planImport(request: ImportStartRequest, onProgress: (event: Progress) => void): Promise<Plan>;
  /** What the connected server's user has from this computer. */
  ledgerSummary(userId: string): Promise<LedgerSummary | null>;
  uploadHistory(limit?: number): Promise<UploadRecord[]>;
  interruptedUploads(): Promise<Interrupted[]>;
  /** The system's open-file dialog, for exports only. */
  pickExport(): Promise<string | null>;
  /** Listens for files dragged onto the window; resolves to an unlisten. */
  onFileDrop(handler: (event: DropEvent) => void): Promise<() => void>;
  /** Listens for the shell: the menu, a file handed over by a second launch. */
  onShellEvent(handler: (event: ShellEvent) => void): Promise<() => void>;
}

const KINDS: ReadonlySet<string> = new Set([
  "not_an_export",
  "damaged",
  "cancelled",
  "not_found",
  "io",
  "database",
  "not_connected",
  "server_forgot",
  "login",
  "network",
  "server",
  "resumable",
  "choice",
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
