// The workouts table: its columns, the filter the UI holds and the request
// it becomes, and how clicking a header changes the order. Sorting and
// filtering run in the local store (an index range, milliseconds).
import type { WorkoutFilter } from "../bindings/WorkoutFilter";
import type { WorkoutRow } from "../bindings/WorkoutRow";
import type { WorkoutSort } from "../bindings/WorkoutSort";
import {
  dayNumber,
  formatDateTime,
  formatDistance,
  formatDuration,
  formatEnergy,
  formatCount,
  formatNumber,
} from "./format";

export interface Column {
  sort: WorkoutSort;
  label: string;
  numeric: boolean;
  cell: (row: WorkoutRow) => string;
}

export const COLUMNS: readonly Column[] = [
  { sort: "start", label: "Start", numeric: false, cell: (r) => formatDateTime(r.start) },
  { sort: "activity_type", label: "Type", numeric: false, cell: (r) => r.activity_name },
  { sort: "duration", label: "Duration", numeric: true, cell: (r) => formatDuration(r.duration_s) },
  { sort: "distance", label: "Distance", numeric: true, cell: (r) => formatDistance(r.distance_m) },
  { sort: "energy", label: "Energy", numeric: true, cell: (r) => formatEnergy(r.energy_kcal) },
  { sort: "heart_rate_avg", label: "Avg HR", numeric: true, cell: (r) => formatNumber(r.hr_avg) },
  { sort: "source", label: "Source", numeric: false, cell: (r) => r.source },
  {
    sort: "route_points",
    label: "Route pts",
    numeric: true,
    cell: (r) => (r.route_points > 0 ? formatCount(r.route_points) : "—"),
  },
];

/** What the filter bar holds: strings straight from its inputs. */
export interface FilterState {
  /** A workout type identifier, or "" for all. */
  type: string;
  /** `YYYY-MM-DD` or "". */
  from: string;
  to: string;
  sort: WorkoutSort;
  descending: boolean;
}

export const initialFilter: FilterState = {
  type: "",
  from: "",
  to: "",
  sort: "start",
  descending: true,
};

export function toRequest(state: FilterState): WorkoutFilter {
  return {
    activity_type: state.type === "" ? null : state.type,
    from_day: dayNumber(state.from),
    to_day: dayNumber(state.to),
    sort: state.sort,
    descending: state.descending,
  };
}

/** A click on a header: the same column flips, another starts biggest/newest first. */
export function toggleSort(state: FilterState, sort: WorkoutSort): FilterState {
  if (state.sort === sort) return { ...state, descending: !state.descending };
  const column = COLUMNS.find((c) => c.sort === sort);
  const descending = sort === "start" || (column?.numeric ?? false);
  return { ...state, sort, descending };
}

/** `aria-sort` for a header. */
export function ariaSort(state: FilterState, sort: WorkoutSort): "ascending" | "descending" | "none" {
  if (state.sort !== sort) return "none";
  return state.descending ? "descending" : "ascending";
}

/** Whether the dates make sense together (an empty bound is open). */
export function dateRangeError(state: FilterState): string | null {
  const from = dayNumber(state.from);
  const to = dayNumber(state.to);
  if (state.from !== "" && from == null) return "The start date is not a date.";
  if (state.to !== "" && to == null) return "The end date is not a date.";
  if (from != null && to != null && from > to) return "The start date is after the end date.";
  return null;
}

/** The value a column sorts by, as the store's query orders it. */
function sortKey(row: WorkoutRow, sort: WorkoutSort): number | string | null {
  switch (sort) {
    case "start":
      return Date.parse(row.start);
    case "end":
      return Date.parse(row.end);
    case "activity_type":
      return row.activity_type;
    case "duration":
      return row.duration_s;
    case "distance":
      return row.distance_m;
    case "energy":
      return row.energy_kcal;
    case "heart_rate_avg":
      return row.hr_avg;
    case "heart_rate_max":
      return row.hr_max;
    case "source":
      return row.source;
    case "route_points":
      return row.route_points;
  }
}

function compare(a: number | string, b: number | string): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

/**
 * The workouts read so far, filtered and sorted here as the store would
 * (missing values last, then by start, then by id), while the export is
 * still being read and the store cannot answer yet.
 */
export function filterLocally(rows: readonly WorkoutRow[], request: WorkoutFilter): WorkoutRow[] {
  const type = request.activity_type;
  const wanted = type == null ? null : type.startsWith("HKWorkoutActivityType") ? type : `HKWorkoutActivityType${type}`;
  const day = (row: WorkoutRow): number | null => dayNumber(row.start.slice(0, 10));
  const kept = rows.filter((row) => {
    if (wanted != null && row.activity_type !== wanted) return false;
    const d = day(row);
    if (request.from_day != null && (d == null || d < request.from_day)) return false;
    if (request.to_day != null && (d == null || d > request.to_day)) return false;
    return true;
  });
  const sign = request.descending ? -1 : 1;
  return kept.sort((a, b) => {
    const ka = sortKey(a, request.sort);
    const kb = sortKey(b, request.sort);
    if (ka == null || kb == null) {
      if (ka != null) return -1;
      if (kb != null) return 1;
    } else {
      const c = compare(ka, kb);
      if (c !== 0) return sign * c;
    }
    const byStart = Date.parse(a.start) - Date.parse(b.start);
    if (byStart !== 0) return sign * byStart;
    return a.id - b.id;
  });
}
