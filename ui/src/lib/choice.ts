// "What to send": the person's choices (only what is new, which groups,
// which days, the profile) and what they would send, computed from the dry
// run's tally without reading the export again.
import type { Category } from "../bindings/Category";
import type { LedgerSummary } from "../bindings/LedgerSummary";
import type { Share } from "../bindings/Share";
import type { Tally } from "../bindings/Tally";
import { formatBytes, formatCount } from "./format";

export interface Group {
  key: string;
  label: string;
}

const CATEGORIES: { key: Category; label: string }[] = [
  { key: "activity", label: "Activity" },
  { key: "heart", label: "Heart" },
  { key: "sleep", label: "Sleep" },
  { key: "body", label: "Body measurements" },
  { key: "vitals", label: "Vitals" },
  { key: "respiratory", label: "Respiratory" },
  { key: "mobility", label: "Mobility" },
  { key: "hearing", label: "Hearing" },
  { key: "nutrition", label: "Nutrition" },
  { key: "mindfulness", label: "Mindfulness" },
  { key: "reproductive_health", label: "Cycle tracking" },
  { key: "symptoms", label: "Symptoms" },
  { key: "other", label: "Other data" },
];

export const WORKOUTS = "workouts";
/** Clinical records, audiograms, vision prescriptions: off unless ticked. */
export const CLINICAL = "clinical";
const CLINICAL_KINDS = ["ClinicalRecord", "Audiogram", "VisionPrescription"];

/** Every group, in the order the boxes are listed. */
export const GROUPS: Group[] = [
  ...CATEGORIES,
  { key: WORKOUTS, label: "Workouts" },
  { key: CLINICAL, label: "Clinical records" },
];

export interface Choices {
  /** Only what the ledger says the server does not have. */
  newOnly: boolean;
  /** The groups ticked. */
  groups: Set<string>;
  /** Inclusive local days, `YYYY-MM-DD`, or empty for no bound. */
  from: string;
  to: string;
  includeMe: boolean;
}

/** The groups this export has anything of, in list order. */
export function presentGroups(tally: Tally): Group[] {
  const present = new Set(tally.rows.map((r) => r.group));
  return GROUPS.filter((g) => present.has(g.key));
}

/** New only when something reached this user before (and the server
 * still has it); every group but clinical records; all days; no profile. */
export function defaultChoices(tally: Tally, ledger: LedgerSummary | null, serverForgot = false): Choices {
  return {
    newOnly: ledger !== null && ledger.items > 0 && !serverForgot,
    groups: new Set(presentGroups(tally).map((g) => g.key).filter((k) => k !== CLINICAL)),
    from: "",
    to: "",
    includeMe: false,
  };
}

/** `YYYY-MM-DD` → days since 1970-01-01, or null. */
export function dayNumber(date: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date.trim());
  if (!m) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  // Date.UTC rolls 2024-13-01 over into 2025: only a date that reads back is one.
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== m[0]) return null;
  return Math.round(ms / 86_400_000);
}

/** Days since 1970-01-01 → `YYYY-MM-DD`. */
export function dayString(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}

/** Undated items (some clinical documents) go only when no days are chosen. */
function inRange(day: number | null, choices: Choices): boolean {
  const from = dayNumber(choices.from);
  const to = dayNumber(choices.to);
  if (day === null) return from === null && to === null;
  return (from === null || day >= from) && (to === null || day <= to);
}

/** The first and last day the tally has items on, or null. */
export function dayRange(tally: Tally): { first: string; last: string } | null {
  let first: number | null = null;
  let last: number | null = null;
  for (const row of tally.rows) {
    if (row.day === null) continue;
    first = first === null ? row.day : Math.min(first, row.day);
    last = last === null ? row.day : Math.max(last, row.day);
  }
  return first === null || last === null ? null : { first: dayString(first), last: dayString(last) };
}

/** Items per group in the days chosen: new ones only, or all. */
export function groupCounts(tally: Tally, choices: Choices): Map<string, number> {
  const counts = new Map<string, number>();
  for (const row of tally.rows) {
    if (!inRange(row.day, choices)) continue;
    const n = choices.newOnly ? row.new_items : row.items;
    counts.set(row.group, (counts.get(row.group) ?? 0) + n);
  }
  return counts;
}

export interface Estimate {
  /** Items that would go, workouts among them. */
  items: number;
  workouts: number;
  bytes: number;
  /** Items of the groups and days chosen that the server has already. */
  onServer: number;
}

export function estimate(tally: Tally, choices: Choices): Estimate {
  let items = 0;
  let workouts = 0;
  let bytes = 0;
  let onServer = 0;
  for (const row of tally.rows) {
    if (!choices.groups.has(row.group) || !inRange(row.day, choices)) continue;
    const n = choices.newOnly ? row.new_items : row.items;
    items += n;
    bytes += choices.newOnly ? row.new_bytes : row.bytes;
    if (row.group === WORKOUTS) workouts += n;
    if (choices.newOnly) onServer += row.items - row.new_items;
  }
  if (items > 0) bytes += tally.frame_bytes + (choices.includeMe ? tally.profile_bytes : 0);
  return { items, workouts, bytes, onServer };
}

/** 2,900,000 → "2.9 M", for the counts beside a sentence. */
function short(n: number): string {
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(1)} M`;
  if (n >= 10_000) return `${Math.round(n / 1000)} k`;
  return formatCount(n);
}

/** "12,483 items and 9 workouts, 4.1 MB will be sent (2.9 M already on the server)". */
export function sendLine(e: Estimate): string {
  const already = e.onServer > 0 ? ` (${short(e.onServer)} already on the server)` : "";
  if (e.items === 0) return `Nothing to send${already}.`;
  const records = e.items - e.workouts;
  const plural = (n: number, one: string) => `${formatCount(n)} ${one}${n === 1 ? "" : "s"}`;
  const what =
    e.workouts > 0 ? `${plural(records, "item")} and ${plural(e.workouts, "workout")}` : plural(records, "item");
  return `${what}, ${formatBytes(e.bytes)} will be sent${already}.`;
}

/** The choices as the core's `Share`: nothing named when every group is
 * ticked (so kinds this app does not know go too). */
export function shareOf(choices: Choices, present: Group[]): Share {
  const everyGroup = present.filter((g) => g.key !== CLINICAL).every((g) => choices.groups.has(g.key));
  const clinical = choices.groups.has(CLINICAL);
  const from = dayNumber(choices.from);
  const to = dayNumber(choices.to);
  const only =
    everyGroup && !clinical
      ? null
      : {
          categories: CATEGORIES.filter((c) => choices.groups.has(c.key) || everyGroup).map((c) => c.key),
          kinds: [...(choices.groups.has(WORKOUTS) || everyGroup ? ["Workout"] : []), ...(clinical ? CLINICAL_KINDS : [])],
        };
  return { only, except: { kinds: [], categories: [] }, from, to, include_me: choices.includeMe };
}

/** "last confirmed upload on 2026-11-30 (3 imports, 2.9 M items)". */
export function ledgerLine(ledger: LedgerSummary | null): string {
  if (!ledger || ledger.items === 0) return "Nothing from this computer has reached this user yet.";
  const when = new Date(ledger.updated_at * 1000).toISOString().slice(0, 10);
  const imports = ledger.imports === 1 ? "1 import" : `${ledger.imports} imports`;
  return `Last confirmed upload on ${when} (${imports}, ${short(ledger.items)} items).`;
}
