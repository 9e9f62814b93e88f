// Turns the core's progress events into what the progress bar shows.
import type { Phase } from "../bindings/Phase";
import type { Progress } from "../bindings/Progress";
import { formatBytes, formatEta, formatRate } from "./format";

export interface Bar {
  phase: Phase | null;
  done: number;
  total: number | null;
  /** Units per second (bytes while reading). */
  rate: number;
  eta: number | null;
  /** The latest stage message ("building indexes"). */
  stage: string | null;
}

export const idle: Bar = { phase: null, done: 0, total: null, rate: 0, eta: null, stage: null };

/** The bar after one more event. Counts are cumulative, so a missed event loses nothing. */
export function advance(bar: Bar, event: Progress): Bar {
  switch (event.event) {
    case "started":
      return { phase: event.phase, done: 0, total: event.total, rate: 0, eta: null, stage: null };
    case "advanced":
      return {
        ...bar,
        phase: event.phase,
        done: event.done,
        total: event.total,
        rate: event.rate,
        eta: event.eta_secs,
      };
    case "stage":
      return { ...bar, phase: event.phase, stage: event.message };
    case "retrying":
      return { ...bar, phase: event.phase, stage: `retrying: ${event.reason}` };
    case "finished":
      return { ...bar, phase: event.phase, done: event.done, eta: 0 };
  }
}

/** 0..1 while reading; null when there is no measure (building indexes). */
export function fraction(bar: Bar): number | null {
  if (bar.phase !== "ingest" || !bar.total) return null;
  return Math.min(1, bar.done / bar.total);
}

/** The words beside the bar. */
export function describe(bar: Bar): { title: string; detail: string } {
  if (bar.phase === "index") {
    return { title: "Finishing", detail: bar.stage ?? "saving" };
  }
  if (bar.phase !== "ingest") {
    return { title: "Starting", detail: "looking inside the file" };
  }
  const f = fraction(bar);
  const title = f == null ? "Reading" : `Reading ${Math.floor(f * 100)} %`;
  const of = bar.total ? ` of ${formatBytes(bar.total)}` : "";
  const eta = bar.eta != null && bar.eta > 0 ? ` · ${formatEta(bar.eta)} left` : "";
  return { title, detail: `${formatBytes(bar.done)}${of} · ${formatRate(bar.rate)}${eta}` };
}
