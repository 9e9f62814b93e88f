//! What the person lets leave the machine: kinds of items, a range of
//! days, and whether their profile (`<Me>`) goes along.
//!
//! A *kind* is what an item is called in the export: a record's or a
//! correlation's type identifier, a workout's activity type (or `Workout`
//! for all of them), `ActivitySummary`, or the name of a clinical document
//! (`ClinicalRecord`, `Audiogram`, `VisionPrescription`). The names people
//! type ("HeartRate", "sleep") are resolved to kinds by the local store,
//! which knows the categories; this is the resolved rule.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::names::{Category, category_of};
use crate::time::format_day;

/// Clinical documents: never sent unless named in [`Share::only`].
pub const PRIVATE_KINDS: [&str; 3] = ["ClinicalRecord", "Audiogram", "VisionPrescription"];

/// Every workout, whatever its activity.
pub const WORKOUT_KIND: &str = "Workout";

/// Kinds named one by one, and whole categories.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct Kinds {
    pub kinds: BTreeSet<String>,
    pub categories: BTreeSet<Category>,
}

impl Kinds {
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.categories.is_empty()
    }

    /// Named itself, or in a category named.
    pub fn has(&self, kind: &str) -> bool {
        self.kinds.contains(kind)
            || (!self.categories.is_empty() && self.categories.contains(&category_of(kind)))
    }

    fn has_workout(&self, activity_type: &str) -> bool {
        self.kinds.contains(WORKOUT_KIND) || self.kinds.contains(activity_type)
    }
}

impl<S: Into<String>> FromIterator<S> for Kinds {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Kinds {
            kinds: iter.into_iter().map(Into::into).collect(),
            categories: BTreeSet::new(),
        }
    }
}

/// The person's filters. The default sends everything but the profile and
/// clinical documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Share {
    /// Only items of these kinds; `None` for every kind.
    pub only: Option<Kinds>,
    /// Never items of these kinds.
    pub except: Kinds,
    /// The first and last local calendar day to send, inclusive, as days
    /// since 1970-01-01, compared with the day written in each item's
    /// start.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Send `<Me>`: date of birth, biological sex, blood type, skin type.
    pub include_me: bool,
}

impl Share {
    /// Whether an item of `kind` may go.
    pub fn wants_kind(&self, kind: &str) -> bool {
        if PRIVATE_KINDS.contains(&kind) {
            // Named, never by a category.
            return self
                .only
                .as_ref()
                .is_some_and(|only| only.kinds.contains(kind));
        }
        self.only.as_ref().is_none_or(|only| only.has(kind)) && !self.except.has(kind)
    }

    /// Whether a workout of this activity type may go: named itself, or
    /// all workouts named as [`WORKOUT_KIND`].
    pub fn wants_workout(&self, activity_type: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.has_workout(activity_type))
            && !self.except.has_workout(activity_type)
    }

    /// Whether a correlation may go: by its own type, or under `only` by
    /// the type of a record inside it (blood pressure goes with its
    /// systolic and diastolic records).
    pub fn wants_correlation<'a>(
        &self,
        kind: &str,
        nested: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        if self.except.has(kind) {
            return false;
        }
        match &self.only {
            None => true,
            Some(only) => only.has(kind) || nested.into_iter().any(|k| only.has(k)),
        }
    }

    /// Whether an item that starts on this local day (days since the
    /// epoch) may go.
    pub fn wants_day(&self, day: i64) -> bool {
        self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
    }

    /// Whether an item that starts on this day (`None`: undated) may go.
    /// Undated documents cannot be said to fall in a range of days.
    pub fn wants_start(&self, day: Option<i64>) -> bool {
        match day {
            Some(day) => self.wants_day(day),
            None => !self.has_dates(),
        }
    }

    pub fn has_dates(&self) -> bool {
        self.from.is_some() || self.to.is_some()
    }

    /// In words, for the history: "only heart rate, sleep; 2024-01-01 to
    /// 2024-03-31; with the profile", or "" for the defaults.
    pub fn describe(&self, name: impl Fn(&str) -> String) -> String {
        let mut parts = Vec::new();
        if let Some(only) = &self.only {
            parts.push(format!("only {}", list(only, &name)));
        }
        if !self.except.is_empty() {
            parts.push(format!("except {}", list(&self.except, &name)));
        }
        match (self.from, self.to) {
            (Some(from), Some(to)) => {
                parts.push(format!("{} to {}", format_day(from), format_day(to)))
            }
            (Some(from), None) => parts.push(format!("from {}", format_day(from))),
            (None, Some(to)) => parts.push(format!("until {}", format_day(to))),
            (None, None) => {}
        }
        if self.include_me {
            parts.push("with the profile".into());
        }
        parts.join("; ")
    }
}

fn list(kinds: &Kinds, name: &impl Fn(&str) -> String) -> String {
    const SHOWN: usize = 4;
    let mut names: Vec<String> = kinds
        .categories
        .iter()
        .map(|c| c.name().to_lowercase())
        .chain(kinds.kinds.iter().map(|k| name(k)))
        .collect();
    names.dedup();
    if names.len() > SHOWN {
        let more = names.len() - SHOWN;
        names.truncate(SHOWN);
        names.push(format!("{more} more"));
    }
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(kinds: &[&str]) -> Kinds {
        kinds.iter().copied().collect()
    }

    #[test]
    fn clinical_documents_go_only_when_named() {
        let default = Share::default();
        assert!(default.wants_kind("HKQuantityTypeIdentifierHeartRate"));
        assert!(!default.wants_kind("ClinicalRecord"));
        let except = Share {
            except: set(&["HKQuantityTypeIdentifierHeartRate"]),
            ..Share::default()
        };
        assert!(!except.wants_kind("HKQuantityTypeIdentifierHeartRate"));
        assert!(!except.wants_kind("Audiogram"));
        let named = Share {
            only: Some(set(&["Audiogram"])),
            ..Share::default()
        };
        assert!(named.wants_kind("Audiogram"));
        assert!(!named.wants_kind("ClinicalRecord"));
        assert!(!named.wants_workout("HKWorkoutActivityTypeRunning"));
    }

    #[test]
    fn workouts_go_by_activity_or_all_together() {
        let runs = Share {
            only: Some(set(&["HKWorkoutActivityTypeRunning"])),
            ..Share::default()
        };
        assert!(runs.wants_workout("HKWorkoutActivityTypeRunning"));
        assert!(!runs.wants_workout("HKWorkoutActivityTypeYoga"));
        let no_workouts = Share {
            except: set(&[WORKOUT_KIND]),
            ..Share::default()
        };
        assert!(!no_workouts.wants_workout("HKWorkoutActivityTypeRunning"));
        assert!(Share::default().wants_workout("HKWorkoutActivityTypeYoga"));
    }

    #[test]
    fn a_correlation_goes_with_the_records_inside_it() {
        let systolic = Share {
            only: Some(set(&["HKQuantityTypeIdentifierBloodPressureSystolic"])),
            ..Share::default()
        };
        let bp = "HKCorrelationTypeIdentifierBloodPressure";
        assert!(systolic.wants_correlation(bp, ["HKQuantityTypeIdentifierBloodPressureSystolic"]));
        assert!(!systolic.wants_correlation(bp, ["HKQuantityTypeIdentifierDietaryWater"]));
        // Days say nothing of kinds: the day is asked apart.
        let days = Share {
            from: Some(19_000),
            to: Some(19_100),
            ..Share::default()
        };
        assert!(days.wants_correlation(bp, ["HKQuantityTypeIdentifierBloodPressureSystolic"]));
        assert!(!days.wants_start(None), "undated items fall in no range");
        assert!(days.wants_start(Some(19_000)) && !days.wants_start(Some(19_101)));
    }

    #[test]
    fn categories_hold_every_type_of_theirs_but_clinical_documents() {
        let heart = Share {
            only: Some(Kinds {
                categories: [Category::Heart, Category::Other].into(),
                ..Kinds::default()
            }),
            ..Share::default()
        };
        assert!(heart.wants_kind("HKQuantityTypeIdentifierHeartRate"));
        assert!(heart.wants_kind("HKQuantityTypeIdentifierRestingHeartRate"));
        assert!(!heart.wants_kind("HKCategoryTypeIdentifierSleepAnalysis"));
        assert!(!heart.wants_kind("ClinicalRecord"), "named only");
        assert_eq!(heart.describe(|k| k.to_string()), "only heart, other data");
    }

    #[test]
    fn days_are_inclusive() {
        let share = Share {
            from: Some(10),
            to: Some(12),
            ..Share::default()
        };
        assert!(!share.wants_day(9));
        assert!(share.wants_day(10) && share.wants_day(12));
        assert!(!share.wants_day(13));
        assert_eq!(
            share.describe(|k| k.to_string()),
            "1970-01-11 to 1970-01-13"
        );
    }
}
