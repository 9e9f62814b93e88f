// Daily series as chart data: one value per calendar day (null where the
// export has none, so gaps show as gaps), in the unit people expect.
import type { DailySeries } from "../bindings/DailySeries";
import type { TypeSummary } from "../bindings/TypeSummary";
import { dayNumber, unitName } from "./format";

/** The charts shown when the export has them, in order. */
export const DEFAULT_CHARTS: readonly string[] = [
  "HKQuantityTypeIdentifierStepCount",
  "HKQuantityTypeIdentifierActiveEnergyBurned",
  "HKQuantityTypeIdentifierRestingHeartRate",
  "HKCategoryTypeIdentifierSleepAnalysis",
];

export interface ChartData {
  /** Unix seconds at each day's UTC midnight. */
  x: number[];
  y: (number | null)[];
  /** For discrete types: the day's range. */
  min: (number | null)[] | null;
  max: (number | null)[] | null;
  unit: string;
  label: string;
}

/** Which of the default charts the export can fill. */
export function chartsFor(types: readonly TypeSummary[]): string[] {
  const present = new Set(types.filter((t) => t.count > 0).map((t) => t.kind));
  return DEFAULT_CHARTS.filter((kind) => present.has(kind));
}

export function chartData(series: DailySeries): ChartData {
  const durations = series.aggregation === "duration";
  const discrete = series.aggregation === "discrete";
  const byDay = new Map<number, (typeof series.days)[number]>();
  for (const point of series.days) {
    const day = dayNumber(point.date);
    if (day != null) byDay.set(day, point);
  }
  const days = [...byDay.keys()];
  const x: number[] = [];
  const y: (number | null)[] = [];
  const min: (number | null)[] = [];
  const max: (number | null)[] = [];
  if (days.length > 0) {
    const first = Math.min(...days);
    const last = Math.max(...days);
    for (let day = first; day <= last; day += 1) {
      const point = byDay.get(day);
      x.push(day * 86_400);
      if (!point) {
        y.push(null);
        min.push(null);
        max.push(null);
      } else if (discrete) {
        y.push(point.avg);
        min.push(point.min);
        max.push(point.max);
      } else {
        // Sleep and other durations are stored in seconds: show hours.
        const total = point.total;
        y.push(total == null ? null : durations ? total / 3600 : total);
      }
    }
  }
  return {
    x,
    y,
    min: discrete ? min : null,
    max: discrete ? max : null,
    unit: durations ? "h" : unitName(series.unit),
    label: discrete ? `${series.name} (daily average)` : `${series.name} (per day)`,
  };
}
