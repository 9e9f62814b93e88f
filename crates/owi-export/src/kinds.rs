//! What people type for a kind of data — `HeartRate`, `heart rate`,
//! `HKQuantityTypeIdentifierHeartRate`, `sleep`, `workouts` — resolved to
//! the [`Kinds`] a [`Share`](crate::Share) filters by. Case and spacing do
//! not matter; a name nothing matches is an error that lists close ones.

use crate::error::{Error, Result};
use crate::names::{Category, bare, display_name, known_bare_names, prefixes};
use crate::server_types::SERVER_TYPES;
use crate::share::{Kinds, PRIVATE_KINDS, WORKOUT_KIND};

/// Names for the categories, as people say them.
const CATEGORY_NAMES: &[(&str, Category)] = &[
    ("activity", Category::Activity),
    ("heart", Category::Heart),
    ("sleep", Category::Sleep),
    ("body", Category::Body),
    ("bodymeasurements", Category::Body),
    ("vitals", Category::Vitals),
    ("respiratory", Category::Respiratory),
    ("mobility", Category::Mobility),
    ("hearing", Category::Hearing),
    ("nutrition", Category::Nutrition),
    ("mindfulness", Category::Mindfulness),
    ("cycletracking", Category::ReproductiveHealth),
    ("reproductivehealth", Category::ReproductiveHealth),
    ("symptoms", Category::Symptoms),
    ("other", Category::Other),
    ("otherdata", Category::Other),
];

/// Names for the elements that are not typed records.
const ELEMENT_NAMES: &[(&str, &[&str])] = &[
    ("workouts", &[WORKOUT_KIND]),
    ("workout", &[WORKOUT_KIND]),
    ("activitysummary", &["ActivitySummary"]),
    ("activitysummaries", &["ActivitySummary"]),
    ("activityrings", &["ActivitySummary"]),
    ("clinical", &PRIVATE_KINDS),
    ("clinicalrecords", &["ClinicalRecord"]),
    ("clinicalrecord", &["ClinicalRecord"]),
    ("audiograms", &["Audiogram"]),
    ("audiogram", &["Audiogram"]),
    ("visionprescriptions", &["VisionPrescription"]),
    ("visionprescription", &["VisionPrescription"]),
];

/// Lower case, without spaces, `_` and `-`: how names are compared.
fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every type known by its bare name (`HeartRate`).
fn known() -> impl Iterator<Item = &'static str> {
    known_bare_names().chain(SERVER_TYPES.iter().map(|id| bare(id)))
}

/// Resolves every name; the first unknown one is the error.
pub fn resolve_kinds<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Kinds> {
    let mut kinds = Kinds::default();
    for name in names {
        let name = name.trim();
        if !name.is_empty() {
            resolve_one(name, &mut kinds)?;
        }
    }
    Ok(kinds)
}

fn resolve_one(name: &str, into: &mut Kinds) -> Result<()> {
    let wanted = squash(name);
    if let Some((_, kinds)) = ELEMENT_NAMES.iter().find(|(n, _)| *n == wanted) {
        into.kinds.extend(kinds.iter().map(|k| k.to_string()));
        return Ok(());
    }
    if let Some((_, category)) = CATEGORY_NAMES.iter().find(|(n, _)| *n == wanted) {
        into.categories.insert(*category);
        return Ok(());
    }
    // A whole identifier, known or one Apple added since.
    if prefixes()
        .iter()
        .any(|p| name.starts_with(p) && name.len() > p.len())
    {
        into.kinds.insert(name.to_string());
        return Ok(());
    }
    // A bare name (`HeartRate`, `heartrate`) or the name people read
    // (`heart rate`): every prefix it can take, as an identifier is one
    // of them.
    let matches: Vec<&str> = known()
        .filter(|bare| squash(bare) == wanted || squash(&display_name(bare)) == wanted)
        .collect();
    if matches.is_empty() {
        return Err(Error::UnknownKind {
            name: name.to_string(),
            close: close_to(&wanted),
        });
    }
    for bare in matches {
        for prefix in prefixes() {
            into.kinds.insert(format!("{prefix}{bare}"));
        }
    }
    Ok(())
}

/// ": did you mean A, B or C?" for the names nearest `wanted`.
fn close_to(wanted: &str) -> String {
    let mut candidates: Vec<(usize, String)> = CATEGORY_NAMES
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(["workouts".to_string(), "clinical".to_string()])
        .chain(known().map(str::to_string))
        .filter_map(|candidate| {
            let squashed = squash(&candidate);
            let distance = strsim::levenshtein(wanted, &squashed);
            let near = distance <= (wanted.len() / 3).max(2)
                || (wanted.len() >= 4 && squashed.contains(wanted));
            near.then_some((distance, candidate))
        })
        .collect();
    candidates.sort();
    candidates.dedup_by(|a, b| a.1 == b.1);
    let names: Vec<String> = candidates.into_iter().take(5).map(|(_, n)| n).collect();
    match names.as_slice() {
        [] => "; name a HealthKit type (HeartRate, StepCount), a category (heart, sleep, activity) or workouts".into(),
        [one] => format!(": did you mean {one}?"),
        [init @ .., last] => format!(": did you mean {} or {last}?", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(names: &[&str]) -> Kinds {
        resolve_kinds(names.iter().copied()).unwrap_or_else(|e| panic!("{names:?}: {e}"))
    }

    #[test]
    fn short_full_and_readable_names_and_categories_resolve() {
        for name in [
            "HeartRate",
            "heartrate",
            "Heart rate",
            "HKQuantityTypeIdentifierHeartRate",
        ] {
            assert!(
                resolved(&[name]).has("HKQuantityTypeIdentifierHeartRate"),
                "{name}"
            );
        }
        let sleep = resolved(&["sleep"]);
        assert!(sleep.has("HKCategoryTypeIdentifierSleepAnalysis"));
        assert!(!sleep.has("HKQuantityTypeIdentifierHeartRate"));
        assert!(resolved(&["Workouts"]).kinds.contains("Workout"));
        assert!(resolved(&["clinical"]).kinds.contains("Audiogram"));
        assert!(resolved(&["Body measurements"]).has("HKQuantityTypeIdentifierBodyMass"));
        assert!(
            resolved(&["ActivitySummary"])
                .kinds
                .contains("ActivitySummary")
        );
    }

    #[test]
    fn an_unknown_name_lists_close_ones() {
        let e = resolve_kinds(["HeartRat"]).unwrap_err().to_string();
        assert!(e.contains("\"HeartRat\"") && e.contains("HeartRate"), "{e}");
        let e = resolve_kinds(["slep"]).unwrap_err().to_string();
        assert!(e.contains("sleep"), "{e}");
        let e = resolve_kinds(["zzzzzzzzzz"]).unwrap_err().to_string();
        assert!(e.contains("name a HealthKit type"), "{e}");
    }
}
