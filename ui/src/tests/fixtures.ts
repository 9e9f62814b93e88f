// Answers shaped like the Rust side's, for tests against a mocked IPC.
import type { ExportInfo } from "../bindings/ExportInfo";
import type { Summary } from "../bindings/Summary";
import type { WorkoutRow } from "../bindings/WorkoutRow";

export function exportInfo(id: number, path = `/home/ada/export-${id}.zip`): ExportInfo {
  return {
    id,
    fingerprint: "0".repeat(32),
    source_path: path,
    xml_name: "apple_health_export/export.xml",
    file_size: 120_000_000,
    xml_bytes: 1_045_000_000,
    locale: "en_US",
    export_date: "2024-06-01T10:00:00-07:00",
    state: "complete",
    error: null,
    started_at: 1_717_000_000,
    seconds: 4.2,
  };
}

export function summary(id: number): Summary {
  return {
    export: exportInfo(id),
    records: 3,
    records_stored: 3,
    workouts: 1,
    correlations: 0,
    activity_summaries: 0,
    first_record_start: "2023-01-01T08:00:00-08:00",
    last_record_start: "2024-05-31T08:00:00-07:00",
    record_types: [
      {
        kind: "HKQuantityTypeIdentifierHeartRate",
        name: "Heart rate",
        category: "heart",
        count: 3,
        skipped: 0,
        first_start: "2023-01-01T08:00:00-08:00",
        last_start: "2024-05-31T08:00:00-07:00",
        units: ["count/min"],
        sources: ["Watch"],
        aggregation: "discrete",
      },
    ],
    categories: [{ category: "heart", name: "Heart", count: 3, kinds: ["HKQuantityTypeIdentifierHeartRate"] }],
    workout_types: { HKWorkoutActivityTypeRunning: 1 },
    workout_kinds: [{ kind: "HKWorkoutActivityTypeRunning", name: "Running", count: 1 }],
    devices: [],
    sources: ["Watch"],
    skipped: [],
    elements: {},
    unknown_elements: {},
    repaired_chars: 0,
    route_points: 0,
  };
}

export function workoutRow(id: number, change: Partial<WorkoutRow> = {}): WorkoutRow {
  return {
    id,
    activity_type: "HKWorkoutActivityTypeRunning",
    activity_name: "Running",
    start: "2024-03-05T07:30:00-08:00",
    end: "2024-03-05T08:00:00-08:00",
    duration_s: 1800,
    distance_m: 5000,
    energy_kcal: 300,
    hr_min: 100,
    hr_avg: 140,
    hr_max: 170,
    source: "Watch",
    device: null,
    device_name: null,
    route_points: 0,
    ...change,
  };
}
