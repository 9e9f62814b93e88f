//! What goes when not all of an export does: the person's filters, the
//! delta against what was sent before (by identity, not by date), and the
//! bodies made of a selection — each a valid export of whole elements.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use owi_export::outgoing::Outgoing;
use owi_export::{Choice, ExportSource, Identity, Preflight, ReadOptions, SentItems, Share};
use proptest::prelude::*;

use crate::util::zipcraft::{self, Entry};
use crate::util::*;
use crate::{IOS16_DTD, doc_with_prolog};

/// The `i`th item of a made-up export: records of three types over ten
/// days, now and then a workout, a blood pressure, a summary or a
/// clinical record.
fn item(i: usize) -> String {
    let day = 1 + i % 10;
    let start = format!(
        "2024-03-{day:02} {:02}:{:02}:00 +0100",
        (i / 60) % 24,
        i % 60
    );
    match i % 9 {
        0..=3 => quantity(
            "HKQuantityTypeIdentifierHeartRate",
            "Watch",
            "count/min",
            &format!("{}", 50 + i),
            &start,
        ),
        4 => quantity(
            "HKQuantityTypeIdentifierStepCount",
            "iPhone",
            "count",
            &format!("{i}"),
            &start,
        ),
        5 => format!(
            " <Record type=\"HKCategoryTypeIdentifierSleepAnalysis\" sourceName=\"iPhone\" \
             startDate=\"{start}\" endDate=\"{start}\" value=\"HKCategoryValueSleepAnalysisAsleepCore\"/>\n"
        ),
        6 => format!(
            " <Workout workoutActivityType=\"HKWorkoutActivityTypeRunning\" duration=\"{i}\" durationUnit=\"min\" \
             sourceName=\"Watch\" startDate=\"{start}\" endDate=\"{start}\">\n  \
             <WorkoutStatistics type=\"HKQuantityTypeIdentifierDistanceWalkingRunning\" sum=\"{i}\" unit=\"km\"/>\n \
             </Workout>\n"
        ),
        7 => format!(
            " <Correlation type=\"HKCorrelationTypeIdentifierBloodPressure\" sourceName=\"Cuff\" \
             startDate=\"{start}\" endDate=\"{start}\">\n  \
             <Record type=\"HKQuantityTypeIdentifierBloodPressureSystolic\" sourceName=\"Cuff\" unit=\"mmHg\" \
             startDate=\"{start}\" endDate=\"{start}\" value=\"1{i}\"/>\n </Correlation>\n"
        ),
        _ if i.is_multiple_of(2) => format!(
            " <ActivitySummary dateComponents=\"2024-03-{day:02}\" activeEnergyBurned=\"{i}\" \
             activeEnergyBurnedGoal=\"500\" activeEnergyBurnedUnit=\"kcal\"/>\n"
        ),
        _ => format!(
            " <ClinicalRecord type=\"HKClinicalTypeIdentifierLabResultRecord\" identifier=\"lab{i}\" \
             sourceName=\"Clinic\" fhirVersion=\"4.0.1\" receivedDate=\"{start}\" \
             resourceFilePath=\"/clinical-records/lab{i}.json\"/>\n"
        ),
    }
}

fn doc_of(items: impl IntoIterator<Item = usize>) -> String {
    export_doc(&items.into_iter().map(item).collect::<String>())
}

fn choose(source: &ExportSource, share: &Share, sent: Option<&mut SentItems>) -> Preflight {
    let choice = Choice {
        share,
        sent,
        tally: false,
    };
    owi_export::preflight_choosing(source, ReadOptions::default(), choice)
        .unwrap_or_else(|e| panic!("checking {}: {e}", source.path().display()))
}

/// The bodies of what goes, read back whole.
fn bodies(source: ExportSource, check: &Preflight, limit: u64) -> Vec<(Vec<u8>, usize)> {
    bodies_cleaned(source, check, limit, true)
}

fn bodies_cleaned(
    source: ExportSource,
    check: &Preflight,
    limit: u64,
    clean: bool,
) -> Vec<(Vec<u8>, usize)> {
    let Some(selection) = check.selection.as_ref() else {
        panic!("a chosen check has a selection")
    };
    Outgoing::selected(Arc::new(source), clean.into(), selection, limit)
        .unwrap_or_else(|e| panic!("bodies of the selection: {e}"))
        .into_iter()
        .map(|piece| {
            let mut bytes = Vec::new();
            let mut reader = piece
                .body
                .reader_at(0)
                .unwrap_or_else(|e| panic!("a reader of a body: {e}"));
            reader
                .read_to_end(&mut bytes)
                .unwrap_or_else(|e| panic!("reading a body: {e}"));
            assert_eq!(bytes.len() as u64, piece.body.len());
            (bytes, piece.items.len())
        })
        .collect()
}

/// What a body holds, as everything the reader hands over.
fn held(dir: &Path, name: &str, body: &[u8]) -> Outcome {
    let path = write(dir, name, body);
    let outcome = read_path(&path);
    outcome.report();
    outcome
}

fn record_days(outcome: &Outcome) -> BTreeMap<String, BTreeSet<i64>> {
    let mut days: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for r in &outcome.seen.records {
        days.entry(r.kind.clone())
            .or_default()
            .insert(r.start.local_day());
    }
    days
}

fn ids(check: &Preflight) -> Vec<Identity> {
    check
        .selection
        .as_ref()
        .map_or_else(Vec::new, |s| s.identities().unwrap_or_default().to_vec())
}

fn day(s: &str) -> i64 {
    owi_export::time::parse_date(s).unwrap_or_else(|| panic!("{s} is a date"))
}

#[test]
fn the_profile_and_clinical_records_stay_home_unless_asked_for() {
    let dir = tempdir();
    let doc = doc_of(0..90);
    let path = write(dir.path(), "export.xml", &doc);
    let check = choose(&open(&path), &Share::default(), None);
    assert!(check.left_out.me);
    assert_eq!(check.left_out.kinds.get("ClinicalRecord"), Some(&5));
    let [(body, items)] = bodies(open(&path), &check, u64::MAX).try_into().unwrap();
    let sent = held(dir.path(), "body.xml", &body);
    assert!(sent.seen.header().me.is_empty(), "no <Me> in what goes");
    assert!(
        sent.seen.elements.is_empty(),
        "no clinical record in what goes"
    );
    assert_eq!(sent.seen.records.len(), 60);
    assert_eq!(sent.seen.workouts.len(), 10);
    assert_eq!(sent.seen.correlations.len(), 10);
    assert_eq!(sent.seen.summaries.len(), 5);
    assert_eq!(items, 85);
    assert_eq!(check.items_sent(), 85);
    assert!(
        sent.seen.header().export_date.is_some(),
        "the export date is part of the head"
    );

    let open_book = Share {
        include_me: true,
        only: Some(["ClinicalRecord"].into_iter().collect()),
        ..Share::default()
    };
    let check = choose(&open(&path), &open_book, None);
    let [(body, _)] = bodies(open(&path), &check, u64::MAX).try_into().unwrap();
    let sent = held(dir.path(), "clinical.xml", &body);
    assert_eq!(sent.seen.header().me.len(), 2, "the profile, asked for");
    assert_eq!(sent.seen.elements.len(), 5);
    assert!(sent.seen.records.is_empty() && sent.seen.workouts.is_empty());
    assert_eq!(
        check.left_out.kinds["HKQuantityTypeIdentifierHeartRate"],
        40
    );
}

#[test]
fn filters_keep_exactly_the_kinds_and_days_asked_for() {
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", doc_of(0..180));
    let share = Share {
        only: Some(
            [
                "HKQuantityTypeIdentifierHeartRate",
                "HKCategoryTypeIdentifierSleepAnalysis",
                "Workout",
            ]
            .into_iter()
            .collect(),
        ),
        from: Some(day("2024-03-03")),
        to: Some(day("2024-03-05")),
        ..Share::default()
    };
    let check = choose(&open(&path), &share, None);
    let [(body, _)] = bodies(open(&path), &check, u64::MAX).try_into().unwrap();
    let sent = held(dir.path(), "body.xml", &body);
    let days: BTreeSet<i64> = (3..=5).map(|d| day(&format!("2024-03-{d:02}"))).collect();
    let seen = record_days(&sent);
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        [
            "HKCategoryTypeIdentifierSleepAnalysis",
            "HKQuantityTypeIdentifierHeartRate"
        ]
    );
    for kept in seen.values() {
        assert_eq!(kept, &days, "only the days asked for");
    }
    assert!(!sent.seen.workouts.is_empty());
    assert!(
        sent.seen
            .workouts
            .iter()
            .all(|w| days.contains(&w.start.local_day()))
    );
    assert!(sent.seen.correlations.is_empty() && sent.seen.summaries.is_empty());
    // Everything left out is accounted for.
    let whole = owi_export::preflight(&open(&path), ReadOptions::default()).unwrap();
    assert_eq!(
        check.items_sent() + check.left_out.by_kind() + check.left_out.dates,
        whole.items_sent()
    );
}

#[test]
fn the_delta_is_what_the_ledger_lacks_whatever_its_dates() {
    let dir = tempdir();
    // The earlier export lacks the last days and some samples of old days
    // that a watch synced late.
    let earlier: Vec<usize> = (0..300).filter(|i| i % 10 < 8 && i % 7 != 3).collect();
    let a = write(dir.path(), "a.xml", doc_of(earlier.iter().copied()));
    let b = write(dir.path(), "b.xml", doc_of(0..300));
    let sent_a = choose(&open(&a), &Share::default(), None);
    let mut ledger: SentItems = ids(&sent_a).into_iter().collect();
    let delta = choose(&open(&b), &Share::default(), Some(&mut ledger));
    assert_eq!(delta.ledger_items, Some(ids(&sent_a).len() as u64));
    assert_eq!(delta.left_out.sent_before, ledger.len());
    assert_eq!(delta.left_out.gone, 0);

    let whole_b = choose(&open(&b), &Share::default(), None);
    let before: BTreeSet<Identity> = ids(&sent_a).into_iter().collect();
    let new: BTreeSet<Identity> = ids(&whole_b)
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(ids(&delta).into_iter().collect::<BTreeSet<_>>(), new);
    // Old days are in the delta too: the late samples.
    let [(body, _)] = bodies(open(&b), &delta, u64::MAX).try_into().unwrap();
    let sent = held(dir.path(), "delta.xml", &body);
    let late: Vec<_> = sent
        .seen
        .records
        .iter()
        .filter(|r| r.start.local_day() < day("2024-03-09"))
        .collect();
    assert!(!late.is_empty(), "samples with old dates that are new go");
    assert_eq!(
        sent.seen.records.len() as u64
            + sent.seen.workouts.len() as u64
            + sent.seen.correlations.len() as u64
            + sent.seen.summaries.len() as u64,
        new.len() as u64
    );

    // Sent again: nothing goes. Deleted on the phone: counted, not sent.
    let mut all: SentItems = ids(&whole_b).into_iter().collect();
    let again = choose(&open(&b), &Share::default(), Some(&mut all));
    assert!(again.selection.as_ref().is_some_and(|s| s.is_empty()));
    let mut all: SentItems = ids(&whole_b).into_iter().collect();
    let shorter = choose(&open(&a), &Share::default(), Some(&mut all));
    assert_eq!(shorter.left_out.gone, new.len() as u64);
    // Left out by a filter is not gone: the export still holds it.
    let mut all: SentItems = ids(&whole_b).into_iter().collect();
    let sleep_only = Share {
        only: Some(owi_export::resolve_kinds(["sleep"]).unwrap()),
        ..Share::default()
    };
    let filtered = choose(&open(&b), &sleep_only, Some(&mut all));
    assert_eq!(filtered.left_out.gone, 0);
    assert!(filtered.selection.as_ref().is_some_and(|s| s.is_empty()));
}

#[test]
fn pieces_of_a_selection_are_exports_that_share_its_items_out() {
    let dir = tempdir();
    let doc = doc_with_prolog(IOS16_DTD, &(0..400).map(item).collect::<String>());
    let path = zipcraft::build(&[Entry::new(
        "apple_health_export/экспорт.xml",
        doc.as_bytes(),
    )]);
    let path = write(dir.path(), "export.zip", path);
    let share = Share {
        except: ["HKQuantityTypeIdentifierStepCount"].into_iter().collect(),
        ..Share::default()
    };
    let check = choose(&open(&path), &share, None);
    let whole = bodies(open(&path), &check, u64::MAX);
    let pieces = bodies(open(&path), &check, 12_000);
    assert!(pieces.len() > 3, "{} pieces", pieces.len());
    let mut records = Vec::new();
    let mut items = 0;
    for (i, (body, n)) in pieces.iter().enumerate() {
        assert!(body.len() <= 12_000);
        assert!(
            !String::from_utf8_lossy(body).contains("<!DOCTYPE"),
            "cleaned"
        );
        let held = held(dir.path(), &format!("piece{i}.xml"), body);
        items += n;
        records.extend(
            held.seen
                .records
                .into_iter()
                .map(|r| (r.kind, r.start, r.end)),
        );
    }
    assert_eq!(items, whole[0].1);
    let [(body, _)] = whole.try_into().unwrap();
    let all = held(dir.path(), "whole.xml", &body);
    let everything: Vec<_> = all
        .seen
        .records
        .into_iter()
        .map(|r| (r.kind, r.start, r.end))
        .collect();
    assert_eq!(records, everything, "every record once, in order");
    assert!(
        records
            .iter()
            .all(|(k, ..)| k != "HKQuantityTypeIdentifierStepCount")
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// However an export is split into an earlier and a later one, the
    /// earlier plus the later's delta is the later, each item once.
    #[test]
    fn earlier_plus_the_delta_of_later_is_later(
        earlier in proptest::collection::vec(any::<bool>(), 120),
        later in proptest::collection::vec(any::<bool>(), 120),
    ) {
        let dir = tempdir();
        let pick = |mask: &[bool]| -> Vec<usize> {
            mask.iter().enumerate().filter(|(_, on)| **on).map(|(i, _)| i).collect()
        };
        let a = write(dir.path(), "a.xml", doc_of(pick(&earlier)));
        let b = write(dir.path(), "b.xml", doc_of(pick(&later)));
        let sent: BTreeSet<Identity> = ids(&choose(&open(&a), &Share::default(), None)).into_iter().collect();
        let want: BTreeSet<Identity> = ids(&choose(&open(&b), &Share::default(), None)).into_iter().collect();
        let mut ledger: SentItems = sent.iter().copied().collect();
        let delta = choose(&open(&b), &Share::default(), Some(&mut ledger));
        let delta_ids: BTreeSet<Identity> = ids(&delta).into_iter().collect();
        prop_assert!(delta_ids.is_disjoint(&sent));
        let union: BTreeSet<Identity> = delta_ids.union(&sent).copied().collect();
        prop_assert!(union.is_superset(&want));
        prop_assert_eq!(&delta_ids, &want.difference(&sent).copied().collect());
        prop_assert_eq!(delta.left_out.gone, sent.difference(&want).count() as u64);
        // The delta's body holds exactly those items.
        let [(body, _)] = bodies(open(&b), &delta, u64::MAX).try_into().unwrap();
        let body = write(dir.path(), "delta.xml", body);
        let again: BTreeSet<Identity> = ids(&choose(&open(&body), &Share::default(), None)).into_iter().collect();
        prop_assert_eq!(again, delta_ids);
    }
}

#[test]
fn a_selection_of_everything_is_the_export_byte_for_byte() {
    let dir = tempdir();
    let doc = doc_of((0..200).filter(|i| i % 9 != 8));
    let path = write(dir.path(), "export.xml", &doc);
    let everything = Share {
        include_me: true,
        ..Share::default()
    };
    let check = choose(&open(&path), &everything, None);
    let [(body, _)] = bodies_cleaned(open(&path), &check, u64::MAX, false)
        .try_into()
        .unwrap();
    assert!(body == doc.as_bytes(), "the body differs from the export");
}

#[test]
fn a_tally_counts_every_item_by_group_and_day_whatever_the_filters() {
    let dir = tempdir();
    let earlier = write(dir.path(), "a.xml", doc_of(0..90));
    let path = write(dir.path(), "b.xml", doc_of(0..180));
    let mut ledger: SentItems = ids(&choose(&open(&earlier), &Share::default(), None))
        .into_iter()
        .collect();
    let narrow = Share {
        only: Some(owi_export::resolve_kinds(["sleep"]).unwrap()),
        ..Share::default()
    };
    let choice = Choice {
        share: &narrow,
        sent: Some(&mut ledger),
        tally: true,
    };
    let check =
        owi_export::preflight_choosing(&open(&path), ReadOptions::default(), choice).unwrap();
    let Some(tally) = check.tally.as_ref() else {
        panic!("a tally was asked for")
    };
    let sum = |group: &str, new: bool| -> u64 {
        tally
            .rows
            .iter()
            .filter(|r| r.group == group)
            .map(|r| if new { r.new_items } else { r.items })
            .sum()
    };
    // Everything is counted, not only the sleep that goes.
    assert_eq!(sum("heart", false), 80);
    assert_eq!(sum("workouts", false), 20);
    assert_eq!(sum("clinical", false), 10);
    assert_eq!(sum("heart", true), 40, "half of it is in the ledger");
    assert_eq!(sum("sleep", true), 10);
    let all: u64 = tally.rows.iter().map(|r| r.items).sum();
    assert_eq!(all, 180);
    // Bytes: every element's, and the frame, make the whole export.
    let bytes: u64 = tally.rows.iter().map(|r| r.bytes).sum();
    let xml_len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(bytes + tally.frame_bytes + tally.profile_bytes, xml_len);
    // What goes is the new sleep, whatever was counted.
    assert_eq!(check.items_sent(), 10);
}
