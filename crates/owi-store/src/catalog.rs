//! How each record type aggregates per day.

use serde::Serialize;

/// How a day's values of one type combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Amounts that add up over a day (steps, energy, distance).
    Sum,
    /// Measurements (heart rate, weight): min, average, max.
    Discrete,
    /// Category samples (sleep stages, mindful sessions): seconds spent.
    Duration,
}

/// The aggregation for a HealthKit type identifier.
pub fn aggregation_of(kind: &str) -> Aggregation {
    if kind.starts_with("HKCategoryTypeIdentifier") {
        return Aggregation::Duration;
    }
    let Some(name) = kind.strip_prefix("HKQuantityTypeIdentifier") else {
        return Aggregation::Discrete;
    };
    let summed = name.starts_with("Dietary")
        || name.starts_with("Distance")
        || name.ends_with("EnergyBurned")
        || matches!(
            name,
            "StepCount"
                | "FlightsClimbed"
                | "AppleExerciseTime"
                | "AppleStandTime"
                | "AppleMoveTime"
                | "SwimmingStrokeCount"
                | "PushCount"
                | "NumberOfTimesFallen"
                | "TimeInDaylight"
                | "NikeFuel"
                | "InhalerUsage"
                | "NumberOfAlcoholicBeverages"
                | "PhysicalEffort"
                | "WaterTemperature"
        );
    if summed && name != "WaterTemperature" {
        Aggregation::Sum
    } else {
        Aggregation::Discrete
    }
}

/// Whether a category value counts toward a day's duration: for sleep, only
/// time asleep (not in bed or awake).
pub fn counts_toward_duration(kind: &str, value: &str) -> bool {
    if kind == "HKCategoryTypeIdentifierSleepAnalysis" {
        return value.contains("Asleep");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_types() {
        assert_eq!(
            aggregation_of("HKQuantityTypeIdentifierStepCount"),
            Aggregation::Sum
        );
        assert_eq!(
            aggregation_of("HKQuantityTypeIdentifierActiveEnergyBurned"),
            Aggregation::Sum
        );
        assert_eq!(
            aggregation_of("HKQuantityTypeIdentifierDietaryWater"),
            Aggregation::Sum
        );
        assert_eq!(
            aggregation_of("HKQuantityTypeIdentifierHeartRate"),
            Aggregation::Discrete
        );
        assert_eq!(
            aggregation_of("HKQuantityTypeIdentifierRestingHeartRate"),
            Aggregation::Discrete
        );
        assert_eq!(
            aggregation_of("HKCategoryTypeIdentifierSleepAnalysis"),
            Aggregation::Duration
        );
        assert!(counts_toward_duration(
            "HKCategoryTypeIdentifierSleepAnalysis",
            "HKCategoryValueSleepAnalysisAsleepCore"
        ));
        assert!(!counts_toward_duration(
            "HKCategoryTypeIdentifierSleepAnalysis",
            "HKCategoryValueSleepAnalysisInBed"
        ));
    }
}
