//! Names people read: "Heart rate", not `HKQuantityTypeIdentifierHeartRate`.
//!
//! Every HealthKit identifier the preview shows (record, workout, event and
//! statistic types) goes through [`display_name`]; record types are grouped
//! by [`category_of`] as the Health app groups them. The table lists the
//! types whose name is not just their identifier split into words; any other
//! identifier, including ones Apple adds later, still gets a readable name.

use serde::Serialize;

/// A group of record types, in the order the preview lists them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Activity,
    Heart,
    Sleep,
    Body,
    Vitals,
    Respiratory,
    Mobility,
    Hearing,
    Nutrition,
    Mindfulness,
    ReproductiveHealth,
    Symptoms,
    Other,
}

impl Category {
    /// Every category, in display order.
    pub const ALL: [Category; 13] = [
        Category::Activity,
        Category::Heart,
        Category::Sleep,
        Category::Body,
        Category::Vitals,
        Category::Respiratory,
        Category::Mobility,
        Category::Hearing,
        Category::Nutrition,
        Category::Mindfulness,
        Category::ReproductiveHealth,
        Category::Symptoms,
        Category::Other,
    ];

    /// Its name in requests and tallies (`heart`, `reproductive_health`).
    pub const fn key(self) -> &'static str {
        match self {
            Category::Activity => "activity",
            Category::Heart => "heart",
            Category::Sleep => "sleep",
            Category::Body => "body",
            Category::Vitals => "vitals",
            Category::Respiratory => "respiratory",
            Category::Mobility => "mobility",
            Category::Hearing => "hearing",
            Category::Nutrition => "nutrition",
            Category::Mindfulness => "mindfulness",
            Category::ReproductiveHealth => "reproductive_health",
            Category::Symptoms => "symptoms",
            Category::Other => "other",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Category::Activity => "Activity",
            Category::Heart => "Heart",
            Category::Sleep => "Sleep",
            Category::Body => "Body measurements",
            Category::Vitals => "Vitals",
            Category::Respiratory => "Respiratory",
            Category::Mobility => "Mobility",
            Category::Hearing => "Hearing",
            Category::Nutrition => "Nutrition",
            Category::Mindfulness => "Mindfulness",
            Category::ReproductiveHealth => "Cycle tracking",
            Category::Symptoms => "Symptoms",
            Category::Other => "Other data",
        }
    }
}

/// Record types of one category, for lists grouped as the Health app does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CategoryGroup {
    pub category: Category,
    pub name: String,
    /// Records of all its types.
    pub count: u64,
    /// Its types, busiest first.
    pub kinds: Vec<String>,
}

/// Groups `(type, count)` pairs by category, in [`Category::ALL`] order.
pub fn group_by_category<'a>(
    types: impl IntoIterator<Item = (&'a str, u64)>,
) -> Vec<CategoryGroup> {
    let mut groups: Vec<(CategoryGroup, Vec<(u64, &'a str)>)> = Vec::new();
    for (kind, count) in types {
        let category = category_of(kind);
        let at = match groups.iter().position(|(g, _)| g.category == category) {
            Some(at) => at,
            None => {
                groups.push((
                    CategoryGroup {
                        category,
                        name: category.name().to_string(),
                        count: 0,
                        kinds: Vec::new(),
                    },
                    Vec::new(),
                ));
                groups.len() - 1
            }
        };
        let (group, members) = &mut groups[at];
        group.count += count;
        members.push((count, kind));
    }
    groups.sort_by_key(|(g, _)| g.category);
    groups
        .into_iter()
        .map(|(mut group, mut members)| {
            members.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            group.kinds = members.into_iter().map(|(_, k)| k.to_string()).collect();
            group
        })
        .collect()
}

/// The prefixes HealthKit puts before a type's own name.
const PREFIXES: &[&str] = &[
    "HKQuantityTypeIdentifier",
    "HKCategoryTypeIdentifier",
    "HKCorrelationTypeIdentifier",
    "HKWorkoutActivityType",
    "HKWorkoutEventType",
    "HKDataType",
];

use Category::*;

/// Identifier (without prefix) → name and category, for the types whose
/// words alone would read oddly or whose category the prefix cannot tell.
const TYPES: &[(&str, &str, Category)] = &[
    // Activity
    ("StepCount", "Steps", Activity),
    (
        "DistanceWalkingRunning",
        "Walking + running distance",
        Activity,
    ),
    ("DistanceCycling", "Cycling distance", Activity),
    ("DistanceSwimming", "Swimming distance", Activity),
    ("DistanceWheelchair", "Wheelchair distance", Activity),
    (
        "DistanceDownhillSnowSports",
        "Downhill snow sports distance",
        Activity,
    ),
    ("ActiveEnergyBurned", "Active energy", Activity),
    ("BasalEnergyBurned", "Resting energy", Activity),
    ("FlightsClimbed", "Flights climbed", Activity),
    ("AppleExerciseTime", "Exercise minutes", Activity),
    ("AppleMoveTime", "Move minutes", Activity),
    ("AppleStandTime", "Stand minutes", Activity),
    ("AppleStandHour", "Stand hours", Activity),
    ("PushCount", "Wheelchair pushes", Activity),
    ("SwimmingStrokeCount", "Swimming strokes", Activity),
    ("NikeFuel", "NikeFuel", Activity),
    ("PhysicalEffort", "Physical effort", Activity),
    ("TimeInDaylight", "Time in daylight", Activity),
    ("WorkoutEffortScore", "Workout effort", Activity),
    (
        "EstimatedWorkoutEffortScore",
        "Estimated workout effort",
        Activity,
    ),
    ("RunningSpeed", "Running speed", Activity),
    ("RunningPower", "Running power", Activity),
    ("RunningStrideLength", "Running stride length", Activity),
    (
        "RunningVerticalOscillation",
        "Vertical oscillation",
        Activity,
    ),
    ("RunningGroundContactTime", "Ground contact time", Activity),
    ("CyclingSpeed", "Cycling speed", Activity),
    ("CyclingPower", "Cycling power", Activity),
    ("CyclingCadence", "Cycling cadence", Activity),
    (
        "CyclingFunctionalThresholdPower",
        "Cycling functional threshold power",
        Activity,
    ),
    // Heart
    ("HeartRate", "Heart rate", Heart),
    ("RestingHeartRate", "Resting heart rate", Heart),
    (
        "WalkingHeartRateAverage",
        "Walking heart rate average",
        Heart,
    ),
    ("HeartRateVariabilitySDNN", "Heart rate variability", Heart),
    ("HeartRateRecoveryOneMinute", "Heart rate recovery", Heart),
    ("AtrialFibrillationBurden", "AFib history", Heart),
    ("VO2Max", "Cardio fitness (VO₂ max)", Heart),
    (
        "PeripheralPerfusionIndex",
        "Peripheral perfusion index",
        Heart,
    ),
    ("HighHeartRateEvent", "High heart rate notification", Heart),
    ("LowHeartRateEvent", "Low heart rate notification", Heart),
    (
        "IrregularHeartRhythmEvent",
        "Irregular rhythm notification",
        Heart,
    ),
    (
        "LowCardioFitnessEvent",
        "Low cardio fitness notification",
        Heart,
    ),
    // Sleep
    ("SleepAnalysis", "Sleep", Sleep),
    ("SleepDurationGoal", "Sleep goal", Sleep),
    (
        "AppleSleepingBreathingDisturbances",
        "Breathing disturbances",
        Sleep,
    ),
    // Body measurements
    ("BodyMass", "Weight", Body),
    ("Height", "Height", Body),
    ("BodyMassIndex", "Body mass index", Body),
    ("BodyFatPercentage", "Body fat percentage", Body),
    ("LeanBodyMass", "Lean body mass", Body),
    ("WaistCircumference", "Waist circumference", Body),
    ("AppleSleepingWristTemperature", "Wrist temperature", Body),
    // Vitals
    ("BloodPressureSystolic", "Blood pressure (systolic)", Vitals),
    (
        "BloodPressureDiastolic",
        "Blood pressure (diastolic)",
        Vitals,
    ),
    ("BloodPressure", "Blood pressure", Vitals),
    ("BloodGlucose", "Blood glucose", Vitals),
    ("BodyTemperature", "Body temperature", Vitals),
    ("ElectrodermalActivity", "Electrodermal activity", Vitals),
    ("BloodAlcoholContent", "Blood alcohol content", Vitals),
    ("InsulinDelivery", "Insulin delivery", Vitals),
    // Respiratory
    ("OxygenSaturation", "Blood oxygen", Respiratory),
    ("RespiratoryRate", "Respiratory rate", Respiratory),
    ("ForcedVitalCapacity", "Forced vital capacity", Respiratory),
    (
        "ForcedExpiratoryVolume1",
        "Forced expiratory volume (1 s)",
        Respiratory,
    ),
    (
        "PeakExpiratoryFlowRate",
        "Peak expiratory flow rate",
        Respiratory,
    ),
    ("InhalerUsage", "Inhaler usage", Respiratory),
    // Mobility
    ("WalkingSpeed", "Walking speed", Mobility),
    ("WalkingStepLength", "Walking step length", Mobility),
    ("WalkingAsymmetryPercentage", "Walking asymmetry", Mobility),
    (
        "WalkingDoubleSupportPercentage",
        "Double support time",
        Mobility,
    ),
    ("StairAscentSpeed", "Stair speed: up", Mobility),
    ("StairDescentSpeed", "Stair speed: down", Mobility),
    ("SixMinuteWalkTestDistance", "Six-minute walk", Mobility),
    ("AppleWalkingSteadiness", "Walking steadiness", Mobility),
    (
        "AppleWalkingSteadinessEvent",
        "Walking steadiness notification",
        Mobility,
    ),
    ("NumberOfTimesFallen", "Number of falls", Mobility),
    // Hearing
    (
        "EnvironmentalAudioExposure",
        "Environmental sound levels",
        Hearing,
    ),
    ("HeadphoneAudioExposure", "Headphone audio levels", Hearing),
    (
        "EnvironmentalSoundReduction",
        "Environmental sound reduction",
        Hearing,
    ),
    (
        "EnvironmentalAudioExposureEvent",
        "Noise notification",
        Hearing,
    ),
    (
        "HeadphoneAudioExposureEvent",
        "Headphone notification",
        Hearing,
    ),
    // Nutrition (other `Dietary…` types are found by their prefix)
    ("DietaryEnergyConsumed", "Dietary energy", Nutrition),
    ("DietaryWater", "Water", Nutrition),
    ("DietaryFatTotal", "Total fat", Nutrition),
    ("DietaryFatSaturated", "Saturated fat", Nutrition),
    (
        "DietaryFatMonounsaturated",
        "Monounsaturated fat",
        Nutrition,
    ),
    (
        "DietaryFatPolyunsaturated",
        "Polyunsaturated fat",
        Nutrition,
    ),
    (
        "NumberOfAlcoholicBeverages",
        "Alcoholic beverages",
        Nutrition,
    ),
    // Mindfulness
    ("MindfulSession", "Mindful minutes", Mindfulness),
    ("StateOfMind", "State of mind", Mindfulness),
    // Cycle tracking
    ("MenstrualFlow", "Menstruation", ReproductiveHealth),
    ("IntermenstrualBleeding", "Spotting", ReproductiveHealth),
    (
        "OvulationTestResult",
        "Ovulation test result",
        ReproductiveHealth,
    ),
    (
        "CervicalMucusQuality",
        "Cervical mucus quality",
        ReproductiveHealth,
    ),
    ("SexualActivity", "Sexual activity", ReproductiveHealth),
    (
        "BasalBodyTemperature",
        "Basal body temperature",
        ReproductiveHealth,
    ),
    ("Pregnancy", "Pregnancy", ReproductiveHealth),
    (
        "PregnancyTestResult",
        "Pregnancy test result",
        ReproductiveHealth,
    ),
    (
        "ProgesteroneTestResult",
        "Progesterone test result",
        ReproductiveHealth,
    ),
    ("Lactation", "Lactation", ReproductiveHealth),
    ("Contraceptive", "Contraceptives", ReproductiveHealth),
    (
        "InfrequentMenstrualCycles",
        "Infrequent periods",
        ReproductiveHealth,
    ),
    (
        "IrregularMenstrualCycles",
        "Irregular cycles",
        ReproductiveHealth,
    ),
    (
        "PersistentIntermenstrualBleeding",
        "Persistent spotting",
        ReproductiveHealth,
    ),
    (
        "ProlongedMenstrualPeriods",
        "Prolonged periods",
        ReproductiveHealth,
    ),
    // Other data
    ("ToothbrushingEvent", "Toothbrushing", Other),
    ("HandwashingEvent", "Handwashing", Other),
    ("UVExposure", "UV index", Other),
    ("WaterTemperature", "Water temperature", Other),
    ("UnderwaterDepth", "Underwater depth", Other),
    ("Food", "Food", Nutrition),
    // Workouts and their events
    ("HighIntensityIntervalTraining", "HIIT", Activity),
    ("MixedCardio", "Mixed cardio", Activity),
    ("MindAndBody", "Mind and body", Activity),
    ("PauseOrResumeRequest", "Pause or resume request", Activity),
    // Not a HealthKit type: the element of the Activity rings.
    ("ActivitySummary", "Activity rings", Activity),
];

/// Category types Apple files under Symptoms: their names are their words.
const SYMPTOMS: &[&str] = &[
    "AbdominalCramps",
    "Acne",
    "AppetiteChanges",
    "BladderIncontinence",
    "Bloating",
    "BreastPain",
    "ChestTightnessOrPain",
    "Chills",
    "Constipation",
    "Coughing",
    "Diarrhea",
    "Dizziness",
    "DrySkin",
    "Fainting",
    "Fatigue",
    "Fever",
    "GeneralizedBodyAche",
    "HairLoss",
    "Headache",
    "Heartburn",
    "HotFlashes",
    "LossOfSmell",
    "LossOfTaste",
    "LowerBackPain",
    "MemoryLapse",
    "MoodChanges",
    "Nausea",
    "NightSweats",
    "PelvicPain",
    "RapidPoundingOrFlutteringHeartbeat",
    "RunnyNose",
    "ShortnessOfBreath",
    "SinusCongestion",
    "SkippedHeartbeat",
    "SleepChanges",
    "SoreThroat",
    "VaginalDryness",
    "Vomiting",
    "Wheezing",
];

/// What a skip reason (`SkipReason::as_str`) means, for people.
pub fn skip_reason_text(reason: &str) -> String {
    match reason {
        "empty_value" => "an empty value".into(),
        "nan_value" => "a value that is not a finite number".into(),
        "invalid_value" => "a value that is not a number".into(),
        "invalid_date" => "a date that cannot be read".into(),
        "missing_attribute" => "a required attribute missing".into(),
        "invalid_beat" => "a heartbeat that cannot be read".into(),
        "invalid_route_point" => "route points without coordinates".into(),
        "route_file_missing" => "a route file missing from the export".into(),
        "invalid_route_file" => "a route file that is not GPX".into(),
        "element_too_large" => "too much nested data to keep".into(),
        other => other.replace('_', " "),
    }
}

/// A device as people know it: `name:Apple Watch, manufacturer:Apple Inc.,
/// model:Watch, hardware:Watch6,1, software:10.1` → "Apple Watch (Watch6,1,
/// software 10.1)". Text that is not in that form is shown as it is.
pub fn device_name(device: &str) -> String {
    let field = |key: &str| {
        device
            .split(", ")
            .find_map(|part| part.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let Some(name) = field("name").or_else(|| field("model")) else {
        return device.to_string();
    };
    let details: Vec<String> = [
        field("hardware").map(str::to_string),
        field("software").map(|v| format!("software {v}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if details.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", details.join(", "))
    }
}

/// The identifier without its HealthKit prefix.
/// Every type this table or Apple's symptom list knows, without prefix.
pub(crate) fn known_bare_names() -> impl Iterator<Item = &'static str> {
    TYPES
        .iter()
        .map(|(id, _, _)| *id)
        .chain(SYMPTOMS.iter().copied())
}

/// The prefixes a type identifier can have.
pub(crate) fn prefixes() -> &'static [&'static str] {
    PREFIXES
}

pub(crate) fn bare(identifier: &str) -> &str {
    PREFIXES
        .iter()
        .find_map(|p| identifier.strip_prefix(p))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(identifier)
}

fn entry(identifier: &str) -> Option<&'static (&'static str, &'static str, Category)> {
    let bare = bare(identifier);
    TYPES.iter().find(|(id, _, _)| *id == bare)
}

/// A readable name for any HealthKit identifier: record, correlation,
/// workout activity or workout event type.
pub fn display_name(identifier: &str) -> String {
    if let Some((_, name, _)) = entry(identifier) {
        return (*name).to_string();
    }
    let bare = bare(identifier);
    match bare.strip_prefix("Dietary").filter(|r| !r.is_empty()) {
        Some(nutrient) => words(nutrient),
        None => words(bare),
    }
}

/// The group a record type belongs to.
pub fn category_of(kind: &str) -> Category {
    if let Some((_, _, category)) = entry(kind) {
        return *category;
    }
    let bare = bare(kind);
    if bare.starts_with("Dietary") {
        Nutrition
    } else if bare.starts_with("Distance") {
        Activity
    } else if SYMPTOMS.contains(&bare) {
        Symptoms
    } else {
        Other
    }
}

/// `UVIndexMax` → "UV index max": a word starts at each capital (or digit)
/// that follows a lower-case letter, and at a capitalised word after an
/// acronym; words without lower-case letters keep their case, other words
/// after the first are lower-cased.
fn words(camel: &str) -> String {
    let chars: Vec<char> = camel.chars().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let boundary = match prev {
            None => false,
            Some(p) => {
                (c.is_uppercase() && (p.is_lowercase() || p.is_ascii_digit()))
                    || (c.is_uppercase()
                        && p.is_uppercase()
                        && next.is_some_and(char::is_lowercase))
                    || (c.is_ascii_digit() && p.is_lowercase())
            }
        };
        if boundary && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    let mut out = String::with_capacity(camel.len() + parts.len());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        // Acronyms and initials ("UV", "Vitamin B12") keep their capitals.
        let capitals = part.chars().all(|c| !c.is_lowercase());
        let keep = i == 0 || capitals;
        if keep {
            out.push_str(part);
        } else {
            out.extend(part.chars().flat_map(char::to_lowercase));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_people_read() {
        for (id, name) in [
            ("HKQuantityTypeIdentifierHeartRate", "Heart rate"),
            ("HKQuantityTypeIdentifierStepCount", "Steps"),
            ("HKCategoryTypeIdentifierSleepAnalysis", "Sleep"),
            ("HKQuantityTypeIdentifierVO2Max", "Cardio fitness (VO₂ max)"),
            ("HKQuantityTypeIdentifierDietaryVitaminC", "Vitamin C"),
            ("HKQuantityTypeIdentifierDietaryWater", "Water"),
            ("HKQuantityTypeIdentifierDietaryVitaminB12", "Vitamin B12"),
            (
                "HKCategoryTypeIdentifierAbdominalCramps",
                "Abdominal cramps",
            ),
            ("HKWorkoutActivityTypeRunning", "Running"),
            (
                "HKWorkoutActivityTypeTraditionalStrengthTraining",
                "Traditional strength training",
            ),
            ("HKWorkoutActivityTypeHighIntensityIntervalTraining", "HIIT"),
            ("HKWorkoutEventTypeMotionPaused", "Motion paused"),
            ("HKDataTypeSleepDurationGoal", "Sleep goal"),
            ("HKCorrelationTypeIdentifierBloodPressure", "Blood pressure"),
        ] {
            assert_eq!(display_name(id), name, "the name of {id}");
        }
    }

    #[test]
    fn unknown_identifiers_still_read_as_words() {
        assert_eq!(
            display_name("HKQuantityTypeIdentifierSomethingNewInIOS30"),
            "Something new in IOS30"
        );
        assert_eq!(
            display_name("HKQuantityTypeIdentifierUVIndexMax"),
            "UV index max"
        );
        assert_eq!(
            display_name("HeartRateVariabilitySDNN"),
            "Heart rate variability"
        );
        assert_eq!(display_name("CustomThing"), "Custom thing");
        assert_eq!(
            display_name("HKQuantityTypeIdentifier"),
            "HK quantity type identifier"
        );
        assert_eq!(display_name(""), "");
    }

    #[test]
    fn groups_types_as_the_health_app_does() {
        for (id, category) in [
            ("HKQuantityTypeIdentifierHeartRate", Heart),
            ("HKQuantityTypeIdentifierStepCount", Activity),
            ("HKQuantityTypeIdentifierDistanceRowing", Activity),
            ("HKQuantityTypeIdentifierDietaryCaffeine", Nutrition),
            ("HKCategoryTypeIdentifierSleepAnalysis", Sleep),
            ("HKQuantityTypeIdentifierBodyMass", Body),
            ("HKQuantityTypeIdentifierOxygenSaturation", Respiratory),
            ("HKCategoryTypeIdentifierHeadache", Symptoms),
            ("HKCategoryTypeIdentifierMindfulSession", Mindfulness),
            ("HKCategoryTypeIdentifierMenstrualFlow", ReproductiveHealth),
            ("HKQuantityTypeIdentifierSomethingNew", Other),
        ] {
            assert_eq!(category_of(id), category, "the category of {id}");
        }
    }

    #[test]
    fn groups_in_display_order_busiest_type_first() {
        let groups = group_by_category([
            ("HKQuantityTypeIdentifierRestingHeartRate", 10),
            ("HKQuantityTypeIdentifierStepCount", 5),
            ("HKQuantityTypeIdentifierHeartRate", 100),
        ]);
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["Activity", "Heart"]);
        assert_eq!(groups[1].count, 110);
        assert_eq!(
            groups[1].kinds,
            [
                "HKQuantityTypeIdentifierHeartRate",
                "HKQuantityTypeIdentifierRestingHeartRate"
            ]
        );
    }

    #[test]
    fn devices_read_as_their_name_and_model() {
        assert_eq!(
            device_name(
                "name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,1, software:10.1"
            ),
            "Apple Watch (Watch6,1, software 10.1)"
        );
        assert_eq!(
            device_name("name:iPhone, manufacturer:Apple Inc."),
            "iPhone"
        );
        assert_eq!(device_name("Polar H10"), "Polar H10");
    }

    #[test]
    fn the_table_has_one_entry_per_identifier() {
        let mut ids: Vec<&str> = TYPES.iter().map(|(id, _, _)| *id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "an identifier is listed twice in TYPES");
        for symptom in SYMPTOMS {
            assert!(
                entry(symptom).is_none(),
                "{symptom} is both a symptom and in TYPES"
            );
        }
    }
}
