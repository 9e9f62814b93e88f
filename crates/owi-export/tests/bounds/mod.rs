//! The reader's bounds on hostile input (`owi_export::bounds`): each one
//! crossed by one fails the read at the offending element's byte, each one
//! reached exactly still reads; and inputs far past them, streamed from a
//! generator, fail after a small prefix is read.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use owi_export::bounds::*;
use owi_export::{Error, ReadOptions, SkipReason, read_xml_stream};

use crate::util::*;

/// Reads `doc` from a file; the failure's offset and message when it fails.
fn read_doc(doc: &str) -> (Outcome, tempfile::TempDir) {
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", doc);
    (read_path(&path), dir)
}

/// The read must fail as damaged at `offset`, naming the file and `what`.
fn assert_over(out: &Outcome, offset: u64, what: &str) {
    match &out.failure().error {
        Error::Malformed {
            offset: at,
            message,
            path,
        } => {
            assert_eq!(*at, offset, "the offending element's byte: {message}");
            assert!(message.contains(what), "says what: {message}");
            assert!(message.contains("not an export"), "says why: {message}");
            assert!(path.ends_with("export.xml"), "names the file");
            let shown = out.failure().error.to_string();
            assert!(shown.contains(&format!("at byte {offset}")), "{shown}");
        }
        other => panic!("expected a bound's Malformed error, got {other:?}"),
    }
}

fn nested(opens: usize) -> String {
    // HealthData is depth 1: `opens` elements inside it reach 1 + opens.
    let mut body = "<Deep>".repeat(opens - 1);
    body.push_str("<Last/>");
    body.push_str(&"</Deep>".repeat(opens - 1));
    export_doc(&body)
}

#[test]
fn depth_just_under_reads_and_just_over_fails_at_the_element() {
    let (out, _dir) = read_doc(&nested(MAX_DEPTH - 1));
    assert_eq!(
        out.report().stats.unknown.get("Deep"),
        Some(&1),
        "read whole"
    );
    let doc = nested(MAX_DEPTH);
    let (out, _dir) = read_doc(&doc);
    assert_over(
        &out,
        doc.find("<Last").unwrap_or_default() as u64,
        "nested more than 32 deep",
    );
}

#[test]
fn depth_is_bounded_inside_a_record_too() {
    let inner = |opens: usize| {
        let mut meta = String::from("<MetadataEntry key=\"k\" value=\"v\">");
        meta.push_str(&"<X>".repeat(opens));
        meta.push_str(&"</X>".repeat(opens));
        meta.push_str("</MetadataEntry>");
        let record = quantity(
            "HKQuantityTypeIdentifierStepCount",
            "Phone",
            "count",
            "1",
            "2024-02-03 10:00:00 +0100",
        );
        export_doc(&record.replace("/>\n", &format!(">{meta}</Record>\n")))
    };
    // HealthData, Record, MetadataEntry: 3 levels before the first X.
    let (out, _dir) = read_doc(&inner(MAX_DEPTH - 3));
    assert_eq!(out.report().stats.records, 1);
    let doc = inner(MAX_DEPTH - 2);
    let (out, _dir) = read_doc(&doc);
    let last_x = doc.rfind("<X>").unwrap_or_default() as u64;
    assert_over(&out, last_x, "nested more than");
}

fn record_with(children: &str) -> String {
    let record = quantity(
        "HKQuantityTypeIdentifierHeartRateVariabilitySDNN",
        "Watch",
        "ms",
        "48",
        "2024-02-03 10:00:00 +0100",
    );
    export_doc(&record.replace("/>\n", &format!(">{children}</Record>\n")))
}

#[test]
fn record_children_just_under_read_and_one_more_fails_at_it() {
    let entries: String = (0..MAX_RECORD_CHILDREN)
        .map(|i| format!("<MetadataEntry key=\"k{i}\" value=\"v\"/>"))
        .collect();
    let (out, _dir) = read_doc(&record_with(&entries));
    assert_eq!(out.seen.records[0].metadata.len(), MAX_RECORD_CHILDREN);
    let doc = record_with(&format!(
        "{entries}<MetadataEntry key=\"last\" value=\"v\"/>"
    ));
    let (out, _dir) = read_doc(&doc);
    assert_over(
        &out,
        doc.find("<MetadataEntry key=\"last\"").unwrap_or_default() as u64,
        "more than 10000 children",
    );
}

#[test]
fn heartbeats_count_as_record_children() {
    // The list itself is one child: it and its beats make the count.
    let beats = |n: usize| -> String {
        let list: String = (0..n)
            .map(|i| {
                format!(
                    "<InstantaneousBeatsPerMinute bpm=\"60\" time=\"10:{:02}:{:02}.00\"/>",
                    i / 60 % 60,
                    i % 60
                )
            })
            .collect();
        format!(
            "<HeartRateVariabilityMetadataList>{list}<Beat/></HeartRateVariabilityMetadataList>"
        )
    };
    // `<Beat/>` is one more (unknown) child in the list.
    let (out, _dir) = read_doc(&record_with(&beats(MAX_RECORD_CHILDREN - 2)));
    assert_eq!(out.seen.records[0].beats.len(), MAX_RECORD_CHILDREN - 2);
    let doc = record_with(&beats(MAX_RECORD_CHILDREN - 1));
    let (out, _dir) = read_doc(&doc);
    assert_over(
        &out,
        doc.find("<Beat/>").unwrap_or_default() as u64,
        "children",
    );
}

fn workout_with_attributes(extra: &str) -> String {
    export_doc(&format!(
        " <Workout workoutActivityType=\"HKWorkoutActivityTypeRunning\" startDate=\"2024-02-03 10:00:00 +0100\" endDate=\"2024-02-03 11:00:00 +0100\"{extra}/>\n"
    ))
}

#[test]
fn attribute_count_just_under_reads_and_one_more_fails() {
    // The workout has 3 attributes of its own.
    let extra = |n: usize| -> String { (0..n).map(|i| format!(" a{i}=\"1\"")).collect() };
    let (out, _dir) = read_doc(&workout_with_attributes(&extra(MAX_ATTRIBUTES - 3)));
    assert_eq!(out.seen.workouts.len(), 1);
    let doc = workout_with_attributes(&extra(MAX_ATTRIBUTES - 2));
    let (out, _dir) = read_doc(&doc);
    assert_over(
        &out,
        doc.find("<Workout").unwrap_or_default() as u64,
        "more than 256 attributes",
    );

    // Records are held to it too, though their attributes are never copied.
    let record = |n: usize| {
        quantity(
            "HKQuantityTypeIdentifierStepCount",
            "Phone",
            "count",
            "1",
            "2024-02-03 10:00:00 +0100",
        )
        .replace("/>\n", &format!("{}/>\n", extra(n)))
    };
    let (out, _dir) = read_doc(&export_doc(&record(MAX_ATTRIBUTES - 8)));
    assert_eq!(out.report().stats.records, 1);
    let doc = export_doc(&record(MAX_ATTRIBUTES - 7));
    let (out, _dir) = read_doc(&doc);
    assert_over(
        &out,
        doc.find("<Record").unwrap_or_default() as u64,
        "attributes",
    );
}

#[test]
fn attribute_size_just_under_reads_and_one_byte_more_fails() {
    let long = |n: usize| format!(" note=\"{}\"", "x".repeat(n));
    let (out, _dir) = read_doc(&workout_with_attributes(&long(MAX_ATTRIBUTE_BYTES)));
    assert_eq!(out.seen.workouts.len(), 1);
    let doc = workout_with_attributes(&long(MAX_ATTRIBUTE_BYTES + 1));
    let (out, _dir) = read_doc(&doc);
    assert_over(
        &out,
        doc.find("<Workout").unwrap_or_default() as u64,
        "attribute value longer than 1024 KiB",
    );

    // A record's metadata value, decoded into the record's buffers.
    let meta = |n: usize| {
        record_with(&format!(
            "<MetadataEntry key=\"k\" value=\"{}\"/>",
            "y".repeat(n)
        ))
    };
    let (out, _dir) = read_doc(&meta(MAX_ATTRIBUTE_BYTES));
    assert_eq!(
        out.seen.records[0].metadata[0].value.len(),
        MAX_ATTRIBUTE_BYTES
    );
    let doc = meta(MAX_ATTRIBUTE_BYTES + 1);
    let (out, _dir) = read_doc(&doc);
    assert_over(
        &out,
        doc.find("<MetadataEntry").unwrap_or_default() as u64,
        "attribute value",
    );
}

#[test]
fn element_names_just_under_read_and_one_byte_longer_fails() {
    let named = |n: usize| export_doc(&format!(" <{}/>\n", "N".repeat(n)));
    let (out, _dir) = read_doc(&named(MAX_NAME_BYTES));
    assert_eq!(out.report().stats.unknown.len(), 1);
    let doc = named(MAX_NAME_BYTES + 1);
    let (out, _dir) = read_doc(&doc);
    assert_over(
        &out,
        doc.find("<NNN").unwrap_or_default() as u64,
        "name longer than 256 bytes",
    );
}

#[test]
fn unknown_names_just_under_read_and_one_more_fails() {
    let names = |n: usize| -> String { (0..n).map(|i| format!(" <Unknown{i}/>\n")).collect() };
    let (out, _dir) = read_doc(&export_doc(&names(MAX_UNKNOWN_NAMES)));
    assert_eq!(out.report().stats.unknown.len(), MAX_UNKNOWN_NAMES);
    let doc = export_doc(&format!(
        "{}<Unknown{MAX_UNKNOWN_NAMES}/>",
        names(MAX_UNKNOWN_NAMES)
    ));
    let (out, _dir) = read_doc(&doc);
    let at = doc
        .find(&format!("<Unknown{MAX_UNKNOWN_NAMES}/>"))
        .unwrap_or_default() as u64;
    assert_over(&out, at, "more than 1000 different unknown element names");
}

#[test]
fn a_rare_element_past_its_byte_budget_is_skipped_as_too_large() {
    // Children with 1 MiB attributes: a workout's tree holds at most
    // MAX_ELEMENT_BYTES of names, values and text.
    let workout = |children: usize| {
        let child = format!(
            "<MetadataEntry key=\"k\" value=\"{}\"/>",
            "z".repeat(MAX_ATTRIBUTE_BYTES)
        );
        export_doc(&format!(
            " <Workout workoutActivityType=\"HKWorkoutActivityTypeRunning\" startDate=\"2024-02-03 10:00:00 +0100\" endDate=\"2024-02-03 11:00:00 +0100\">{}</Workout>\n",
            child.repeat(children)
        ))
    };
    let fits = MAX_ELEMENT_BYTES / MAX_ATTRIBUTE_BYTES - 1;
    let (out, _dir) = read_doc(&workout(fits));
    assert_eq!(out.seen.workouts[0].metadata.len(), fits);
    let (out, _dir) = read_doc(&workout(fits + 3));
    let report = out.report();
    assert_eq!(
        report.stats.skipped.get(&SkipReason::ElementTooLarge),
        Some(&1)
    );
    assert!(
        out.seen.workouts[0].metadata.len() <= fits + 1,
        "the tree stopped growing"
    );
}

/// An export made as it is read: `head`, then `unit` `times` times, then
/// `tail`; counts the bytes handed out.
struct Generated {
    parts: Vec<(Vec<u8>, u64)>,
    at: usize,
    offset: usize,
    produced: Arc<AtomicU64>,
}

impl Generated {
    fn new(head: &str, unit: &str, times: u64, tail: &str) -> (Self, Arc<AtomicU64>) {
        let produced = Arc::new(AtomicU64::new(0));
        let parts = vec![
            (head.as_bytes().to_vec(), 1),
            (unit.as_bytes().to_vec(), times),
            (tail.as_bytes().to_vec(), 1),
        ];
        let generated = Generated {
            parts,
            at: 0,
            offset: 0,
            produced: produced.clone(),
        };
        (generated, produced)
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let Some((bytes, left)) = self.parts.get_mut(self.at) else {
                break;
            };
            if *left == 0 || bytes.is_empty() {
                self.at += 1;
                continue;
            }
            let take = (bytes.len() - self.offset).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&bytes[self.offset..self.offset + take]);
            n += take;
            self.offset += take;
            if self.offset == bytes.len() {
                self.offset = 0;
                *left -= 1;
            }
        }
        self.produced.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

const ROOT: &str = "<?xml version=\"1.0\"?>\n<HealthData locale=\"en_US\">\n";

/// Reads a generated export, which must fail: the error, and the bytes
/// the reader pulled before giving up.
fn read_generated(head: &str, unit: &str, times: u64, tail: &str) -> (Error, u64) {
    let (generated, produced) = Generated::new(head, unit, times, tail);
    let mut seen = Collector::default();
    let result = read_xml_stream(
        Box::new(generated),
        Path::new("export.xml"),
        &mut seen,
        ReadOptions::default(),
    );
    match result {
        Ok(report) => panic!("a hostile export was read: {report:?}"),
        Err(failure) => (failure.error, produced.load(Ordering::Relaxed)),
    }
}

/// The reader's own buffer: what it may pull ahead of where it stops.
const READ_AHEAD: u64 = 2 << 20;

#[test]
fn ten_million_nested_elements_fail_within_the_first_bytes() {
    let (error, pulled) = read_generated(ROOT, "<a>", 10_000_000, "");
    match error {
        Error::Malformed {
            offset, message, ..
        } => {
            assert_eq!(
                offset,
                (ROOT.len() + 3 * (MAX_DEPTH - 1)) as u64,
                "{message}"
            );
        }
        other => panic!("expected the depth bound, got {other:?}"),
    }
    assert!(pulled <= READ_AHEAD, "30 MB offered, {pulled} bytes read");
}

#[test]
fn a_record_with_a_million_children_fails_at_the_bound() {
    let head = format!(
        "{ROOT}<Record type=\"HKQuantityTypeIdentifierHeartRate\" startDate=\"2024-02-03 10:00:00 +0100\" endDate=\"2024-02-03 10:00:00 +0100\">"
    );
    let unit = "<MetadataEntry key=\"k\" value=\"v\"/>";
    let (error, pulled) = read_generated(&head, unit, 1_000_000, "</Record></HealthData>");
    match error {
        Error::Malformed {
            offset, message, ..
        } => {
            let expected = head.len() + unit.len() * MAX_RECORD_CHILDREN;
            assert_eq!(offset, expected as u64, "{message}");
        }
        other => panic!("expected the children bound, got {other:?}"),
    }
    assert!(
        pulled <= expected_pull(head.len() + unit.len() * MAX_RECORD_CHILDREN),
        "{pulled}"
    );
}

fn expected_pull(stopped_at: usize) -> u64 {
    stopped_at as u64 + READ_AHEAD
}

#[test]
fn a_200_mb_attribute_fails_once_the_markup_bound_is_passed() {
    let head = format!("{ROOT}<Record type=\"");
    let (error, pulled) =
        read_generated(&head, &"a".repeat(1 << 16), 200 * 16, "\"/></HealthData>");
    let message = error.to_string();
    assert!(message.contains("longer than 64 MiB"), "{message}");
    assert!(message.contains("export.xml"), "{message}");
    assert!(
        pulled <= MAX_MARKUP_RUN + READ_AHEAD,
        "200 MB offered, {pulled} bytes read"
    );
}
