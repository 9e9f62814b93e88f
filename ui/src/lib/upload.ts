// Turns an import's events (the core's byte progress and its steps) into
// what the Send view shows: the plan, the progress bar with part i of N,
// "retrying in 4 s", the server's stages with their counts, and the result
// compared with the preview.
import type { Checked } from "../bindings/Checked";
import type { ImportEvent } from "../bindings/ImportEvent";
import type { Method } from "../bindings/Method";
import type { OnServer } from "../bindings/OnServer";
import type { Part } from "../bindings/Part";
import type { UploadRecord } from "../bindings/UploadRecord";
import { formatBytes, formatCount, formatEta, formatRate } from "./format";

/** The choices offered, each with its one-line explanation. */
export const METHODS: readonly { id: Method; label: string; explain: string }[] = [
  {
    id: "auto",
    label: "Automatic",
    explain: "Direct up to 10 MB, else multipart where the server offers it, else one presigned POST.",
  },
  { id: "direct", label: "Direct", explain: "One request to the server itself; for small exports." },
  {
    id: "multipart",
    label: "Multipart",
    explain: "Parts in parallel straight to the server's store; resumable after an interruption.",
  },
  { id: "s3", label: "Presigned POST", explain: "One upload to the server's store; not resumable." },
];

export interface ServerStage {
  stage: string;
  status: string;
  items: number | null;
  total: number | null;
  message: string | null;
}

export interface Sending {
  /** What the step the person sees is. */
  phase: "check" | "upload" | "server" | "done" | "awaiting" | null;
  checked: Checked | null;
  plan: { method: Method; pieces: number; why: string } | null;
  resumed: { pieces_sent: number; parts_stored: number } | null;
  piece: number;
  pieces: number;
  done: number;
  total: number | null;
  rate: number;
  eta: number | null;
  part: Part | null;
  /** A transient failure: when the next try is due (ms since the epoch). */
  retry: { at: number; reason: string } | null;
  /** The server's stages in the order first seen, each with its latest word. */
  stages: ServerStage[];
  /** The server's last word was a failure. */
  serverError: string | null;
  /** How much of the export the server holds, while it is watched. */
  arriving: { onServer: OnServer; workouts: number; samples: number } | null;
  /** Uploaded, and the server has neither reported nor stored anything. */
  awaiting: { keys: string[]; waited: number } | null;
  compared: { found: number; expected: number } | null;
}

export const notStarted: Sending = {
  phase: null,
  checked: null,
  plan: null,
  resumed: null,
  piece: 0,
  pieces: 0,
  done: 0,
  total: null,
  rate: 0,
  eta: null,
  part: null,
  retry: null,
  stages: [],
  serverError: null,
  arriving: null,
  awaiting: null,
  compared: null,
};

/** The state after one more event; `now` dates a retry. */
export function fold(s: Sending, event: ImportEvent, now: number): Sending {
  if (event.type === "progress") {
    const p = event.data;
    const phase = p.phase === "check" ? "check" : p.phase === "upload" ? "upload" : s.phase;
    switch (p.event) {
      case "started":
        return { ...s, phase, done: 0, total: p.total, rate: 0, eta: null, part: null, retry: null };
      case "advanced":
        return { ...s, phase, done: p.done, total: p.total, rate: p.rate, eta: p.eta_secs, part: p.part, retry: null };
      case "retrying":
        return { ...s, retry: { at: now + Number(p.delay_ms), reason: p.reason } };
      case "finished":
        return { ...s, phase, done: p.done, eta: 0, retry: null };
      case "stage":
        return s;
    }
  }
  const step = event.data;
  switch (step.step) {
    case "checked": {
      const { step: _, ...checked } = step;
      return { ...s, checked };
    }
    case "resuming":
      return { ...s, resumed: { pieces_sent: step.pieces_sent, parts_stored: step.parts_stored } };
    case "plan":
      return { ...s, plan: { method: step.method, pieces: step.pieces, why: step.why }, pieces: step.pieces };
    case "sending":
      return { ...s, phase: "upload", piece: step.piece, pieces: step.pieces, done: 0, total: step.bytes, part: null };
    case "sent":
      return { ...s, piece: step.piece, pieces: step.pieces, retry: null };
    case "server": {
      const e = step.event;
      const seen: ServerStage = {
        stage: e.stage,
        status: e.status,
        items: e.items_processed,
        total: e.items_total,
        message: e.message,
      };
      const at = s.stages.findIndex((x) => x.stage === e.stage);
      const stages = at < 0 ? [...s.stages, seen] : s.stages.map((x, i) => (i === at ? seen : x));
      const failed = e.stage === "failed" || e.status === "failed";
      return {
        ...s,
        phase: "server",
        stages,
        retry: null,
        serverError: failed ? (e.error ?? e.message ?? "the server gave no reason") : s.serverError,
      };
    }
    case "waiting":
      return { ...s, phase: "server", retry: null };
    case "arriving":
      return {
        ...s,
        phase: "server",
        arriving: { onServer: step.on_server, workouts: step.workouts, samples: step.samples },
      };
    case "awaiting":
      return { ...s, phase: "awaiting", awaiting: { keys: step.keys, waited: step.waited_secs } };
    case "compared":
      return { ...s, phase: "done", compared: { found: step.found, expected: step.expected } };
  }
}

/** Whole seconds until the next try, while one is pending. */
export function retryingIn(s: Sending, now: number): number | null {
  if (!s.retry) return null;
  return Math.max(0, Math.ceil((s.retry.at - now) / 1000));
}

/** 0..1 while bytes move; null otherwise. */
export function share(s: Sending): number | null {
  if ((s.phase !== "check" && s.phase !== "upload") || !s.total) return null;
  return Math.min(1, s.done / s.total);
}

/** The words beside the bar. */
export function describeSend(s: Sending, now: number): { title: string; detail: string } {
  const wait = retryingIn(s, now);
  if (wait != null) {
    return { title: `Retrying in ${wait} s`, detail: s.retry?.reason ?? "" };
  }
  if (s.phase === "check") {
    const f = share(s);
    return {
      title: f == null ? "Checking the export" : `Checking ${Math.floor(f * 100)} %`,
      detail: `${formatBytes(s.done)}${s.total ? ` of ${formatBytes(s.total)}` : ""}`,
    };
  }
  if (s.phase === "upload") {
    const f = share(s);
    const piece = s.pieces > 1 ? ` (piece ${s.piece} of ${s.pieces})` : "";
    const part = s.part ? ` · part ${s.part.index} of ${s.part.count}` : "";
    const eta = s.eta != null && s.eta > 0 ? ` · ${formatEta(s.eta)} left` : "";
    const of = s.total ? ` of ${formatBytes(s.total)}` : "";
    return {
      title: `${f == null ? "Sending" : `Sending ${Math.floor(f * 100)} %`}${piece}`,
      detail: `${formatBytes(s.done)}${of} · ${formatRate(s.rate)}${eta}${part}`,
    };
  }
  if (s.phase === "server") {
    const last = s.stages[s.stages.length - 1];
    const held = s.arriving ? arrived(s.arriving) : null;
    const detail = [last ? stageWords(last) : null, held].filter((x) => x).join(" · ");
    return { title: "The server is importing", detail: detail || "waiting for its first word, or its data" };
  }
  if (s.phase === "awaiting") {
    return {
      title: "Uploaded — awaiting the server",
      detail:
        "The server has not reported on this import or stored any of it yet. A server that takes uploads " +
        "into its S3 bucket imports them only once the bucket's notifications reach it. History marks the " +
        "upload imported when a later look finds its data.",
    };
  }
  if (s.phase === "done") return { title: "Imported", detail: s.compared ? comparison(s.compared) : "" };
  return { title: "Starting", detail: "opening the export" };
}

/** "Processing — 1,200 of 3,400 items · Processing 35 %". */
export function stageWords(st: ServerStage): string {
  const counts =
    st.items != null
      ? st.total != null
        ? `${formatCount(st.items)} of ${formatCount(st.total)} items`
        : `${formatCount(st.items)} items`
      : null;
  const name = st.stage.replaceAll("_", " ");
  // The status says what the stage already says, except when it differs in
  // kind (a stage that ended in failure).
  const status = QUIET_STATUSES.has(st.status) || st.status === st.stage ? null : st.status.replaceAll("_", " ");
  const rest = [status, counts, st.message].filter((x) => x).join(" · ");
  const title = name.charAt(0).toUpperCase() + name.slice(1);
  return rest ? `${title} — ${rest}` : title;
}

const QUIET_STATUSES = new Set(["pending", "in_progress", "success"]);

/** "1,204 of 2,000 workouts · 50,000 of 61,000 samples on the server". */
export function arrived(a: { onServer: OnServer; workouts: number; samples: number }): string {
  const workouts = `${formatCount(Math.min(a.onServer.workouts, a.workouts))} of ${formatCount(a.workouts)} workouts`;
  const samples =
    a.onServer.samples != null
      ? ` · ${formatCount(Math.min(a.onServer.samples, a.samples))} of ${formatCount(a.samples)} samples`
      : "";
  return `${workouts}${samples} on the server`;
}

/** How an upload ended, as History says it. */
export function outcomeWords(outcome: string): string {
  return outcome === "sent" ? "uploaded, awaiting the server" : outcome;
}

/** "1,204 of 1,204 workouts imported". */
export function comparison(c: { found: number; expected: number }): string {
  const noun = c.expected === 1 ? "workout" : "workouts";
  return `${formatCount(c.found)} of ${formatCount(c.expected)} ${noun} imported`;
}

/** What an upload carried: "new only", "everything", and its filters. */
export function scopeWords(row: Pick<UploadRecord, "delta" | "filters">): string {
  if (row.delta == null) return "everything";
  const scope = row.delta ? "new only" : "everything";
  return row.filters ? `${scope}; ${row.filters}` : scope;
}
