import { describe, expect, it } from "vitest";
import { ariaSort, dateRangeError, initialFilter, toRequest, toggleSort } from "../lib/workouts";

describe("workouts filter", () => {
  it("becomes the request the store takes", () => {
    expect(toRequest(initialFilter)).toEqual({
      activity_type: null,
      from_day: null,
      to_day: null,
      sort: "start",
      descending: true,
    });
    const state = { ...initialFilter, type: "HKWorkoutActivityTypeRunning", from: "1970-01-02", to: "1970-01-11" };
    expect(toRequest(state)).toMatchObject({
      activity_type: "HKWorkoutActivityTypeRunning",
      from_day: 1,
      to_day: 10,
    });
  });

  it("sorting: the same column flips, another starts biggest first, text A to Z", () => {
    const byStart = toggleSort(initialFilter, "start");
    expect(byStart).toMatchObject({ sort: "start", descending: false });
    const byDistance = toggleSort(byStart, "distance");
    expect(byDistance).toMatchObject({ sort: "distance", descending: true });
    const byType = toggleSort(byDistance, "activity_type");
    expect(byType).toMatchObject({ sort: "activity_type", descending: false });
    expect(ariaSort(byType, "activity_type")).toBe("ascending");
    expect(ariaSort(byType, "distance")).toBe("none");
  });

  it("refuses a reversed date range", () => {
    expect(dateRangeError(initialFilter)).toBeNull();
    expect(dateRangeError({ ...initialFilter, from: "2024-02-01", to: "2024-01-01" })).toMatch(/after/);
    expect(dateRangeError({ ...initialFilter, from: "soon" })).toMatch(/not a date/);
  });
});
