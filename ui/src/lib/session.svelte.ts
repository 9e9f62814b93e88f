// The app's state: the exports opened before, the one shown, an ingest in
// flight with its progress bar, and what went wrong. Everything goes
// through a `Backend`, so tests drive it against a mocked IPC.
import type { CommandError } from "../bindings/CommandError";
import type { ExportInfo } from "../bindings/ExportInfo";
import type { Glimpse } from "../bindings/Glimpse";
import type { Summary } from "../bindings/Summary";
import type { WorkoutRow } from "../bindings/WorkoutRow";
import { asCommandError, type Backend } from "./backend";
import { advance, idle, type Bar } from "./progress";

export interface Opening {
  path: string;
  operation: string;
  bar: Bar;
  cancelling: boolean;
}

/** The export being read, as far as it is known: the summary so far and
 * every workout read yet, in the document's order. */
export interface Live {
  operation: string;
  summary: Summary;
  workouts: WorkoutRow[];
}

let counter = 0;
function operationId(): string {
  counter += 1;
  return `open-${Date.now().toString(36)}-${counter}`;
}

export class Session {
  exports: ExportInfo[] = $state([]);
  current: ExportInfo | null = $state(null);
  summary: Summary | null = $state(null);
  opening: Opening | null = $state(null);
  /** Set while an export is read, from its first glimpse to its end. */
  live: Live | null = $state(null);
  error: CommandError | null = $state(null);
  /** How the last open went, for a short confirmation ("Opened in 2.1 s"). */
  notice: string | null = $state(null);
  /** Exports handed over while another was being read: opened next, in order. */
  private queued: string[] = [];

  constructor(private readonly backend: Backend) {}

  /** Loads the list, then opens the export given on the command line. */
  async start(): Promise<void> {
    await this.refresh();
    await this.openHandedOver();
  }

  /** Opens the export the command line or a second launch handed over, if
   * one waits (the shell keeps it until it is taken, so none is lost). */
  async openHandedOver(): Promise<void> {
    // Each is answered once; the bound only guards against a shell that
    // answered the same one forever.
    for (let taken = 0; taken < 64; taken += 1) {
      const path = await this.backend.startupExport().catch(() => null);
      if (!path) return;
      if (this.opening) this.queued.push(path);
      else await this.open(path);
    }
  }

  /** Shows an export the store holds, by id (File › Open Recent). */
  async showById(id: number): Promise<void> {
    await this.refresh();
    const info = this.exports.find((e) => e.id === id);
    if (info) await this.show(info);
    else this.error = { kind: "not_found", message: "That export is no longer in the list." };
  }

  async refresh(): Promise<void> {
    try {
      this.exports = await this.backend.listExports();
    } catch (e) {
      this.error = asCommandError(e);
    }
  }

  /** Reads (or finds) the export at `path` and shows it: live while it is
   * read, then the finished preview (the same numbers, from the store). */
  async open(path: string): Promise<void> {
    if (this.opening) return;
    const operation = operationId();
    const before = { current: this.current, summary: this.summary };
    this.error = null;
    this.notice = null;
    this.opening = { path, operation, bar: idle, cancelling: false };
    try {
      const opened = await this.backend.openExport(
        path,
        operation,
        (event) => {
          if (this.opening?.operation === operation) {
            this.opening = { ...this.opening, bar: advance(this.opening.bar, event) };
          }
        },
        undefined,
        (glimpse) => this.glimpse(operation, glimpse),
      );
      this.notice = opened.reused
        ? "Already read before: opened instantly."
        : `Read in ${opened.seconds.toFixed(1)} s.`;
      if (opened.export.state === "partial") {
        this.notice = `Only part of this export could be read: ${opened.export.error ?? "it was cut short"}`;
      }
      await this.show(opened.export);
      await this.refresh();
    } catch (e) {
      const error = asCommandError(e);
      if (error.kind !== "cancelled") this.error = error;
      // What was shown live is gone with the read: back to what was before.
      if (this.live) {
        this.current = before.current;
        this.summary = before.summary;
      }
    } finally {
      this.opening = null;
      this.live = null;
    }
    const next = this.queued.shift();
    if (next) await this.open(next);
  }

  private glimpse(operation: string, glimpse: Glimpse): void {
    if (this.opening?.operation !== operation) return;
    const workouts = this.live ? this.live.workouts.concat(glimpse.workouts) : glimpse.workouts;
    this.live = { operation, summary: glimpse.summary, workouts };
    this.current = glimpse.summary.export;
    this.summary = glimpse.summary;
  }

  async cancel(): Promise<void> {
    const opening = this.opening;
    if (!opening || opening.cancelling) return;
    this.opening = { ...opening, cancelling: true };
    await this.backend.cancelOperation(opening.operation).catch(() => false);
  }

  /** Shows an export the store already holds. */
  async show(info: ExportInfo): Promise<void> {
    try {
      const summary = await this.backend.exportSummary(info.id);
      this.current = info;
      this.summary = summary;
      this.error = null;
    } catch (e) {
      this.error = asCommandError(e);
      if (this.error.kind === "not_found") await this.refresh();
    }
  }

  /** Back to the start screen. */
  close(): void {
    this.current = null;
    this.summary = null;
  }

  dismissError(): void {
    this.error = null;
  }
}
