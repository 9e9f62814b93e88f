import { describe, expect, it } from "vitest";
import type { DailySeries } from "../bindings/DailySeries";
import type { TypeSummary } from "../bindings/TypeSummary";
import { chartData, chartsFor } from "../lib/charts";

const day = (date: string, total: number | null, avg: number | null = null) => ({
  date,
  count: 1,
  total,
  min: avg == null ? null : avg - 5,
  avg,
  max: avg == null ? null : avg + 5,
});

describe("charts", () => {
  it("one point per day, gaps left empty", () => {
    const steps: DailySeries = {
      kind: "HKQuantityTypeIdentifierStepCount",
      name: "Steps",
      unit: "count",
      aggregation: "sum",
      days: [day("2024-01-01", 5000), day("2024-01-03", 7000)],
    };
    const data = chartData(steps);
    expect(data.x).toEqual([19723, 19724, 19725].map((d) => d * 86400));
    expect(data.y).toEqual([5000, null, 7000]);
    expect(data.min).toBeNull();
    expect(data.label).toBe("Steps (per day)");
  });

  it("sleep in hours, heart rate as the day's average and range", () => {
    const sleep: DailySeries = {
      kind: "HKCategoryTypeIdentifierSleepAnalysis",
      name: "Sleep",
      unit: null,
      aggregation: "duration",
      days: [day("2024-01-01", 27_000)],
    };
    expect(chartData(sleep)).toMatchObject({ y: [7.5], unit: "h" });
    const resting: DailySeries = {
      kind: "HKQuantityTypeIdentifierRestingHeartRate",
      name: "Resting heart rate",
      unit: "count/min",
      aggregation: "discrete",
      days: [day("2024-01-01", null, 55)],
    };
    expect(chartData(resting)).toMatchObject({ y: [55], min: [50], max: [60] });
  });

  it("offers the default charts the export can fill", () => {
    const t = (kind: string, count: number) => ({ kind, count }) as TypeSummary;
    expect(
      chartsFor([
        t("HKCategoryTypeIdentifierSleepAnalysis", 3),
        t("HKQuantityTypeIdentifierStepCount", 10),
        t("HKQuantityTypeIdentifierRestingHeartRate", 0),
      ]),
    ).toEqual(["HKQuantityTypeIdentifierStepCount", "HKCategoryTypeIdentifierSleepAnalysis"]);
  });
});
