//! Integration tests of the export reader: every element kind, bad values,
//! localized and hostile zips, the broken iOS 16 DTD, entities, repaired
//! characters, truncation, zip bombs, cancellation, progress, the public
//! samples and the fingerprint; upload bodies in `outgoing`.

mod bounds;
mod outgoing;
mod selection;
mod util;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use owi_export::{Error, ExportSource, ReadOptions, SkipReason, Timestamp};
use owi_progress::{CancelToken, Phase, Progress, Recorder};

use util::zipcraft::{self, Entry};
use util::*;

const fn ts(utc: i64, offset_min: i16) -> Timestamp {
    Timestamp { utc, offset_min }
}

// ---------------------------------------------------------------------------
// 1. Every element kind, hand-written
// ---------------------------------------------------------------------------

const KINDS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 14 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|Audiogram|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
]>
<HealthData locale="en_GB">
 <ExportDate value="2024-06-01 08:10:05 +0200"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1990-12-06" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet" HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse="None"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Koby’s Apple Watch" sourceVersion="10.2" device="&lt;&lt;HKDevice: 0x1c469e230&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,7, software:10.2&gt;" unit="count/min" creationDate="2024-01-01 05:31:00 +0530" startDate="2024-01-01 05:30:00 +0530" endDate="2024-01-01 05:30:10 +0530" value="83">
  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="1"/>
  <MetadataEntry key="HKAverageMETs" value="9.66668 kcal/hr·kg"/>
  <MetadataEntry key="Withings Link" value="a?b=1&amp;c=2"/>
 </Record>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="West Watch" unit="count/min" startDate="2023-12-31 16:00:00 -0800" endDate="2023-12-31 16:00:00 -0800" value="61"/>
 <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" sourceName="HRV PM" unit="ms" startDate="2023-11-22 19:47:40 -0500" endDate="2023-11-22 19:48:40 -0500" value="48.5">
  <HeartRateVariabilityMetadataList>
   <InstantaneousBeatsPerMinute bpm="58" time="7:47:41.86 PM"/>
   <InstantaneousBeatsPerMinute bpm="61" time="7:47:42.85 PM"/>
  </HeartRateVariabilityMetadataList>
 </Record>
 <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" sourceName="HRV comma" unit="ms" startDate="2024-10-28 12:20:58 +0100" endDate="2024-10-28 12:21:58 +0100" value="39">
  <MetadataEntry key="HKAlgorithmVersion" value="2"/>
  <HeartRateVariabilityMetadataList>
   <InstantaneousBeatsPerMinute bpm="72" time="12:21:00,30"/>
  </HeartRateVariabilityMetadataList>
 </Record>
 <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" sourceName="HRV midnight" unit="ms" startDate="2024-03-09 23:59:58 -0800" endDate="2024-03-10 00:00:58 -0800" value="51">
  <HeartRateVariabilityMetadataList>
   <InstantaneousBeatsPerMinute bpm="55" time="11:59:59.50 PM"/>
   <InstantaneousBeatsPerMinute bpm="57" time="12:00:01.20 AM"/>
  </HeartRateVariabilityMetadataList>
 </Record>
 <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Sleep" startDate="2024-01-01 00:55:28 +0200" endDate="2024-01-01 00:56:53 +0200" value="HKCategoryValueSleepAnalysisInBed"/>
 <Record type="HKCategoryTypeIdentifierMindfulSession" sourceName="Mindful" startDate="2024-01-01 08:00:00 +0200" endDate="2024-01-01 08:05:00 +0200"/>
 <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Health" sourceVersion="17.2" creationDate="2024-01-02 09:00:00 +0100" startDate="2024-01-02 09:00:00 +0100" endDate="2024-01-02 09:00:00 +0100">
  <MetadataEntry key="HKWasUserEntered" value="1"/>
  <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="Nested BP" unit="mmHg" startDate="2024-01-02 09:00:00 +0100" endDate="2024-01-02 09:00:00 +0100" value="70"/>
  <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Nested BP" unit="mmHg" startDate="2024-01-02 09:00:00 +0100" endDate="2024-01-02 09:00:00 +0100" value="110">
   <MetadataEntry key="HKWasUserEntered" value="1"/>
  </Record>
 </Correlation>
 <Workout workoutActivityType="HKWorkoutActivityTypeWalking" duration="53.05183674693107" durationUnit="min" totalDistance="2.985843180268872" totalDistanceUnit="mi" totalEnergyBurned="259.191938540603" totalEnergyBurnedUnit="Cal" sourceName="Old Watch" sourceVersion="5.1.2" device="&lt;&lt;HKDevice: 0x1c4488f80&gt;, name:Apple Watch, manufacturer:Apple, model:Watch, hardware:Watch3,4, software:5.1.2&gt;" creationDate="2018-12-17 08:48:03 -0800" startDate="2018-12-17 07:54:59 -0800" endDate="2018-12-17 08:48:02 -0800">
  <MetadataEntry key="HKTimeZone" value="America/Los_Angeles"/>
  <WorkoutEvent type="HKWorkoutEventTypePause" date="2018-12-17 08:10:00 -0800"/>
  <WorkoutEvent type="HKWorkoutEventTypeResume" date="2018-12-17 08:12:00 -0800"/>
  <WorkoutRoute sourceName="Old Phone" sourceVersion="12.1" creationDate="2018-12-17 08:48:10 -0800" startDate="2018-12-17 07:55:00 -0800" endDate="2018-12-17 07:55:01 -0800">
   <MetadataEntry key="HKMetadataKeySyncVersion" value="2"/>
   <Location date="2018-12-17 07:55:00 -0800" latitude="37.7777" longitude="-122.426" altitude="21.2694" horizontalAccuracy="2.40948" verticalAccuracy="1.67859" course="-1" speed="2.48034"/>
   <Location date="2018-12-17 07:55:01 -0800" latitude="37.77775" longitude="-122.42605" altitude="21.3" horizontalAccuracy="2.4" verticalAccuracy="1.6" course="90.5" speed="2.5"/>
  </WorkoutRoute>
 </Workout>
 <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" durationUnit="min" sourceName="Modern Watch" sourceVersion="10.2" creationDate="2024-05-01 07:31:00 +0200" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200">
  <MetadataEntry key="HKIndoorWorkout" value="0"/>
  <WorkoutEvent type="HKWorkoutEventTypeSegment" date="2024-05-01 07:00:00 +0200" duration="5" durationUnit="min">
   <MetadataEntry key="HKSegmentIndex" value="1"/>
  </WorkoutEvent>
  <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200" sum="5.2" unit="km"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200" sum="1255.2" unit="kJ"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200" average="150.5" minimum="98" maximum="181" unit="count/min"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierStepCount" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200" sum="5000" unit="count"/>
  <WorkoutActivity uuid="5B1F2C1E-6F0A-4B9E-9C1A-2D3E4F5A6B7C" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200" duration="30" durationUnit="min">
   <MetadataEntry key="WOIntervalStepKeyPath" value="0.0.0"/>
   <WorkoutEvent type="HKWorkoutEventTypeSegment" date="2024-05-01 07:00:00 +0200" duration="5" durationUnit="min"/>
   <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200" sum="5.2" unit="km"/>
   <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200" sum="1255.2" unit="kJ"/>
   <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200" average="150.5" minimum="98" maximum="181" unit="count/min"/>
  </WorkoutActivity>
  <WorkoutRoute sourceName="Modern Watch" sourceVersion="10.2" creationDate="2024-05-01 07:31:00 +0200" startDate="2024-05-01 07:10:00 +0200" endDate="2024-05-01 07:10:02 +0200">
   <MetadataEntry key="HKMetadataKeySyncVersion" value="2"/>
   <FileReference path="/workout-routes/route_2024-05-01_7.10am.gpx"/>
  </WorkoutRoute>
  <WorkoutZoneGroup type="HKQuantityTypeIdentifierHeartRate" source="system" unit="count/min">
   <WorkoutZone maximum="132" duration="22.0863" durationUnit="min"/>
   <WorkoutZone minimum="132" maximum="146" duration="0.0833333" durationUnit="min"/>
   <WorkoutZone minimum="146" duration="0" durationUnit="min"/>
  </WorkoutZoneGroup>
  <Record type="HKQuantityTypeIdentifierEstimatedWorkoutEffortScore" sourceName="Effort" unit="appleEffortScore" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200" value="7"/>
 </Workout>
 <Workout workoutActivityType="HKWorkoutActivityTypeSwimBikeRun" sourceName="Triathlon Watch" startDate="2024-06-02 08:00:00 +0200" endDate="2024-06-02 10:00:00 +0200">
  <WorkoutActivity uuid="00000000-0000-4000-8000-000000000001" workoutActivityType="HKWorkoutActivityTypeSwimming" startDate="2024-06-02 08:00:00 +0200" endDate="2024-06-02 08:30:00 +0200">
   <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceSwimming" sum="1000" unit="m"/>
   <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" sum="200" unit="kcal"/>
   <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" average="120" minimum="90" maximum="150" unit="count/min"/>
  </WorkoutActivity>
  <WorkoutActivity uuid="00000000-0000-4000-8000-000000000002" workoutActivityType="HKWorkoutActivityTypeCycling" startDate="2024-06-02 08:35:00 +0200" endDate="2024-06-02 10:00:00 +0200">
   <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceCycling" sum="20" unit="km"/>
   <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" sum="400" unit="Cal"/>
   <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" average="140" minimum="100" maximum="170" unit="count/min"/>
  </WorkoutActivity>
 </Workout>
 <Workout workoutActivityType="HKWorkoutActivityTypeHiking" sourceName="Lost Route Watch" startDate="2024-06-03 08:00:00 +0200" endDate="2024-06-03 09:00:00 +0200">
  <WorkoutRoute sourceName="Missing Route Phone" startDate="2024-06-03 08:00:00 +0200" endDate="2024-06-03 09:00:00 +0200">
   <FileReference path="/workout-routes/route_2024-06-03_9.00am.gpx"/>
  </WorkoutRoute>
 </Workout>
 <ActivitySummary dateComponents="2020-11-20" activeEnergyBurned="487.231" activeEnergyBurnedGoal="300" activeEnergyBurnedUnit="Cal" appleExerciseTime="74" appleExerciseTimeGoal="30" appleStandHours="16" appleStandHoursGoal="11"/>
 <ActivitySummary dateComponents="2024-05-01" activeEnergyBurned="1500" activeEnergyBurnedGoal="1200" activeEnergyBurnedUnit="kJ" appleMoveTime="12" appleMoveTimeGoal="30" appleExerciseTime="20" appleExerciseTimeGoal="30" appleStandHours="9" appleStandHoursGoal="12"/>
 <ClinicalRecord type="Procedure" identifier="TkxvzAawHeQb3Fi8PI60qLcpVWSuan8Gk1dSZsdZkm.YB" sourceName="Sutter Health" sourceURL="https://fhir.example.org/DSTU2/Procedure/1?a=1&amp;b=2" fhirVersion="1.0.2" receivedDate="2020-12-06 20:24:28 -0800" resourceFilePath="/clinical-records/Procedure-488D59AE-81D4-4597-8FBB-713DE1CEF228.json"/>
 <Audiogram type="HKDataTypeIdentifierAudiogram" sourceName="Mimi" sourceVersion="5.0" creationDate="2024-02-01 10:00:00 +0100" startDate="2024-02-01 10:00:00 +0100" endDate="2024-02-01 10:10:00 +0100">
  <MetadataEntry key="HKWasUserEntered" value="0"/>
  <SensitivityPoint frequencyValue="500" frequencyUnit="Hz" leftEarValue="10" leftEarUnit="dBHL" leftEarMasked="0" rightEarValue="15" rightEarUnit="dBHL"/>
  <SensitivityPoint frequencyValue="1000" frequencyUnit="Hz" leftEarValue="15" leftEarUnit="dBHL" rightEarValue="20" rightEarUnit="dBHL"/>
  <SensitivityPoint frequencyValue="2000" frequencyUnit="Hz" leftEarValue="25" leftEarUnit="dBHL" rightEarValue="30" rightEarUnit="dBHL"/>
 </Audiogram>
 <VisionPrescription type="HKVisionPrescriptionTypeGlasses" dateIssued="2023-09-01 10:00:00 +0200" expirationDate="2025-09-01 10:00:00 +0200" brand="Optic">
  <RightEye sphere="-1.25" sphereUnit="D" cylinder="-0.5" cylinderUnit="D" axis="90" axisUnit="deg"/>
  <LeftEye sphere="-1.5" sphereUnit="D"/>
  <Attachment identifier="B8D0E5A4-0000-4000-8000-000000000003"/>
  <MetadataEntry key="HKMetadataKeyDeviceName" value="Scanner"/>
 </VisionPrescription>
 <HKFutureSample kind="hologram"><FutureChild depth="1"/></HKFutureSample>
 <Record type="HKQuantityTypeIdentifierStepCount" sourceName="After Unknown" unit="count" startDate="2024-06-04 10:00:00 +0200" endDate="2024-06-04 10:05:00 +0200" value="420"/>
</HealthData>
"#;

const KINDS_GPX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="Apple Health Export" xmlns="http://www.topografix.com/GPX/1/1">
  <metadata><time>2024-06-01T06:10:05Z</time></metadata>
  <trk><name>Route 2024-05-01 7:10am</name><trkseg>
    <trkpt lon="13.404954" lat="52.520008"><ele>34.5</ele><time>2024-05-01T05:10:00Z</time><extensions><speed>2.5</speed><course>-1.000000</course><hAcc>3.7</hAcc><vAcc>2.7</vAcc></extensions></trkpt>
    <trkpt lon="13.405000" lat="52.520100"><ele>34.6</ele><time>2024-05-01T05:10:01Z</time><extensions><speed>2.6</speed><course>45.0</course><hAcc>3.6</hAcc><vAcc>2.6</vAcc></extensions></trkpt>
    <trkpt lon="13.405100" lat="52.520200"><ele>34.8</ele><time>2024-05-01T05:10:02Z</time><extensions><speed>2.7</speed><course>46.0</course><hAcc>3.5</hAcc><vAcc>2.5</vAcc></extensions></trkpt>
  </trkseg></trk>
</gpx>
"#;

const GPX_NAME: &str = "workout-routes/route_2024-05-01_7.10am.gpx";

/// KINDS as `export.xml`, next to its `workout-routes/` folder, read once.
fn read_kinds() -> (tempfile::TempDir, PathBuf, Outcome) {
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", KINDS);
    write(dir.path(), GPX_NAME, KINDS_GPX);
    let outcome = read_path(&path);
    (dir, path, outcome)
}

#[test]
fn header_carries_locale_export_date_and_me() {
    let (_dir, _path, out) = read_kinds();
    out.report();
    let header = out.seen.header();
    assert_eq!(header.locale.as_deref(), Some("en_GB"), "HealthData@locale");
    assert_eq!(
        header.export_date,
        Some(ts(1_717_222_205, 120)),
        "ExportDate keeps its instant and its +0200 offset"
    );
    let me: Vec<(&str, &str)> = header
        .me
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        me,
        vec![
            ("HKCharacteristicTypeIdentifierDateOfBirth", "1990-12-06"),
            (
                "HKCharacteristicTypeIdentifierBiologicalSex",
                "HKBiologicalSexFemale"
            ),
            (
                "HKCharacteristicTypeIdentifierBloodType",
                "HKBloodTypeNotSet"
            ),
            (
                "HKCharacteristicTypeIdentifierFitzpatrickSkinType",
                "HKFitzpatrickSkinTypeNotSet"
            ),
            (
                "HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse",
                "None"
            ),
        ],
        "every Me attribute, in document order"
    );
    assert_eq!(
        out.seen.order.first(),
        Some(&Seen::Header),
        "the header comes before any data"
    );
}

#[test]
fn record_keeps_every_attribute_metadata_and_its_offset() {
    let (_dir, _path, out) = read_kinds();
    out.report();
    let r = out.seen.by_source("Koby’s Apple Watch");
    assert_eq!(r.kind, "HKQuantityTypeIdentifierHeartRate");
    assert_eq!(r.source_version.as_deref(), Some("10.2"));
    assert_eq!(
        r.device.as_deref(),
        Some(
            "name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,7, software:10.2"
        ),
        "device is unescaped and loses its per-object HKDevice pointer"
    );
    assert_eq!(r.unit.as_deref(), Some("count/min"));
    assert_eq!(r.value, OwnedValue::Number(83.0));
    assert_eq!(
        r.created,
        Some(ts(1_704_067_260, 330)),
        "creationDate at +0530"
    );
    assert_eq!(
        r.start,
        ts(1_704_067_200, 330),
        "2024-01-01 05:30:00 +0530 is 2024-01-01T00:00:00Z, offset kept as +330 min"
    );
    assert_eq!(r.end, ts(1_704_067_210, 330));
    let meta: Vec<(&str, &str)> = r
        .metadata
        .iter()
        .map(|m| (m.key.as_str(), m.value.as_str()))
        .collect();
    assert_eq!(
        meta,
        vec![
            ("HKMetadataKeyHeartRateMotionContext", "1"),
            ("HKAverageMETs", "9.66668 kcal/hr·kg"),
            ("Withings Link", "a?b=1&c=2"),
        ],
        "metadata in order, entities decoded once"
    );
    assert!(r.beats.is_empty(), "no beat list on this record");
    assert_eq!(
        r.offset,
        offset_of(KINDS, "Record", "Koby’s Apple Watch"),
        "Record.offset is the byte offset of its `<Record` in the XML"
    );

    // The same instant written at another offset: equal instants, offsets kept.
    let west = out.seen.by_source("West Watch");
    assert_eq!(west.start.utc, r.start.utc, "same instant as +0530 record");
    assert_eq!(west.start.offset_min, -480, "-0800 kept as -480 minutes");
    assert_eq!(west.start.to_apple_string(), "2023-12-31 16:00:00 -0800");
    assert_eq!(r.start.to_apple_string(), "2024-01-01 05:30:00 +0530");
}

#[test]
fn category_values_stay_text_and_a_missing_value_is_none() {
    let (_dir, _path, out) = read_kinds();
    out.report();
    assert_eq!(
        out.seen.by_source("Sleep").value,
        OwnedValue::Text("HKCategoryValueSleepAnalysisInBed".into())
    );
    assert_eq!(out.seen.by_source("Sleep").unit, None);
    assert_eq!(out.seen.by_source("Mindful").value, OwnedValue::None);
}

#[test]
fn heart_beats_are_placed_on_the_record_day_in_every_time_format() {
    let (_dir, _path, out) = read_kinds();
    out.report();
    let pm = out.seen.by_source("HRV PM");
    let beats: Vec<(f64, i64)> = pm.beats.iter().map(|b| (b.bpm, b.at_ms)).collect();
    assert_eq!(
        beats,
        vec![(58.0, 1_700_700_461_860), (61.0, 1_700_700_462_850)],
        "`7:47:41.86 PM` on 2023-11-22 at -0500 is 2023-11-23T00:47:41.860Z"
    );

    let comma = out.seen.by_source("HRV comma");
    assert_eq!(
        comma.meta("HKAlgorithmVersion"),
        Some("2"),
        "metadata and beats together"
    );
    let beats: Vec<(f64, i64)> = comma.beats.iter().map(|b| (b.bpm, b.at_ms)).collect();
    assert_eq!(
        beats,
        vec![(72.0, 1_730_114_460_300)],
        "24-hour `12:21:00,30` (comma fraction) is 12:21:00.300 at +0100"
    );

    let midnight = out.seen.by_source("HRV midnight");
    let beats: Vec<(f64, i64)> = midnight.beats.iter().map(|b| (b.bpm, b.at_ms)).collect();
    assert_eq!(
        beats,
        vec![(55.0, 1_710_057_599_500), (57.0, 1_710_057_601_200)],
        "`12:00:01.20 AM` after `11:59:59.50 PM` belongs to the next day"
    );
    assert_eq!(
        midnight.beats[1].at_ms - midnight.beats[0].at_ms,
        1_700,
        "the two beats are 1.7 s apart, not a day minus 1.7 s"
    );
}

#[test]
fn beats_written_an_hour_off_the_record_clock_are_moved_next_to_it() {
    let dir = tempdir();
    let path = write(
        dir.path(),
        "export.xml",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<HealthData locale="pt_PT">
 <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" sourceName="Watch" unit="ms" startDate="2024-10-28 13:20:58 +0100" endDate="2024-10-28 13:21:58 +0100" value="39">
  <HeartRateVariabilityMetadataList>
   <InstantaneousBeatsPerMinute bpm="72" time="12:21:00,30"/>
   <InstantaneousBeatsPerMinute bpm="70" time="12:21:01,15"/>
  </HeartRateVariabilityMetadataList>
 </Record>
</HealthData>
"#,
    );
    let out = read_path(&path);
    out.report();
    let beats: Vec<i64> = out
        .seen
        .by_source("Watch")
        .beats
        .iter()
        .map(|b| b.at_ms)
        .collect();
    assert_eq!(
        beats,
        vec![1_730_118_060_300, 1_730_118_061_150],
        "beats an hour before startDate's clock belong just after it (13:21:00.300 +0100)"
    );
}

#[test]
fn correlation_keeps_nested_records_which_are_not_records() {
    let (_dir, _path, out) = read_kinds();
    let report = out.report();
    assert_eq!(out.seen.correlations.len(), 1);
    let c = &out.seen.correlations[0];
    assert_eq!(c.kind, "HKCorrelationTypeIdentifierBloodPressure");
    assert_eq!(c.source_version.as_deref(), Some("17.2"));
    assert_eq!(c.start, ts(1_704_182_400, 60));
    assert_eq!(c.metadata.len(), 1);
    assert_eq!(c.metadata[0].key, "HKWasUserEntered");
    let nested: Vec<(&str, Option<&str>, Option<&str>)> = c
        .records
        .iter()
        .map(|r| (r.kind.as_str(), r.unit.as_deref(), r.value.as_deref()))
        .collect();
    assert_eq!(
        nested,
        vec![
            (
                "HKQuantityTypeIdentifierBloodPressureDiastolic",
                Some("mmHg"),
                Some("70")
            ),
            (
                "HKQuantityTypeIdentifierBloodPressureSystolic",
                Some("mmHg"),
                Some("110")
            ),
        ]
    );
    assert_eq!(c.records[1].metadata.len(), 1, "nested record metadata");
    assert!(
        out.seen
            .records
            .iter()
            .all(|r| r.source_name != "Nested BP"),
        "nested records must not be passed to record()"
    );
    assert_eq!(
        c.offset,
        offset_of(
            KINDS,
            "Correlation",
            "HKCorrelationTypeIdentifierBloodPressure"
        )
    );
    // 8 top-level records; the 2 nested in the correlation and 1 in a workout do not count.
    assert_eq!(
        report.stats.records, 8,
        "only top-level Records are counted"
    );
    assert_eq!(out.seen.records.len(), 8);
    assert_eq!(report.stats.correlations, 1);
}

#[test]
fn old_style_workout_converts_its_total_attributes() {
    let (_dir, _path, out) = read_kinds();
    out.report();
    let w = &out.seen.workouts[0];
    assert_eq!(w.activity_type, "HKWorkoutActivityTypeWalking");
    assert_eq!(w.source_name, "Old Watch");
    assert_eq!(
        w.device.as_deref(),
        Some(
            "name:Apple Watch, manufacturer:Apple, model:Watch, hardware:Watch3,4, software:5.1.2"
        )
    );
    assert_eq!(w.start, ts(1_545_062_099, -480));
    let Some(distance) = w.total_distance_m else {
        panic!("totalDistance should be read: {w:?}");
    };
    assert_close(
        distance,
        4_805.248_807,
        1e-3,
        "2.985843180268872 mi in metres",
    );
    assert_eq!(w.distance_m(), w.total_distance_m, "attribute wins");
    assert_close(
        w.energy_kcal().unwrap_or(f64::NAN),
        259.191_938_540_603,
        1e-9,
        "Cal is kcal",
    );
    assert_close(
        w.duration_s.unwrap_or(f64::NAN),
        3_183.110_204_815_864_6,
        1e-6,
        "53.05 min in seconds",
    );
    assert_eq!(w.time_zone(), Some("America/Los_Angeles"));
    let events: Vec<(&str, Option<f64>)> = w
        .events
        .iter()
        .map(|e| (e.kind.as_str(), e.duration_s))
        .collect();
    assert_eq!(
        events,
        vec![
            ("HKWorkoutEventTypePause", None),
            ("HKWorkoutEventTypeResume", None)
        ]
    );
    assert_eq!(w.events[0].date, ts(1_545_063_000, -480));
}

#[test]
fn inline_location_route_points_are_read() {
    let (_dir, _path, out) = read_kinds();
    out.report();
    let w = &out.seen.workouts[0];
    assert_eq!(w.routes.len(), 1);
    assert_eq!(w.routes[0].source_name.as_deref(), Some("Old Phone"));
    assert_eq!(w.routes[0].file, None, "inline route, no FileReference");
    assert_eq!(w.routes[0].metadata.len(), 1);
    assert_eq!(w.route_points.len(), 2, "both <Location> points");
    let p = &w.route_points[0];
    assert_eq!(p.at_ms, 1_545_062_100_000);
    assert_eq!((p.lat, p.lon), (37.7777, -122.426));
    assert_eq!(p.elevation_m, Some(21.2694));
    assert_eq!(p.speed_mps, Some(2.48034));
    assert_eq!(p.course_deg, Some(-1.0));
    assert_eq!(p.h_acc_m, Some(2.40948));
    assert_eq!(p.v_acc_m, Some(1.67859));
    assert_eq!(w.route_points[1].at_ms - p.at_ms, 1_000);
}

#[test]
fn modern_workout_totals_come_from_statistics_without_double_counting() {
    let (_dir, _path, out) = read_kinds();
    out.report();
    let w = &out.seen.workouts[1];
    assert_eq!(w.activity_type, "HKWorkoutActivityTypeRunning");
    assert_eq!(w.total_distance_m, None, "no totalDistance attribute");
    assert_eq!(w.total_energy_kcal, None, "no totalEnergyBurned attribute");
    assert_close(
        w.distance_m().unwrap_or(f64::NAN),
        5_200.0,
        1e-9,
        "5.2 km once, although the activity repeats the statistic",
    );
    assert_close(
        w.energy_kcal().unwrap_or(f64::NAN),
        300.0,
        1e-9,
        "1255.2 kJ is 300 kcal",
    );
    let hr = w.heart_rate();
    assert_eq!(
        (hr.min, hr.avg, hr.max),
        (Some(98.0), Some(150.5), Some(181.0))
    );
    assert_eq!(w.duration_secs(), 1_800.0);

    // Statistics of both levels are kept, tagged with their level.
    let tagged: Vec<(Option<usize>, &str)> = w
        .statistics
        .iter()
        .map(|s| (s.activity, s.kind.as_str()))
        .collect();
    assert_eq!(tagged.iter().filter(|(a, _)| a.is_none()).count(), 4);
    assert_eq!(tagged.iter().filter(|(a, _)| *a == Some(0)).count(), 3);
    let steps = w
        .statistics
        .iter()
        .find(|s| s.kind == "HKQuantityTypeIdentifierStepCount")
        .unwrap_or_else(|| panic!("step statistics kept: {:?}", w.statistics));
    assert_eq!(steps.sum, Some(5_000.0));
    assert_eq!(steps.unit.as_deref(), Some("count"));
    assert_eq!(steps.start, Some(ts(1_714_539_600, 120)));

    // Events with duration and metadata, at both levels.
    assert_eq!(w.events.len(), 2);
    assert_eq!(w.events[0].activity, None);
    assert_eq!(w.events[0].duration_s, Some(300.0), "5 min segment");
    assert_eq!(w.events[0].metadata.len(), 1, "events may carry metadata");
    assert_eq!(w.events[1].activity, Some(0));

    // The activity itself.
    assert_eq!(w.activities.len(), 1);
    let a = &w.activities[0];
    assert_eq!(
        a.uuid.as_deref(),
        Some("5B1F2C1E-6F0A-4B9E-9C1A-2D3E4F5A6B7C")
    );
    assert_eq!(a.duration_s, Some(1_800.0));
    assert_eq!(a.start, Some(ts(1_714_539_600, 120)));
    assert_eq!(a.metadata.len(), 1);
    assert_eq!(a.metadata[0].value, "0.0.0");
    assert_eq!(
        w.metadata.len(),
        1,
        "activity metadata stays on the activity"
    );

    // A record nested in a workout is kept there.
    assert_eq!(w.records.len(), 1);
    assert_eq!(w.records[0].unit.as_deref(), Some("appleEffortScore"));
    assert!(out.seen.records.iter().all(|r| r.source_name != "Effort"));
}

#[test]
fn multi_sport_workout_sums_its_activities() {
    let (_dir, _path, out) = read_kinds();
    out.report();
    let w = &out.seen.workouts[2];
    assert_eq!(w.activities.len(), 2);
    assert_eq!(
        w.activities[1].activity_type.as_deref(),
        Some("HKWorkoutActivityTypeCycling")
    );
    assert_close(
        w.distance_m().unwrap_or(f64::NAN),
        21_000.0,
        1e-9,
        "1000 m swim + 20 km bike",
    );
    assert_close(
        w.energy_kcal().unwrap_or(f64::NAN),
        600.0,
        1e-9,
        "200 kcal + 400 Cal",
    );
    let hr = w.heart_rate();
    assert_eq!(
        (hr.min, hr.avg, hr.max),
        (Some(90.0), Some(130.0), Some(170.0))
    );
    assert_eq!(w.duration_s, None);
    assert_eq!(w.duration_secs(), 7_200.0, "end - start without a duration");
}

#[test]
fn gpx_route_next_to_the_xml_is_loaded() {
    let (_dir, _path, out) = read_kinds();
    let report = out.report();
    let w = &out.seen.workouts[1];
    assert_eq!(w.routes.len(), 1);
    let route = &w.routes[0];
    assert_eq!(
        route.file.as_deref(),
        Some("/workout-routes/route_2024-05-01_7.10am.gpx")
    );
    assert!(route.file_loaded, "the GPX next to the XML was read");
    assert_eq!(route.metadata.len(), 1);
    let times: Vec<i64> = w.route_points.iter().map(|p| p.at_ms).collect();
    assert_eq!(
        times,
        vec![1_714_540_200_000, 1_714_540_201_000, 1_714_540_202_000]
    );
    assert_eq!(
        (w.route_points[0].lat, w.route_points[0].lon),
        (52.520008, 13.404954),
        "lat and lon, although lon is written first"
    );
    assert_eq!(w.route_points[0].elevation_m, Some(34.5));
    assert_eq!(w.route_points[0].course_deg, Some(-1.0));
    assert_eq!(w.route_points[2].speed_mps, Some(2.7));
    assert_eq!(report.stats.route_files, 1);
    assert_eq!(
        report.stats.route_points, 5,
        "2 inline Location points and 3 GPX points"
    );
}

#[test]
fn a_missing_gpx_is_skipped_with_its_reason_and_offset() {
    let (_dir, _path, out) = read_kinds();
    let report = out.report();
    let w = &out.seen.workouts[3];
    assert_eq!(w.routes.len(), 1);
    assert!(!w.routes[0].file_loaded);
    assert!(w.route_points.is_empty());
    assert_eq!(out.seen.skips.len(), 1, "skips: {:?}", out.seen.skips);
    let skip = &out.seen.skips[0];
    assert_eq!(skip.reason, SkipReason::RouteFileMissing);
    assert_eq!(skip.reason.as_str(), "route_file_missing");
    assert_eq!(skip.element, "WorkoutRoute");
    assert!(
        skip.detail.contains("route_2024-06-03_9.00am.gpx"),
        "the detail names the missing file: {}",
        skip.detail
    );
    assert_eq!(
        skip.offset,
        offset_of(KINDS, "WorkoutRoute", "Missing Route Phone")
    );
    assert_eq!(
        report.stats.skipped,
        BTreeMap::from([(SkipReason::RouteFileMissing, 1)])
    );
}

#[test]
fn routes_are_left_unread_when_the_consumer_asks() {
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", KINDS);
    write(dir.path(), GPX_NAME, KINDS_GPX);
    let source = open(&path);
    let out = read_with(
        &source,
        Collector::default(),
        ReadOptions {
            read_routes: false,
            ..ReadOptions::default()
        },
    );
    let report = out.report();
    let w = &out.seen.workouts[1];
    assert!(!w.routes[0].file_loaded);
    assert_eq!(
        w.routes[0].file.as_deref(),
        Some("/workout-routes/route_2024-05-01_7.10am.gpx")
    );
    assert_eq!(report.stats.route_files, 0);
    assert_eq!(report.stats.route_points, 2, "inline points only");
    assert!(
        report.stats.skipped.is_empty(),
        "an unread route is not missing"
    );

    // The consumer can load it itself.
    let Ok(mut routes) = source.routes() else {
        panic!("routes() should open for an XML source");
    };
    assert_eq!(
        routes.files(),
        vec!["/workout-routes/route_2024-05-01_7.10am.gpx".to_string()]
    );
    let mut points = Vec::new();
    assert_eq!(
        routes.load("/workout-routes/route_2024-05-01_7.10am.gpx", &mut points),
        owi_export::RouteLoad::Loaded {
            points: 3,
            invalid: 0
        }
    );
    assert_eq!(
        routes.load("/workout-routes/nope.gpx", &mut points),
        owi_export::RouteLoad::Missing
    );
    assert_eq!(
        routes.load("/../../etc/passwd", &mut points),
        owi_export::RouteLoad::Missing,
        "a reference escaping the export folder is never opened"
    );
}

#[test]
fn gpx_route_inside_a_zip_is_loaded() {
    for folder in ["apple_health_export/", "Export 2024/"] {
        let dir = tempdir();
        let zip = zipcraft::build(&[
            Entry::dir(folder),
            Entry::new(&format!("{folder}export.xml"), KINDS),
            Entry::new(&format!("{folder}{GPX_NAME}"), KINDS_GPX),
        ]);
        let path = write(dir.path(), "export.zip", zip);
        let out = read_path(&path);
        let report = out.report();
        let w = &out.seen.workouts[1];
        assert!(
            w.routes[0].file_loaded,
            "GPX under {folder} should be found from the FileReference"
        );
        assert_eq!(w.route_points.len(), 3);
        assert_eq!(w.route_points[1].at_ms, 1_714_540_201_000);
        assert_eq!(report.stats.route_files, 1);
        assert_eq!(report.stats.route_points, 5);
        let routes = open(&path)
            .routes()
            .unwrap_or_else(|e| panic!("routes of a zip: {e}"));
        assert_eq!(
            routes.files(),
            vec!["/workout-routes/route_2024-05-01_7.10am.gpx".to_string()]
        );
    }
}

#[test]
fn zone_groups_are_kept_verbatim_in_extra() {
    let (_dir, _path, out) = read_kinds();
    out.report();
    let w = &out.seen.workouts[1];
    assert_eq!(w.extra.len(), 1, "extra: {:?}", w.extra);
    let group = &w.extra[0];
    assert_eq!(group.name, "WorkoutZoneGroup");
    assert_eq!(group.attr("source"), Some("system"));
    assert_eq!(group.attr("unit"), Some("count/min"));
    assert_eq!(group.children.len(), 3);
    assert!(group.children.iter().all(|z| z.name == "WorkoutZone"));
    assert_eq!(group.children[0].attr("minimum"), None);
    assert_eq!(group.children[1].attr("minimum"), Some("132"));
    assert_eq!(group.children[1].attr("maximum"), Some("146"));
    assert_eq!(group.children[2].attr("duration"), Some("0"));
}

#[test]
fn activity_summaries_of_both_generations() {
    let (_dir, _path, out) = read_kinds();
    let report = out.report();
    assert_eq!(report.stats.activity_summaries, 2);
    let [old, new] = out.seen.summaries.as_slice() else {
        panic!("two summaries: {:?}", out.seen.summaries);
    };
    assert_eq!(old.day, 18_586, "2020-11-20 as days since the epoch");
    assert_eq!(old.active_energy, Some(487.231));
    assert_eq!(old.active_energy_goal, Some(300.0));
    assert_eq!(old.active_energy_unit.as_deref(), Some("Cal"));
    assert_eq!(
        (old.move_minutes, old.move_minutes_goal),
        (None, None),
        "no appleMoveTime in the older form"
    );
    assert_eq!(old.exercise_minutes, Some(74.0));
    assert_eq!(old.exercise_minutes_goal, Some(30.0));
    assert_eq!(old.stand_hours, Some(16.0));
    assert_eq!(old.stand_hours_goal, Some(11.0));
    assert_eq!(new.day, 19_844, "2024-05-01");
    assert_eq!(new.active_energy_unit.as_deref(), Some("kJ"));
    assert_eq!(
        (new.move_minutes, new.move_minutes_goal),
        (Some(12.0), Some(30.0)),
        "appleMoveTime/appleMoveTimeGoal"
    );
}

#[test]
fn clinical_audiogram_and_vision_elements_are_delivered_whole() {
    let (_dir, _path, out) = read_kinds();
    let report = out.report();
    assert_eq!(
        report.stats.elements,
        BTreeMap::from([
            ("Audiogram".to_string(), 1),
            ("ClinicalRecord".to_string(), 1),
            ("VisionPrescription".to_string(), 1),
        ])
    );
    let clinical = out.seen.element("ClinicalRecord");
    assert_eq!(clinical.attr("type"), Some("Procedure"));
    assert_eq!(clinical.attr("fhirVersion"), Some("1.0.2"));
    assert_eq!(
        clinical.attr("sourceURL"),
        Some("https://fhir.example.org/DSTU2/Procedure/1?a=1&b=2")
    );
    assert_eq!(
        clinical.attr("resourceFilePath"),
        Some("/clinical-records/Procedure-488D59AE-81D4-4597-8FBB-713DE1CEF228.json")
    );
    assert_eq!(
        clinical.date(),
        Some(ts(1_607_315_068, -480)),
        "receivedDate"
    );
    assert_eq!(
        clinical.offset,
        offset_of(
            KINDS,
            "ClinicalRecord",
            "TkxvzAawHeQb3Fi8PI60qLcpVWSuan8Gk1dSZsdZkm"
        )
    );

    let audiogram = out.seen.element("Audiogram");
    let points: Vec<(Option<&str>, Option<&str>, Option<&str>)> = audiogram
        .children
        .iter()
        .filter(|c| c.name == "SensitivityPoint")
        .map(|c| {
            (
                c.attr("frequencyValue"),
                c.attr("leftEarValue"),
                c.attr("rightEarValue"),
            )
        })
        .collect();
    assert_eq!(
        points,
        vec![
            (Some("500"), Some("10"), Some("15")),
            (Some("1000"), Some("15"), Some("20")),
            (Some("2000"), Some("25"), Some("30")),
        ]
    );
    assert_eq!(audiogram.children[0].name, "MetadataEntry");
    assert_eq!(audiogram.children[1].attr("leftEarMasked"), Some("0"));
    assert_eq!(audiogram.date(), Some(ts(1_706_778_000, 60)));

    let vision = out.seen.element("VisionPrescription");
    let names: Vec<&str> = vision.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["RightEye", "LeftEye", "Attachment", "MetadataEntry"]
    );
    assert_eq!(vision.children[0].attr("cylinder"), Some("-0.5"));
    assert_eq!(vision.attr("brand"), Some("Optic"));
    assert_eq!(vision.date(), Some(ts(1_693_555_200, 120)), "dateIssued");
}

#[test]
fn an_unknown_top_level_element_is_counted_not_fatal() {
    let (_dir, _path, out) = read_kinds();
    let report = out.report();
    assert_eq!(
        report.stats.unknown.get("HKFutureSample"),
        Some(&1),
        "unknown: {:?}",
        report.stats.unknown
    );
    let after = out.seen.by_source("After Unknown");
    assert_eq!(after.value, OwnedValue::Number(420.0), "reading went on");
    assert!(
        out.seen.elements.iter().all(|e| e.name != "HKFutureSample"),
        "unknown elements are not passed as known ones"
    );
}

#[test]
fn everything_arrives_in_document_order_with_complete_stats() {
    let (_dir, path, out) = read_kinds();
    let report = out.report();
    use Seen::*;
    assert_eq!(
        out.seen.order,
        vec![
            Header,
            Record(0),
            Record(1),
            Record(2),
            Record(3),
            Record(4),
            Record(5),
            Record(6),
            Correlation(0),
            Workout(0),
            Workout(1),
            Workout(2),
            Skip(0),
            Workout(3),
            ActivitySummary(0),
            ActivitySummary(1),
            Element(0),
            Element(1),
            Element(2),
            Record(7),
        ]
    );
    let stats = &report.stats;
    assert_eq!(stats.records, 8);
    assert_eq!(stats.correlations, 1);
    assert_eq!(stats.workouts, 4);
    assert_eq!(stats.activity_summaries, 2);
    assert!(stats.had_dtd, "the fixture has a DTD");
    assert_eq!(stats.repaired_chars, 0);
    assert_eq!(stats.bytes, KINDS.len() as u64, "every byte was read");
    let source = open(&path);
    assert!(!source.is_zip());
    assert_eq!(source.xml_size(), KINDS.len() as u64);
    assert_eq!(source.xml_name(), "export.xml");
    assert!(source.skipped_entries().is_empty());
}

// ---------------------------------------------------------------------------
// 2. Values that do not parse
// ---------------------------------------------------------------------------

#[test]
fn unparseable_values_and_dates_are_skipped_with_reason_offset_and_type() {
    let body = [
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "ok-1",
            "count/min",
            "70",
            "2024-01-01 10:00:00 +0000",
        ),
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "bad-nan",
            "count/min",
            "nan",
            "2024-01-01 10:01:00 +0000",
        ),
        quantity(
            "HKQuantityTypeIdentifierBodyMass",
            "bad-empty",
            "kg",
            "",
            "2024-01-01 10:02:00 +0000",
        ),
        quantity(
            "HKQuantityTypeIdentifierStepCount",
            "bad-abc",
            "count",
            "abc",
            "2024-01-01 10:03:00 +0000",
        ),
        quantity(
            "HKQuantityTypeIdentifierDistanceWalkingRunning",
            "bad-inf",
            "km",
            "inf",
            "2024-01-01 10:04:00 +0000",
        ),
        quantity(
            "HKCategoryTypeIdentifierSleepAnalysis",
            "category-text",
            "",
            "HKCategoryValueSleepAnalysisAsleepCore",
            "2024-01-01 10:05:00 +0000",
        ),
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "bad-date",
            "count/min",
            "71",
            "2024-13-01 10:06:00 +0000",
        ),
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "bad-iso",
            "count/min",
            "72",
            "2024-01-01T10:07:00Z",
        ),
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "ok-2",
            "count/min",
            "73",
            "2024-01-01 10:08:00 +0000",
        ),
    ]
    .concat();
    let doc = export_doc(&body);
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", &doc);
    let out = read_path(&path);
    let report = out.report();

    let delivered: Vec<&str> = out
        .seen
        .records
        .iter()
        .map(|r| r.source_name.as_str())
        .collect();
    assert_eq!(delivered, vec!["ok-1", "category-text", "ok-2"]);
    assert_eq!(
        out.seen.by_source("category-text").value,
        OwnedValue::Text("HKCategoryValueSleepAnalysisAsleepCore".into()),
        "a category value is text, not an invalid number"
    );
    assert_eq!(report.stats.records, 9, "skipped records are still records");

    let expected = [
        (
            SkipReason::NanValue,
            "nan_value",
            "HKQuantityTypeIdentifierHeartRate",
            "bad-nan",
        ),
        (
            SkipReason::EmptyValue,
            "empty_value",
            "HKQuantityTypeIdentifierBodyMass",
            "bad-empty",
        ),
        (
            SkipReason::InvalidValue,
            "invalid_value",
            "HKQuantityTypeIdentifierStepCount",
            "bad-abc",
        ),
        (
            SkipReason::NanValue,
            "nan_value",
            "HKQuantityTypeIdentifierDistanceWalkingRunning",
            "bad-inf",
        ),
        (
            SkipReason::InvalidDate,
            "invalid_date",
            "HKQuantityTypeIdentifierHeartRate",
            "bad-date",
        ),
        (
            SkipReason::InvalidDate,
            "invalid_date",
            "HKQuantityTypeIdentifierHeartRate",
            "bad-iso",
        ),
    ];
    assert_eq!(
        out.seen.skips.len(),
        expected.len(),
        "skips: {:?}",
        out.seen.skips
    );
    for (skip, (reason, name, kind, marker)) in out.seen.skips.iter().zip(expected) {
        assert_eq!(skip.reason, reason, "reason of {marker}");
        assert_eq!(skip.reason.as_str(), name);
        assert_eq!(skip.element, "Record");
        assert_eq!(skip.record_type.as_deref(), Some(kind), "type of {marker}");
        assert_eq!(
            skip.offset,
            offset_of(&doc, "Record", &format!("\"{marker}\"")),
            "offset of {marker} is its `<Record`"
        );
    }
    assert_eq!(
        report.stats.skipped,
        BTreeMap::from([
            (SkipReason::EmptyValue, 1),
            (SkipReason::NanValue, 2),
            (SkipReason::InvalidValue, 1),
            (SkipReason::InvalidDate, 2),
        ])
    );
    let serialized =
        serde_json::to_value(&report.stats).unwrap_or_else(|e| panic!("stats serialize: {e}"));
    assert_eq!(
        serialized["skipped"]["nan_value"], 2,
        "skip reasons are counted under their snake_case names: {serialized}"
    );
}

// ---------------------------------------------------------------------------
// 3. Localized zip names, macOS junk
// ---------------------------------------------------------------------------

const CDA_TWO_ROOTS: &str = "<?xml version=\"1.0\"?>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>CDA</title></ClinicalDocument>\n<component/>\n";

fn small_export() -> String {
    export_doc(
        &[
            quantity(
                "HKQuantityTypeIdentifierHeartRate",
                "Watch",
                "count/min",
                "64",
                "2024-01-01 10:00:00 +0100",
            ),
            quantity(
                "HKQuantityTypeIdentifierStepCount",
                "Phone",
                "count",
                "1200",
                "2024-01-01 10:01:00 +0100",
            ),
        ]
        .concat(),
    )
}

/// A zip with the export under `export_entry`, plus what a Mac adds and the
/// CDA document. The AppleDouble entry holds a HealthData document too, so
/// it would count as a second export if it were not skipped.
fn localized_zip(export_entry: Entry) -> Vec<u8> {
    let doc = small_export();
    zipcraft::build(&[
        Entry::dir("apple_health_export/"),
        export_entry,
        Entry::new("apple_health_export/export_cda.xml", CDA_TWO_ROOTS),
        Entry::new(
            "apple_health_export/.DS_Store",
            b"\0\0\0\x01Bud1\0\0\x10\0".to_vec(),
        ),
        Entry::new("__MACOSX/apple_health_export/._export.xml", doc.as_str()),
        Entry::new(
            "__MACOSX/apple_health_export/._.DS_Store",
            b"\0\x05\x16\x07\0\x02\0\0Mac OS X".to_vec(),
        ),
    ])
}

#[test]
fn the_export_is_found_by_content_under_any_localized_name() {
    let doc = small_export();
    let cases: Vec<(&str, Entry, &str)> = vec![
        (
            "Russian",
            Entry::new("apple_health_export/экспорт.xml", doc.as_str()),
            "apple_health_export/экспорт.xml",
        ),
        (
            "Korean",
            Entry::new("apple_health_export/내보내기.xml", doc.as_str()),
            "apple_health_export/내보내기.xml",
        ),
        (
            "Japanese, stored",
            Entry::new("apple_health_export/書き出したデータ.xml", doc.as_str()).stored(),
            "apple_health_export/書き出したデータ.xml",
        ),
        (
            "Spanish in NFD",
            Entry::new("apple_health_export/exportacio\u{301}n.xml", doc.as_str()),
            "apple_health_export/exportaci\u{f3}n.xml",
        ),
        (
            "Chinese, UTF-8 without the flag",
            Entry::new("apple_health_export/导出.xml", doc.as_str()).without_utf8_flag(),
            "apple_health_export/导出.xml",
        ),
        (
            "CP437 bytes without the flag",
            Entry::new("x", doc.as_str())
                .raw_name(b"apple_health_export/exportaci\xa2n.xml")
                .without_utf8_flag(),
            "apple_health_export/exportaci\u{f3}n.xml",
        ),
    ];
    for (label, entry, expected_name) in cases {
        let dir = tempdir();
        let path = write(dir.path(), "export.zip", localized_zip(entry));
        let source = ExportSource::open(&path)
            .unwrap_or_else(|e| panic!("{label}: the export should be found: {e}"));
        assert!(source.is_zip());
        assert_eq!(source.xml_name(), expected_name, "{label}: NFC name");
        assert_eq!(source.xml_size(), doc.len() as u64, "{label}");
        let mut skipped: Vec<(&str, &str)> = source
            .skipped_entries()
            .iter()
            .map(|s| (s.name.as_str(), s.reason))
            .collect();
        skipped.sort();
        let names: Vec<&str> = skipped.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            vec![
                "__MACOSX/apple_health_export/._.DS_Store",
                "__MACOSX/apple_health_export/._export.xml",
                "apple_health_export/.DS_Store",
                "apple_health_export/export_cda.xml",
            ],
            "{label}: junk and CDA are listed as skipped"
        );
        assert!(
            skipped[3].1.contains("CDA"),
            "{label}: the CDA reason says so: {}",
            skipped[3].1
        );
        let out = read_source(&source);
        let report = out.report();
        assert_eq!(report.stats.records, 2, "{label}");
        assert_eq!(out.seen.records[1].number(), 1200.0, "{label}");
    }
}

#[test]
fn open_xml_streams_the_exact_uncompressed_bytes() {
    let doc = small_export();
    let dir = tempdir();
    let path = write(
        dir.path(),
        "export.zip",
        localized_zip(Entry::new("apple_health_export/eksport.xml", doc.as_str())),
    );
    let source = open(&path);
    let mut bytes = Vec::new();
    match source.open_xml() {
        Ok(mut reader) => {
            std::io::Read::read_to_end(&mut reader, &mut bytes)
                .unwrap_or_else(|e| panic!("reading the entry: {e}"));
        }
        Err(e) => panic!("open_xml: {e}"),
    }
    assert_eq!(bytes, doc.as_bytes());
    assert_eq!(source.path(), path.as_path());
    assert_eq!(
        source.file_size(),
        fs::metadata(&path).map(|m| m.len()).unwrap_or_default()
    );
}

#[test]
fn a_zip64_archive_is_read_like_any_other() {
    // The zip crate writes ZIP64 headers for an entry marked large, whatever
    // its size: the same structures as a real export of more than 4 GiB.
    use std::io::Write;
    let doc = small_export();
    let dir = tempdir();
    let path = dir.path().join("export.zip");
    let file = fs::File::create(&path).expect("create zip");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file("apple_health_export/export.xml", options)
        .expect("start entry");
    zip.write_all(doc.as_bytes()).expect("write entry");
    zip.finish().expect("finish zip");

    let raw = fs::read(&path).expect("read zip");
    let u16_at = |at: usize| u16::from_le_bytes([raw[at], raw[at + 1]]);
    let name_len = usize::from(u16_at(26));
    assert_eq!(&raw[..4], b"PK\x03\x04", "a local file header first");
    assert_eq!(
        u16_at(30 + name_len),
        0x0001,
        "the local header's first extra field is the ZIP64 one"
    );
    let source = open(&path);
    assert_eq!(source.xml_size(), doc.len() as u64);
    let out = read_path(&path);
    let report = out.report();
    assert!(report.stats.records > 0, "records read from a ZIP64 entry");
}

// ---------------------------------------------------------------------------
// 4. DTDs: the iOS 16 breakage, entities, external ids
// ---------------------------------------------------------------------------

/// The defects of the iOS 16 (Export Version 12) DTD described in FORMAT.md:
/// `<!ATTLIST VisionPrescription` never closed, then stray lines and a lone
/// `>` before `]>`.
const IOS16_DTD: &str = r#"<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 12 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|Audiogram|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutRoute)*)>
<!ELEMENT VisionPrescription ((RightEye|LeftEye|Attachment|MetadataEntry)*)>
<!ATTLIST VisionPrescription
  type             CDATA #REQUIRED
  dateIssued       CDATA #REQUIRED
  expirationDate   CDATA #REQUIRED
  brand            CDATA #IMPLIED
<!ELEMENT RightEye EMPTY>
<!ATTLIST RightEye
  sphere           CDATA #IMPLIED
  sphereUnit       CDATA #IMPLIED
>
<!ELEMENT LeftEye EMPTY>
<!ATTLIST LeftEye
  sphere           CDATA #IMPLIED
  sphereUnit       CDATA #IMPLIED
>
  device           CDATA #IMPLIED
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key              CDATA #IMPLIED
  value            CDATA #IMPLIED
>
>
]>"#;

fn body_for_dtd_tests() -> String {
    [
        quantity("HKQuantityTypeIdentifierHeartRate", "Watch", "count/min", "64", "2024-01-01 10:00:00 +0100"),
        " <Workout workoutActivityType=\"HKWorkoutActivityTypeYoga\" sourceName=\"Watch\" startDate=\"2024-01-01 11:00:00 +0100\" endDate=\"2024-01-01 11:30:00 +0100\"/>\n".to_string(),
        " <VisionPrescription type=\"HKVisionPrescriptionTypeGlasses\" dateIssued=\"2023-09-01 10:00:00 +0200\"><RightEye sphere=\"-1\"/></VisionPrescription>\n".to_string(),
    ]
    .concat()
}

fn doc_with_prolog(prolog: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{prolog}\n<HealthData locale=\"en_US\">\n \
         <ExportDate value=\"2022-10-01 10:00:00 +0200\"/>\n{body}</HealthData>\n"
    )
}

#[test]
fn the_broken_ios16_dtd_is_skipped_and_the_data_read() {
    let body = body_for_dtd_tests();
    let dir = tempdir();
    let broken = write(dir.path(), "broken.xml", doc_with_prolog(IOS16_DTD, &body));
    let plain = write(dir.path(), "plain.xml", doc_with_prolog("", &body));

    // The fixture carries both defects.
    assert!(IOS16_DTD.contains("brand            CDATA #IMPLIED\n<!ELEMENT RightEye"));
    assert!(IOS16_DTD.ends_with(">\n>\n]>"), "a lone `>` before `]>`");

    let with_dtd = read_path(&broken);
    let without = read_path(&plain);
    let (a, b) = (with_dtd.report(), without.report());
    assert!(a.stats.had_dtd, "the DTD was seen");
    assert!(!b.stats.had_dtd);
    assert_eq!(a.stats.records, 1);
    assert_eq!(a.stats.workouts, 1);
    assert_eq!(a.stats.elements.get("VisionPrescription"), Some(&1));
    assert_eq!(
        with_dtd.seen.records,
        without
            .seen
            .records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.offset += IOS16_DTD.len() as u64;
                r
            })
            .collect::<Vec<_>>(),
        "the same data with and without the broken DTD"
    );
    assert_eq!(with_dtd.seen.workouts.len(), 1);
    assert_eq!(
        with_dtd.seen.element("VisionPrescription").children.len(),
        1
    );
}

#[test]
fn an_entity_declaration_anywhere_in_the_subset_is_refused() {
    let body = body_for_dtd_tests();
    let decls = [
        "<!ENTITY xxe SYSTEM \"file:///etc/passwd\">",
        "<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">",
        "<!ENTITY % remote SYSTEM \"http://127.0.0.1:9/evil.dtd\">",
    ];
    let dir = tempdir();
    for (i, decl) in decls.iter().enumerate() {
        // At the very end of Apple's DTD, and inside the broken iOS 16 one.
        let at_end = DTD.replace("\n]>", &format!("\n{decl}\n]>"));
        let in_broken = IOS16_DTD.replace(
            "  device           CDATA",
            &format!("{decl}\n  device           CDATA"),
        );
        for (j, prolog) in [at_end, in_broken].iter().enumerate() {
            let doc = doc_with_prolog(prolog, &body);
            let path = write(dir.path(), &format!("entity-{i}-{j}.xml"), &doc);
            let expected_offset = doc.find("<!ENTITY").unwrap_or_default() as u64;
            // Opening only sniffs; the read refuses before any data.
            let source = open(&path);
            let out = read_source(&source);
            let failure = out.failure();
            match &failure.error {
                Error::EntityDeclared { offset, .. } => {
                    assert_eq!(*offset, expected_offset, "offset of `<!ENTITY` in {decl}")
                }
                other => panic!("{decl}: expected EntityDeclared, got {other:?}"),
            }
            assert_names_file(&failure.error.to_string(), &path);
            assert!(
                out.seen.records.is_empty(),
                "no data read after a refused DTD"
            );
            assert!(out.seen.headers.is_empty());
        }
    }
}

#[test]
fn an_undeclared_entity_reference_is_never_expanded() {
    let dir = tempdir();
    let body = [
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "Before",
            "count/min",
            "64",
            "2024-01-01 10:00:00 +0100",
        ),
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "&xxe;",
            "count/min",
            "65",
            "2024-01-01 10:01:00 +0100",
        ),
    ]
    .concat();
    let doc = export_doc(&body);
    let path = write(dir.path(), "export.xml", &doc);
    let out = read_path(&path);
    let failure = out.failure();
    let message = failure.error.to_string();
    match &failure.error {
        Error::Malformed { offset, .. } => assert_eq!(
            *offset,
            offset_of(&doc, "Record", "\"&xxe;\""),
            "the error points at the record"
        ),
        other => panic!("expected Malformed for `&xxe;`, got {other:?}"),
    }
    assert!(
        message.contains("xxe"),
        "the message names the entity: {message}"
    );
    assert_names_file(&message, &path);
    let sources: Vec<&str> = out
        .seen
        .records
        .iter()
        .map(|r| r.source_name.as_str())
        .collect();
    assert_eq!(sources, vec!["Before"], "nothing expanded, nothing after");

    // In a rare element's attribute too.
    let doc = export_doc(
        " <ClinicalRecord type=\"Patient\" sourceName=\"&xxe;\" receivedDate=\"2020-12-06 20:24:28 -0800\"/>\n",
    );
    let path = write(dir.path(), "clinical.xml", &doc);
    let out = read_path(&path);
    assert!(
        matches!(out.failure().error, Error::Malformed { .. }),
        "got {:?}",
        out.failure().error
    );
    assert!(out.seen.elements.is_empty());
}

#[test]
fn an_external_dtd_is_never_fetched() {
    let dir = tempdir();
    // If this DTD were read, the record below would get a default sourceName,
    // and `&ext;` would expand.
    let external = "<!ATTLIST Record sourceName CDATA \"Injected by the external DTD\">\n<!ENTITY ext \"expanded\">\n";
    let dtd_path = write(dir.path(), "health.dtd", external);
    let url = format!("file://{}", dtd_path.display());
    let prologs = [
        "<!DOCTYPE HealthData SYSTEM \"health.dtd\">".to_string(),
        format!("<!DOCTYPE HealthData SYSTEM \"{url}\">"),
        "<!DOCTYPE HealthData PUBLIC \"-//Apple//DTD HealthData 1.0//EN\" \"http://127.0.0.1:9/health.dtd\">".to_string(),
        format!("<!DOCTYPE HealthData SYSTEM \"{url}\" [\n<!ATTLIST Record unit CDATA \"internal-default\">\n]>"),
    ];
    for prolog in prologs {
        let body = " <Record type=\"HKQuantityTypeIdentifierStepCount\" unit=\"count\" startDate=\"2024-01-01 10:00:00 +0100\" endDate=\"2024-01-01 10:00:00 +0100\" value=\"5\"/>\n <Record type=\"HKCategoryTypeIdentifierMindfulSession\" sourceName=\"Watch\" startDate=\"2024-01-01 10:00:00 +0100\" endDate=\"2024-01-01 10:00:00 +0100\"/>\n";
        let path = write(dir.path(), "export.xml", doc_with_prolog(&prolog, body));
        let out = read_path(&path);
        let report = out.report();
        assert!(report.stats.had_dtd, "{prolog}");
        assert_eq!(out.seen.records.len(), 2, "{prolog}");
        assert_eq!(
            out.seen.records[0].source_name, "",
            "{prolog}: no default attribute from any DTD"
        );
        assert_eq!(
            out.seen.records[1].unit, None,
            "{prolog}: internal defaults ignored too"
        );
    }
}

// ---------------------------------------------------------------------------
// 5. Characters XML forbids
// ---------------------------------------------------------------------------

#[test]
fn vertical_tabs_are_dropped_counted_and_the_record_kept() {
    let body = concat!(
        " <Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"Simon\u{b}s iPhone\" unit=\"count/min\" startDate=\"2024-01-01 10:00:00 +0100\" endDate=\"2024-01-01 10:00:00 +0100\" value=\"64\">\n",
        "  <MetadataEntry key=\"note\" value=\"a&#11;b\"/>\n",
        " </Record>\n",
        " <Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"Dev\" device=\"name:Watch&#x0B;, model:Watch\" unit=\"count/min\" startDate=\"2024-01-01 10:01:00 +0100\" endDate=\"2024-01-01 10:01:00 +0100\" value=\"65\"/>\n",
        " <Record type=\"HKCategoryTypeIdentifierSleepAnalysis\" sourceName=\"Sleep\" startDate=\"2024-01-01 10:02:00 +0100\" endDate=\"2024-01-01 10:02:00 +0100\" value=\"HKCategoryValueSleepAnalysis\u{b}AsleepCore\"/>\n",
        " <Workout workoutActivityType=\"HKWorkoutActivityTypeRunning\" sourceName=\"Tab&#11;Watch\" startDate=\"2024-01-01 11:00:00 +0100\" endDate=\"2024-01-01 11:30:00 +0100\"/>\n",
    );
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", export_doc(body));
    let out = read_path(&path);
    let report = out.report();
    assert_eq!(out.seen.records.len(), 3, "every record is kept");
    let first = &out.seen.records[0];
    assert_eq!(first.source_name, "Simons iPhone", "raw U+000B dropped");
    assert_eq!(first.meta("note"), Some("ab"), "`&#11;` dropped");
    assert_eq!(
        out.seen.by_source("Dev").device.as_deref(),
        Some("name:Watch, model:Watch"),
        "`&#x0B;` dropped"
    );
    assert_eq!(
        out.seen.by_source("Sleep").value,
        OwnedValue::Text("HKCategoryValueSleepAnalysisAsleepCore".into()),
        "raw U+000B dropped from a value"
    );
    assert_eq!(out.seen.workouts[0].source_name, "TabWatch");
    assert_eq!(
        report.stats.repaired_chars, 5,
        "one repaired character in each of five attributes"
    );
    assert!(report.stats.skipped.is_empty());
}

// ---------------------------------------------------------------------------
// 6. Truncation
// ---------------------------------------------------------------------------

/// What a full read of `doc` gives, for comparison with cut reads.
struct Full {
    records: Vec<OwnedRecord>,
    workouts: usize,
    correlations: usize,
    /// Bytes needed before the file can be told to be an export at all
    /// (`<!DOCTYPE HealthData` and one more byte).
    identified: usize,
    /// Where `</HealthData>` ends.
    root_end: usize,
}

fn check_cut(doc: &[u8], cut: usize, path: &Path, full: &Full) {
    fs::write(path, &doc[..cut]).unwrap_or_else(|e| panic!("write cut {cut}: {e}"));
    let (identified, root_end) = (full.identified, full.root_end);
    let source = match ExportSource::open(path) {
        Ok(source) => source,
        Err(e) => {
            // Too little is left to tell it is an export at all.
            assert!(
                cut < identified,
                "cut at {cut}: a file that starts like an export must open, got {e}"
            );
            assert!(
                matches!(e, Error::UnknownFormat { .. }),
                "cut at {cut}: got {e:?}"
            );
            return;
        }
    };
    let out = read_source(&source);
    match &out.result {
        Ok(report) => {
            assert!(
                cut >= root_end,
                "cut at {cut} (root ends at {root_end}): a cut document must not read as complete"
            );
            assert_eq!(out.seen.records, full.records, "cut at {cut}");
            assert_eq!(report.stats.bytes, cut as u64);
        }
        Err(failure) => {
            assert!(
                cut < root_end,
                "cut at {cut} after the root: {}",
                failure.error
            );
            let offset = match &failure.error {
                Error::Truncated {
                    offset, expected, ..
                } => {
                    assert_eq!(*expected, cut as u64, "expected = file size");
                    *offset
                }
                Error::Malformed { offset, .. } => *offset,
                other => panic!("cut at {cut}: expected Truncated or Malformed, got {other:?}"),
            };
            assert!(
                offset <= cut as u64,
                "cut at {cut}: error offset {offset} is past the end: {}",
                failure.error
            );
            let n = out.seen.records.len();
            assert!(
                n <= full.records.len() && out.seen.records[..] == full.records[..n],
                "cut at {cut}: the {n} records delivered are not a prefix of the full read"
            );
            assert!(out.seen.workouts.len() <= full.workouts);
            assert!(out.seen.correlations.len() <= full.correlations);
            assert!(
                failure.stats.records as usize >= n && failure.stats.records as usize <= n + 1,
                "cut at {cut}: stats.records {} vs {n} delivered",
                failure.stats.records
            );
            assert_names_file(&failure.error.to_string(), path);
        }
    }
}

fn full_read(doc: &str) -> (tempfile::TempDir, Full) {
    let dir = tempdir();
    let path = write(dir.path(), "full.xml", doc);
    let out = read_path(&path);
    out.report();
    let full = Full {
        records: out.seen.records.clone(),
        workouts: out.seen.workouts.len(),
        correlations: out.seen.correlations.len(),
        identified: doc
            .find("<!DOCTYPE HealthData")
            .map(|at| at + "<!DOCTYPE HealthData".len() + 1)
            .unwrap_or_else(|| panic!("the fixture has a DTD")),
        root_end: doc
            .rfind("</HealthData>")
            .map(|at| at + "</HealthData>".len())
            .unwrap_or_else(|| panic!("the fixture is complete")),
    };
    (dir, full)
}

#[test]
fn a_document_cut_at_any_offset_fails_cleanly_with_a_prefix_of_the_records() {
    let doc = many_records(100);
    let (dir, full) = full_read(&doc);
    assert_eq!(full.records.len(), 80, "fixture: 80 records");
    assert_eq!(full.workouts, 2);
    assert_eq!(full.correlations, 18);
    let path = dir.path().join("cut.xml");
    // Every offset through the prolog and the first ~35 elements (records of
    // every shape, correlations, a workout) and through the end of the
    // document; every 5th offset in between (the proptest below adds random
    // cuts in a larger document).
    let len = doc.len();
    assert!(len > 20_000, "fixture size {len}");
    let head = 0..8_000;
    let middle = (8_000..len - 1_000).step_by(5);
    let tail = len - 1_000..=len;
    for cut in head.chain(middle).chain(tail) {
        check_cut(doc.as_bytes(), cut, &path, &full);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn a_larger_document_cut_anywhere_fails_cleanly(fraction in 0.0f64..1.0) {
        let doc = many_records(1_000);
        let (dir, full) = full_read(&doc);
        let cut = ((doc.len() as f64) * fraction) as usize;
        check_cut(doc.as_bytes(), cut, &dir.path().join("cut.xml"), &full);
    }
}

#[test]
fn a_malformed_document_fails_at_the_fault_after_the_records_before_it() {
    let body = [
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "Before",
            "count/min",
            "64",
            "2024-01-01 10:00:00 +0100",
        ),
        " <Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"Broken\" unit=\"count\" \
         startDate=\"2024-01-01 10:01:00 +0100\" endDate=\"2024-01-01 10:01:00 +0100\" value=\"5\">\n  \
         <MetadataEntry key=\"k\" value=\"v\"/>\n </Recod>\n"
            .to_string(),
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "After",
            "count/min",
            "65",
            "2024-01-01 10:02:00 +0100",
        ),
    ]
    .concat();
    let doc = export_doc(&body);
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", &doc);
    let out = read_path(&path);
    let failure = out.failure();
    let broken_at = offset_of(&doc, "Record", "\"Broken\"");
    let after_at = offset_of(&doc, "Record", "\"After\"");
    match &failure.error {
        Error::Malformed { offset, .. } => assert!(
            (broken_at..after_at).contains(offset),
            "the fault is inside the broken record ({broken_at}..{after_at}), not at {offset}"
        ),
        other => panic!("a mismatched end tag is Malformed, got {other:?}"),
    }
    assert_names_file(&failure.error.to_string(), &path);
    let sources: Vec<&str> = out
        .seen
        .records
        .iter()
        .map(|r| r.source_name.as_str())
        .collect();
    assert_eq!(sources, vec!["Before"]);
}

#[test]
fn a_cut_zip_is_a_bad_zip_naming_the_file() {
    let doc = many_records(50);
    let zip = zipcraft::build(&[
        Entry::dir("apple_health_export/"),
        Entry::new("apple_health_export/export.xml", doc.as_str()),
    ]);
    let dir = tempdir();
    for cut in [zip.len() - 1, zip.len() - 22, zip.len() / 2, 30] {
        let path = write(dir.path(), &format!("cut-{cut}.zip"), &zip[..cut]);
        let e = open_err(&path);
        assert!(matches!(e, Error::BadZip { .. }), "cut at {cut}: got {e:?}");
        assert_names_file(&e.to_string(), &path);
    }
}

// ---------------------------------------------------------------------------
// 7. Zip bombs and unsafe names
// ---------------------------------------------------------------------------

#[test]
fn a_highly_compressed_entry_is_refused_as_a_bomb_before_reading() {
    let dir = tempdir();
    // Honest sizes: 16 MiB of whitespace inside a HealthData document.
    let mut doc = export_doc(&quantity(
        "HKQuantityTypeIdentifierHeartRate",
        "W",
        "count/min",
        "60",
        "2024-01-01 10:00:00 +0100",
    ));
    let close = doc.rfind("</HealthData>").unwrap_or(0);
    doc.insert_str(close, &" ".repeat(16 << 20));
    let path = write(
        dir.path(),
        "bomb.zip",
        zipcraft::build(&[Entry::new("apple_health_export/export.xml", doc.as_str())]),
    );
    match open_err(&path) {
        Error::ZipBomb {
            entry,
            declared,
            compressed,
            ratio,
            ..
        } => {
            assert_eq!(entry, "apple_health_export/export.xml");
            assert_eq!(declared, doc.len() as u64);
            assert!(ratio > owi_export::MAX_COMPRESSION_RATIO, "ratio {ratio}");
            assert_eq!(ratio, declared / compressed);
        }
        other => panic!("expected ZipBomb, got {other:?}"),
    }

    // A lie: a small document that claims to be 3.9 GB.
    let small = small_export();
    let path = write(
        dir.path(),
        "liar.zip",
        zipcraft::build(
            &[Entry::new("apple_health_export/export.xml", small.as_str())
                .declared_size(3_900_000_000)],
        ),
    );
    let e = open_err(&path);
    assert!(
        matches!(
            e,
            Error::ZipBomb {
                declared: 3_900_000_000,
                ..
            }
        ),
        "got {e:?}"
    );
    assert_names_file(&e.to_string(), &path);
}

#[test]
fn an_entry_inflating_past_its_declared_size_fails_the_read() {
    let dir = tempdir();
    let doc = many_records(2_000);
    assert!(doc.len() > 200_000, "fixture is large: {}", doc.len());
    let declared = 150_000u32;
    let path = write(
        dir.path(),
        "overflow.zip",
        zipcraft::build(&[
            Entry::new("apple_health_export/export.xml", doc.as_str()).declared_size(declared)
        ]),
    );
    let source = open(&path);
    assert_eq!(source.xml_size(), u64::from(declared));
    let out = read_source(&source);
    let failure = out.failure();
    let message = failure.error.to_string();
    assert!(
        matches!(failure.error, Error::Malformed { .. } | Error::Io { .. }),
        "got {:?}",
        failure.error
    );
    assert!(
        message.contains("declared size"),
        "the message explains the overrun: {message}"
    );
    assert_names_file(&message, &path);
    assert!(
        failure.stats.bytes <= u64::from(declared),
        "no more than the declared size was read: {}",
        failure.stats.bytes
    );

    // Declared smaller than what is needed to recognise it: refused at open.
    let path = write(
        dir.path(),
        "overflow-small.zip",
        zipcraft::build(&[
            Entry::new("apple_health_export/export.xml", doc.as_str()).declared_size(1_000)
        ]),
    );
    let e = open_err(&path);
    assert!(matches!(e, Error::BadZip { .. }), "got {e:?}");
    assert_names_file(&e.to_string(), &path);
}

#[test]
fn entries_escaping_the_folder_are_skipped_as_unsafe() {
    let doc = small_export();
    let dir = tempdir();
    let unsafe_names = [
        "../../evil.xml",
        "/abs/export.xml",
        "apple_health_export/../../evil2.xml",
        "..\\..\\evil3.xml",
    ];
    let only_unsafe: Vec<Entry> = unsafe_names
        .iter()
        .map(|n| Entry::new(n, doc.as_str()))
        .collect();
    let path = write(dir.path(), "slip.zip", zipcraft::build(&only_unsafe));
    match open_err(&path) {
        Error::NoExportInZip { looked_at, .. } => {
            assert_eq!(looked_at, 0, "unsafe entries are not even sniffed")
        }
        other => panic!("expected NoExportInZip, got {other:?}"),
    }

    let mut with_real = only_unsafe;
    with_real.push(Entry::new("apple_health_export/export.xml", doc.as_str()));
    let path = write(dir.path(), "slip-and-real.zip", zipcraft::build(&with_real));
    let source = open(&path);
    assert_eq!(source.xml_name(), "apple_health_export/export.xml");
    let skipped: Vec<&str> = source
        .skipped_entries()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(skipped, unsafe_names.to_vec());
    assert!(
        source
            .skipped_entries()
            .iter()
            .all(|s| s.reason.contains("unsafe")),
        "{:?}",
        source.skipped_entries()
    );
    read_source(&source).report();
}

// ---------------------------------------------------------------------------
// 8. Not an export
// ---------------------------------------------------------------------------

#[test]
fn other_files_are_refused_with_a_reason_naming_the_file() {
    let dir = tempdir();
    let svg = write(
        dir.path(),
        "picture.svg",
        "<?xml version=\"1.0\"?>\n<!-- drawn by hand -->\n<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>\n",
    );
    let e = open_err(&svg);
    match &e {
        Error::NotHealthExport { reason, .. } => {
            assert!(reason.contains("<svg>"), "names the root: {reason}")
        }
        other => panic!("expected NotHealthExport, got {other:?}"),
    }
    assert_names_file(&e.to_string(), &svg);

    for (name, bytes) in [
        (
            "report.pdf",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n".to_vec(),
        ),
        ("noise.bin", vec![0x00, 0xff, 0x13, 0x37, 0x42, 0x00, 0x01]),
        ("empty.xml", Vec::new()),
    ] {
        let path = write(dir.path(), name, bytes);
        let e = open_err(&path);
        assert!(
            matches!(e, Error::UnknownFormat { .. }),
            "{name}: got {e:?}"
        );
        assert_names_file(&e.to_string(), &path);
    }

    let junk_zip = write(
        dir.path(),
        "junk.zip",
        b"PK\x03\x04 this is not a zip at all",
    );
    let e = open_err(&junk_zip);
    assert!(matches!(e, Error::BadZip { .. }), "got {e:?}");
    assert_names_file(&e.to_string(), &junk_zip);
}

#[test]
fn zips_without_exactly_one_export_are_refused() {
    let dir = tempdir();
    let empty = write(dir.path(), "empty.zip", zipcraft::build(&[]));
    let e = open_err(&empty);
    assert!(
        matches!(e, Error::NoExportInZip { looked_at: 0, .. }),
        "got {e:?}"
    );
    assert_names_file(&e.to_string(), &empty);

    let other = write(
        dir.path(),
        "photos.zip",
        zipcraft::build(&[
            Entry::new("photos/readme.txt", "not health data"),
            Entry::new("photos/doc.xml", "<?xml version=\"1.0\"?><svg/>"),
        ]),
    );
    let e = open_err(&other);
    assert!(
        matches!(e, Error::NoExportInZip { looked_at: 2, .. }),
        "got {e:?}"
    );

    let doc = small_export();
    let two = write(
        dir.path(),
        "two.zip",
        zipcraft::build(&[
            Entry::new("mine/export.xml", doc.as_str()),
            Entry::new("theirs/exportar.xml", doc.as_str()),
        ]),
    );
    let e = open_err(&two);
    match &e {
        Error::TwoExports { first, second, .. } => {
            assert_eq!(
                (first.as_str(), second.as_str()),
                ("mine/export.xml", "theirs/exportar.xml")
            );
        }
        other => panic!("expected TwoExports, got {other:?}"),
    }
    let message = e.to_string();
    assert!(
        message.contains("mine/export.xml") && message.contains("theirs/exportar.xml"),
        "{message}"
    );
    assert_names_file(&message, &two);
}

// ---------------------------------------------------------------------------
// 9. Cancellation, stopping and progress
// ---------------------------------------------------------------------------

#[test]
fn cancelling_from_the_visitor_ends_the_read_early() {
    let doc = many_records(12_000);
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", &doc);
    let total = full_read(&doc).1.records.len();
    let token = CancelToken::new();
    let source = open(&path);
    let out = read_with(
        &source,
        Collector {
            cancel_after: Some((10, token.clone())),
            ..Collector::default()
        },
        ReadOptions {
            cancel: Some(&token),
            ..ReadOptions::default()
        },
    );
    let failure = out.failure();
    assert!(
        matches!(failure.error, Error::Cancelled { .. }),
        "got {:?}",
        failure.error
    );
    assert_names_file(&failure.error.to_string(), &path);
    let n = out.seen.records.len();
    assert!(
        n >= 10,
        "the records before the cancellation were delivered"
    );
    assert!(
        n < total / 2,
        "the read stopped soon after the cancellation: {n} of {total} records delivered"
    );
    assert!(failure.stats.bytes < doc.len() as u64);
}

#[test]
fn a_visitor_can_stop_the_read_at_once() {
    let doc = many_records(200);
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", &doc);
    let out = read_with(
        &open(&path),
        Collector {
            stop_after: Some(7),
            ..Collector::default()
        },
        ReadOptions::default(),
    );
    let failure = out.failure();
    assert!(
        matches!(failure.error, Error::Stopped { .. }),
        "got {:?}",
        failure.error
    );
    assert_eq!(out.seen.records.len(), 7, "nothing after Break");
}

fn check_progress(events: &[Progress], xml_size: u64) {
    assert!(
        matches!(events.first(), Some(Progress::Started { phase: Phase::Ingest, total: Some(t) }) if *t == xml_size),
        "starts with Started(total = xml size {xml_size}): {:?}",
        events.first()
    );
    match events.last() {
        Some(Progress::Finished {
            phase: Phase::Ingest,
            done,
            ..
        }) => {
            assert_eq!(*done, xml_size, "finishes at the XML size")
        }
        other => panic!("the last event should be Finished, got {other:?}"),
    }
    let done: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Progress::Advanced { position, .. } => {
                assert_eq!(position.total, Some(xml_size));
                Some(position.done)
            }
            _ => None,
        })
        .collect();
    assert!(!done.is_empty(), "at least one Advanced event");
    assert!(
        done.windows(2).all(|w| w[0] <= w[1]),
        "cumulative, never decreasing: {done:?}"
    );
    assert_eq!(
        done.last(),
        Some(&xml_size),
        "the last position is the whole document"
    );
    assert!(done.iter().all(|&d| d <= xml_size));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Progress::Finished { .. }))
            .count(),
        1
    );
}

#[test]
fn progress_is_cumulative_and_ends_with_finished_at_the_xml_size() {
    let doc = many_records(3_000);
    let dir = tempdir();
    let xml = write(dir.path(), "export.xml", &doc);
    let zip = write(
        dir.path(),
        "export.zip",
        zipcraft::build(&[Entry::new("apple_health_export/export.xml", doc.as_str())]),
    );
    for path in [xml, zip] {
        let recorder = Recorder::new();
        let source = open(&path);
        let out = read_with(
            &source,
            Collector::default(),
            ReadOptions {
                progress: &recorder,
                ..ReadOptions::default()
            },
        );
        let report = out.report();
        assert_eq!(source.xml_size(), doc.len() as u64);
        assert_eq!(report.stats.bytes, doc.len() as u64);
        check_progress(&recorder.events(), doc.len() as u64);
    }
}

// ---------------------------------------------------------------------------
// 10. The public samples
// ---------------------------------------------------------------------------

/// The public samples kept in the repository (`tests/fixtures/public-samples`,
/// each with its license). Missing, they fail the test: never skipped.
fn samples_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/public-samples");
    assert!(
        dir.is_dir(),
        "the public samples are missing from {}",
        dir.display()
    );
    dir
}

#[test]
fn sample_apple_health_parser_reads_the_same_from_xml_and_zip() {
    let dir = samples_dir().join("apple-health-parser");
    let xml = read_path(&dir.join("export.xml"));
    let zip_source = open(&dir.join("export.zip"));
    let zip = read_source(&zip_source);
    let (x, z) = (xml.report(), zip.report());

    assert_eq!(x.stats.records, 8, "8 <Record> elements in the file");
    assert_eq!(xml.seen.records.len(), 8);
    assert_eq!(
        x.stats.workouts + x.stats.correlations + x.stats.activity_summaries,
        0
    );
    assert!(x.stats.skipped.is_empty());
    assert!(!x.stats.had_dtd);
    let header = xml.seen.header();
    assert_eq!(header.locale.as_deref(), Some("en_NL"));
    assert_eq!(header.export_date, Some(ts(1_717_222_205, 120)));
    assert_eq!(header.me.len(), 5);
    let kinds: Vec<&str> = xml.seen.records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "HKQuantityTypeIdentifierHeartRate",
            "HKQuantityTypeIdentifierHeartRate",
            "HKQuantityTypeIdentifierActiveEnergyBurned",
            "HKQuantityTypeIdentifierActiveEnergyBurned",
            "HKQuantityTypeIdentifierAppleExerciseTime",
            "HKQuantityTypeIdentifierAppleStandTime",
            "HKCategoryTypeIdentifierSleepAnalysis",
            "HKCategoryTypeIdentifierSleepAnalysis",
        ]
    );
    let first = &xml.seen.records[0];
    assert_eq!(first.value, OwnedValue::Number(74.0));
    assert_eq!(first.start, ts(1_704_063_696, 120));
    assert_eq!(first.source_name, "Alexandre's Apple Watch");
    assert_eq!(
        first.device.as_deref(),
        Some(
            "name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,7, software:10.2"
        )
    );
    assert_eq!(first.meta("HKMetadataKeyHeartRateMotionContext"), Some("0"));
    assert_eq!(xml.seen.records[3].number(), 0.08);
    assert_eq!(
        xml.seen.records[7].value,
        OwnedValue::Text("HKCategoryValueSleepAnalysisAsleepCore".into())
    );
    assert_eq!(
        xml.seen.records[7].meta("HKTimeZone"),
        Some("Europe/Amsterdam")
    );

    // The zip holds the very same bytes (checked with sha256sum), plus macOS junk.
    assert_eq!(zip.seen.records, xml.seen.records);
    assert_eq!(z.stats, x.stats);
    assert_eq!(
        z.fingerprint, x.fingerprint,
        "identical bytes, identical fingerprint"
    );
    assert_eq!(zip_source.xml_name(), "apple_health_export/export.xml");
    let mut skipped: Vec<&str> = zip_source
        .skipped_entries()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        vec![
            "__MACOSX/apple_health_export/._.DS_Store",
            "__MACOSX/apple_health_export/._export.xml",
            "apple_health_export/.DS_Store",
        ]
    );
}

#[test]
fn sample_healthkit_to_sqlite_inline_and_gpx_routes() {
    let dir = samples_dir().join("healthkit-to-sqlite");
    let xml = read_path(&dir.join("export.xml"));
    let x = xml.report();
    assert_eq!(x.stats.records, 2);
    assert_eq!(x.stats.workouts, 1);
    assert_eq!(x.stats.activity_summaries, 2);
    assert_eq!(x.stats.route_points, 2, "two inline <Location> points");
    assert_eq!(x.stats.route_files, 0);
    assert!(x.stats.skipped.is_empty(), "{:?}", x.stats.skipped);
    let bmi = &xml.seen.records[0];
    assert_eq!(bmi.metadata.len(), 5);
    assert_eq!(
        bmi.meta("Withings Link"),
        Some("withings-bd2://timeline/measure?userid=12345&date=482685932&type=1")
    );
    assert_eq!(xml.seen.header().me.len(), 4);
    let w = &xml.seen.workouts[0];
    assert_close(w.distance_m().unwrap_or(f64::NAN), 800.0, 0.5, "0.497 mi");
    assert_close(w.energy_kcal().unwrap_or(f64::NAN), 48.745, 1e-9, "kcal");
    assert_eq!(w.metadata.len(), 3);
    assert_eq!(w.route_points.len(), 2);
    assert_eq!(w.route_points[0].at_ms, 1_479_133_544_000);
    assert_eq!(xml.seen.summaries.len(), 2);
    assert_eq!(xml.seen.summaries[0].day, 17_120, "2016-11-15");

    let zip_source = open(&dir.join("export.zip"));
    let zip = read_source(&zip_source);
    let z = zip.report();
    assert_eq!(z.stats.records, 2);
    assert_eq!(z.stats.workouts, 1);
    assert_eq!(z.stats.activity_summaries, 2);
    assert_eq!(z.stats.route_files, 1);
    assert_eq!(z.stats.route_points, 3, "three GPX track points");
    let zw = &zip.seen.workouts[0];
    assert!(zw.routes[0].file_loaded);
    assert_eq!(zw.route_points[0].at_ms, 1_560_290_442_000);
    assert_eq!(zw.route_points[0].lat, 37.781672);
    assert_eq!(
        zip.seen.records, xml.seen.records,
        "same records in both versions"
    );

    // The zip's XML differs from export.xml (FileReference instead of
    // Location), so the fingerprints differ; it equals zip_contents/.
    assert_ne!(z.fingerprint, x.fingerprint, "different bytes");
    let unpacked = read_path(&dir.join("zip_contents/apple_health_export/export.xml"));
    let u = unpacked.report();
    assert_eq!(
        u.fingerprint, z.fingerprint,
        "the zip holds zip_contents' bytes"
    );
    assert_eq!(
        u.stats, z.stats,
        "unpacked, the GPX is found next to the XML"
    );
}

// ---------------------------------------------------------------------------
// 11. Fingerprint
// ---------------------------------------------------------------------------

#[test]
fn the_fingerprint_follows_the_bytes_and_nothing_else() {
    let doc = many_records(300);
    let dir = tempdir();
    let fingerprint = |name: &str, bytes: &[u8]| -> String {
        let path = write(dir.path(), name, bytes);
        read_path(&path).report().fingerprint.clone()
    };
    let base = fingerprint("a.xml", doc.as_bytes());
    assert_eq!(base.len(), 32, "128 bits as hex: {base}");
    assert!(
        base.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(
        fingerprint("b.xml", doc.as_bytes()),
        base,
        "same bytes, another name"
    );
    assert_eq!(
        fingerprint("a.xml", doc.as_bytes()),
        base,
        "same bytes, read again"
    );
    for (label, member) in [
        (
            "stored",
            Entry::new("apple_health_export/export.xml", doc.as_str()).stored(),
        ),
        (
            "deflated",
            Entry::new("apple_health_export/export.xml", doc.as_str()),
        ),
        ("localized", Entry::new("Экспорт/экспорт.xml", doc.as_str())),
    ] {
        let zip = zipcraft::build(&[member]);
        assert_eq!(
            fingerprint(&format!("{label}.zip"), &zip),
            base,
            "{label} zip: same XML bytes"
        );
    }

    // One changed byte anywhere: in a value, in the DTD, in trailing whitespace.
    let value_at = doc
        .find("value=\"60\"")
        .unwrap_or_else(|| panic!("fixture has value 60"))
        + 7;
    let dtd_at = doc.find("Export Version: 14").unwrap_or_default() + 16;
    let last = doc.len() - 1;
    for (at, replacement) in [(value_at, b'1'), (dtd_at, b'3'), (last, b' ')] {
        let mut changed = doc.clone().into_bytes();
        assert_ne!(changed[at], replacement);
        changed[at] = replacement;
        let other = fingerprint("changed.xml", &changed);
        assert_ne!(
            other, base,
            "a byte changed at {at} must change the fingerprint"
        );
    }
}

#[test]
fn an_element_past_the_node_cap_is_skipped_and_the_document_goes_on() {
    // A workout whose activity holds more nested nodes than the reader keeps:
    // the element is dropped as too large, and what follows it is still read.
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<HealthData locale=\"en_US\">\n\
         <Workout workoutActivityType=\"HKWorkoutActivityTypeRunning\" sourceName=\"W\" \
         startDate=\"2024-01-01 10:00:00 +0000\" endDate=\"2024-01-01 11:00:00 +0000\">\n\
         <WorkoutActivity uuid=\"a\">\n",
    );
    for _ in 0..500_050 {
        doc.push_str("<MetadataEntry key=\"k\" value=\"v\"/>\n");
    }
    doc.push_str("</WorkoutActivity>\n<MetadataEntry key=\"after\" value=\"1\"/>\n</Workout>\n");
    doc.push_str(
        "<Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"After\" unit=\"count\" \
         startDate=\"2024-01-02 10:00:00 +0000\" endDate=\"2024-01-02 10:01:00 +0000\" value=\"5\"/>\n</HealthData>\n",
    );
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", doc.as_str());
    let out = read_path(&path);
    let report = out.report();
    assert_eq!(
        report.stats.skipped.get(&SkipReason::ElementTooLarge),
        Some(&1),
        "the oversized workout is reported"
    );
    assert_eq!(report.stats.records, 1, "the record after it is read");
    assert_eq!(out.seen.by_source("After").value, OwnedValue::Number(5.0));
}

#[test]
fn an_unparseable_optional_date_is_counted_and_the_element_kept() {
    let dir = tempdir();
    let path = write(
        dir.path(),
        "export.xml",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<HealthData locale="en_US">
 <ExportDate value="yesterday"/>
 <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Phone" unit="count" creationDate="soon" startDate="2024-01-02 10:00:00 +0000" endDate="2024-01-02 10:01:00 +0000" value="5"/>
 <Workout workoutActivityType="HKWorkoutActivityTypeWalking" sourceName="Phone" startDate="2024-01-02 11:00:00 +0000" endDate="2024-01-02 11:30:00 +0000">
  <WorkoutStatistics type="HKQuantityTypeIdentifierStepCount" startDate="later" endDate="2024-01-02 11:30:00 +0000" sum="900" unit="count"/>
 </Workout>
</HealthData>
"#,
    );
    let out = read_path(&path);
    let report = out.report();
    assert_eq!(report.stats.records, 1);
    assert_eq!(
        out.seen.by_source("Phone").value,
        OwnedValue::Number(5.0),
        "the record is kept"
    );
    assert_eq!(
        report.stats.skipped.get(&SkipReason::InvalidDate),
        Some(&3),
        "ExportDate, creationDate and a statistic's startDate, each counted once"
    );
}

#[test]
fn a_gigantic_attribute_is_refused_instead_of_filling_memory() {
    // 80 MiB inside one attribute: more than the reader lets one tag be.
    let dir = tempdir();
    let path = dir.path().join("export.xml");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(fs::File::create(&path).expect("create"));
        f.write_all(b"<?xml version=\"1.0\"?>\n<HealthData locale=\"en_US\">\n<Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"")
            .expect("write");
        let block = vec![b'a'; 1 << 20];
        for _ in 0..80 {
            f.write_all(&block).expect("write");
        }
        f.write_all(b"\"/>\n</HealthData>\n").expect("write");
    }
    let out = read_path(&path);
    let failure = out.failure();
    let message = failure.error.to_string();
    assert!(message.contains("MiB"), "the reason is given: {message}");
    assert!(
        failure.stats.bytes < 72 << 20,
        "reading stopped near the limit, not at the end: {}",
        failure.stats.bytes
    );
}

// ---------------------------------------------------------------------------
// The pre-flight check: what the server will make of an export
// ---------------------------------------------------------------------------

#[test]
fn preflight_says_what_the_server_imports_and_passes_over() {
    let (_dir, path, out) = read_kinds();
    let check = owi_export::preflight(&open(&path), ReadOptions::default()).unwrap();
    assert_eq!(check.fingerprint, out.report().fingerprint);
    assert_eq!(check.imported["HKQuantityTypeIdentifierHeartRate"], 2);
    assert_eq!(
        check.imported["HKCategoryTypeIdentifierSleepAnalysis"], 1,
        "a sleep stage is a sample on the server"
    );
    assert_eq!(
        check.ignored["HKCategoryTypeIdentifierMindfulSession"], 1,
        "a category without a number is passed over"
    );
    for (what, count) in [
        ("Correlation", 1),
        ("ActivitySummary", 2),
        ("ClinicalRecord", 1),
        ("Audiogram", 1),
        ("VisionPrescription", 1),
    ] {
        assert_eq!(check.ignored.get(what), Some(&count), "{what}");
    }
    let records_passed_over: u64 = check
        .ignored
        .iter()
        .filter(|(what, _)| what.starts_with("HK"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        check.records_imported() + records_passed_over,
        out.report().stats.records,
        "every record is either imported or passed over"
    );
    assert_eq!(check.workouts, 4);
    let at = |s: &str| Timestamp::parse(s).unwrap().utc;
    assert_eq!(
        check.workout_span,
        Some((
            at("2018-12-17 07:54:59 -0800"),
            at("2024-06-03 08:00:00 +0200")
        ))
    );
    assert_eq!(check.workout_keys.len(), 4);
    assert!(check.needs_cleaning(), "the export carries a DTD");
}

#[test]
fn preflight_counts_a_repeated_workout_once() {
    let dir = tempdir();
    let workout = r#" <Workout workoutActivityType="HKWorkoutActivityTypeRunning" sourceName="Watch" startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:30:00 +0200"/>
"#;
    let xml = format!(
        "<?xml version=\"1.0\"?>\n<HealthData locale=\"en_US\">\n{workout}{workout}</HealthData>\n"
    );
    let path = write(dir.path(), "export.xml", xml);
    let check = owi_export::preflight(&open(&path), ReadOptions::default()).unwrap();
    assert_eq!(
        check.workouts, 1,
        "the server keeps one per source, start and end"
    );
    assert!(!check.needs_cleaning());
}
