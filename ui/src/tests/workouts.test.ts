import { describe, expect, it } from "vitest";
import type { WorkoutRow } from "../bindings/WorkoutRow";
import { ariaSort, dateRangeError, filterLocally, initialFilter, toRequest, toggleSort } from "../lib/workouts";
import { workoutRow } from "./fixtures";

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

describe("sorting the workouts read so far, as the store would", () => {
  const rows = [
    workoutRow(1, { start: "2024-03-05T07:30:00-08:00", distance_m: 5000 }),
    workoutRow(2, { start: "2024-03-06T07:30:00-08:00", distance_m: null }),
    workoutRow(3, { start: "2024-03-04T07:30:00-08:00", distance_m: 5000, activity_type: "HKWorkoutActivityTypeYoga" }),
    workoutRow(4, { start: "2024-03-04T07:30:00-08:00", distance_m: 12000 }),
  ];
  const ids = (found: WorkoutRow[]) => found.map((r) => r.id);

  it("newest first by default, ties by id", () => {
    expect(ids(filterLocally(rows, toRequest(initialFilter)))).toEqual([2, 1, 3, 4]);
  });

  it("missing values last whichever the direction; ties by start, then id", () => {
    const longest = toRequest({ ...initialFilter, sort: "distance", descending: true });
    expect(ids(filterLocally(rows, longest))).toEqual([4, 1, 3, 2]);
    const shortest = toRequest({ ...initialFilter, sort: "distance", descending: false });
    expect(ids(filterLocally(rows, shortest))).toEqual([3, 1, 4, 2]);
  });

  it("filters by type and by local day", () => {
    expect(ids(filterLocally(rows, toRequest({ ...initialFilter, type: "Yoga" })))).toEqual([3]);
    const day = toRequest({ ...initialFilter, from: "2024-03-05", to: "2024-03-05" });
    expect(ids(filterLocally(rows, day))).toEqual([1]);
  });

  it("leaves the rows it was given alone", () => {
    filterLocally(rows, toRequest({ ...initialFilter, sort: "distance" }));
    expect(ids(rows)).toEqual([1, 2, 3, 4]);
  });
});
