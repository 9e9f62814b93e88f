//! Upload bodies: the cleaned XML (same length, only illegal bytes blanked,
//! accepted by a strict parser), readers at any offset, splitting into
//! pieces that are each an export, and the zip stream pool.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use owi_export::outgoing::{Cleaning, Outgoing};
use owi_export::{Error, ExportSource};
use owi_progress::{CancelToken, Progress, Recorder, Silent};
use proptest::prelude::*;

use crate::util::zipcraft::{self, Entry};
use crate::util::*;
use crate::{IOS16_DTD, doc_with_prolog};

const TAIL: &[u8] = b"\n</HealthData>\n";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn whole(source: &Arc<ExportSource>, clean: bool) -> Outgoing {
    Outgoing::whole(source.clone(), clean.into())
        .unwrap_or_else(|e| panic!("a whole body of {}: {e}", source.path().display()))
}

fn split(source: &Arc<ExportSource>, clean: bool, limit: u64) -> Vec<Outgoing> {
    Outgoing::split(
        source.clone(),
        clean.into(),
        limit,
        &Silent,
        &CancelToken::new(),
    )
    .unwrap_or_else(|e| panic!("splitting {} at {limit}: {e}", source.path().display()))
}

fn split_err(source: &Arc<ExportSource>, limit: u64) -> Error {
    match Outgoing::split(
        source.clone(),
        Cleaning::Full,
        limit,
        &Silent,
        &CancelToken::new(),
    ) {
        Ok(pieces) => panic!("splitting at {limit} should fail, got {pieces:?}"),
        Err(e) => e,
    }
}

/// `n` bytes of `body` from `offset` (fewer at the end).
fn read_at(body: &Outgoing, offset: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    body.reader_at(offset)
        .unwrap_or_else(|e| panic!("reader at {offset} of {body:?}: {e}"))
        .take(n)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("reading {n} at {offset} of {body:?}: {e}"));
    out
}

fn read_all(body: &Outgoing) -> Vec<u8> {
    let bytes = read_at(body, 0, u64::MAX);
    assert_eq!(
        bytes.len() as u64,
        body.len(),
        "a body holds exactly len() bytes"
    );
    bytes
}

fn source(path: &Path) -> Arc<ExportSource> {
    Arc::new(open(path))
}

/// A zip holding `doc` as the export.
fn zipped(dir: &Path, name: &str, doc: &[u8]) -> PathBuf {
    write(
        dir,
        name,
        zipcraft::build(&[Entry::new("apple_health_export/export.xml", doc)]),
    )
}

/// Why a strict XML 1.0 parser refuses `doc`, if it does.
fn strict(doc: &[u8]) -> Result<(), String> {
    for event in xml::reader::EventReader::new(doc) {
        event.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A header as Apple writes it, the iOS 16 DTD included.
fn dirty_export(body: &str) -> String {
    doc_with_prolog(
        IOS16_DTD,
        &format!(" <Me HKCharacteristicTypeIdentifierDateOfBirth=\"1990-05-20\"/>\n{body}"),
    )
}

/// Records whose names carry every kind of illegal character, between
/// legal multi-byte text and references that must stay.
fn dirty_records(n: usize) -> String {
    let names = [
        "Simon\u{b}s iPhone",
        "Tab&#11;Watch",
        "Dev&#x0000b;ice",
        "Odd\u{ffff}Char",
        "Ref&#xFFFE;&#65535;",
        "Ana’s Watch &#183; &amp; 🕛",
        "Nul\u{0}\u{1f}x",
    ];
    (0..n)
        .map(|i| {
            let start = format!(
                "2024-01-{:02} {:02}:{:02}:00 +0100",
                1 + i / 1440 % 28,
                i / 60 % 24,
                i % 60
            );
            quantity(
                "HKQuantityTypeIdentifierHeartRate",
                names[i % names.len()],
                "count/min",
                &format!("{}", 60 + i % 40),
                &start,
            )
        })
        .collect()
}

/// What cleaning must give, worked out from the fixture's text rather than
/// by the code under test: the DOCTYPE and every illegal character blanked.
fn expected_clean(doc: &str) -> Vec<u8> {
    let mut out = doc.as_bytes().to_vec();
    let mut blank = |from: usize, len: usize| out[from..from + len].fill(b' ');
    let dtd = find(doc.as_bytes(), b"<!DOCTYPE");
    let dtd_end = find(doc.as_bytes(), b"]>") + 2;
    blank(dtd, dtd_end - dtd);
    for pattern in [
        "\u{b}",
        "\u{0}",
        "\u{1f}",
        "\u{ffff}",
        "&#11;",
        "&#x0000b;",
        "&#xFFFE;",
        "&#65535;",
    ] {
        for (at, _) in doc.match_indices(pattern) {
            blank(at, pattern.len());
        }
    }
    out
}

/// Where the patterns are, for offsets that fall inside them.
fn pattern_offsets(doc: &str) -> Vec<u64> {
    [
        "\u{ffff}",
        "&#11;",
        "&#x0000b;",
        "&#xFFFE;",
        "’",
        "🕛",
        "&#183;",
    ]
    .iter()
    .flat_map(|p| doc.match_indices(p).map(|(at, p)| (at, p.len())).take(40))
    .flat_map(|(at, len)| (0..=len).map(move |k| (at + k) as u64))
    .collect()
}

// ---------------------------------------------------------------------------
// Whole bodies and cleaning
// ---------------------------------------------------------------------------

#[test]
fn an_uncleaned_whole_body_is_the_xml_byte_for_byte() {
    let doc = dirty_export(&dirty_records(50));
    let dir = tempdir();
    for path in [
        write(dir.path(), "export.xml", &doc),
        zipped(dir.path(), "export.zip", doc.as_bytes()),
    ] {
        let source = source(&path);
        let body = whole(&source, false);
        assert_eq!(body.len(), source.xml_size());
        assert_eq!(body.piece(), None);
        assert!(!body.is_clean());
        assert_eq!(read_all(&body), doc.as_bytes(), "{}", path.display());
    }
}

#[test]
fn cleaning_blanks_the_doctype_and_illegal_characters_and_nothing_else() {
    let (doc, expected, _dir, paths) = dirty_inputs(70);
    for path in paths {
        let body = whole(&source(&path), true);
        let cleaned = read_all(&body);
        assert_eq!(cleaned.len(), doc.len(), "cleaning keeps the length");
        let changed: Vec<usize> = (0..doc.len())
            .filter(|&i| cleaned[i] != doc.as_bytes()[i])
            .collect();
        assert!(
            changed.iter().all(|&i| cleaned[i] == b' '),
            "only spaces are written"
        );
        assert_eq!(
            cleaned,
            expected,
            "{}: exactly the illegal bytes blanked",
            path.display()
        );
        assert!(
            String::from_utf8_lossy(&cleaned).contains("Ana’s Watch &#183; &amp; 🕛"),
            "legal text and references stay"
        );
    }
    strict(doc.as_bytes()).expect_err("the strict parser refuses the original");
    strict(&expected).unwrap_or_else(|e| panic!("the cleaned body is well-formed: {e}"));
}

/// A read that saw no character XML forbids lets cleaning blank the DTD
/// alone, for the same bytes; one that saw any does not, and the scan it
/// would skip is what blanks them.
#[test]
fn a_read_that_saw_no_forbidden_character_spares_the_scan() {
    let names = [
        "Ana’s Watch &amp; 🕛",
        "Gerät（テスト）",
        "Tab\tand\r\nlines",
    ];
    let body: String = (0..300)
        .map(|i| {
            let start = format!("2024-02-01 {:02}:{:02}:00 +0100", i / 60 % 24, i % 60);
            let name = names[i % names.len()];
            quantity(
                "HKQuantityTypeIdentifierStepCount",
                name,
                "count",
                "12",
                &start,
            )
        })
        .collect();
    let doc = dirty_export(&body);
    let dir = tempdir();
    let plain = [
        write(dir.path(), "export.xml", &doc),
        zipped(dir.path(), "export.zip", doc.as_bytes()),
    ];
    let mut expected = doc.clone().into_bytes();
    let dtd = find(doc.as_bytes(), b"<!DOCTYPE");
    expected[dtd..find(doc.as_bytes(), b"]>") + 2].fill(b' ');
    for path in plain {
        let source = source(&path);
        let stats = read_source(&source).report().stats.clone();
        let stats = &stats;
        assert!(stats.no_forbidden_chars, "{}", path.display());
        let cleaning = Cleaning::knowing(true, stats);
        assert_eq!(cleaning, Cleaning::DoctypeOnly);
        let body = Outgoing::whole(source.clone(), cleaning).expect("body");
        assert!(body.is_clean());
        assert_eq!(read_all(&body), expected, "{}", path.display());
        assert_eq!(read_all(&whole(&source, true)), expected, "Full's bytes");
        assert_eq!(Cleaning::knowing(false, stats), Cleaning::Off);
    }

    let (_doc, cleaned, _dir, dirty) = dirty_inputs(20);
    for path in dirty {
        let source = source(&path);
        let stats = read_source(&source).report().stats.clone();
        let stats = &stats;
        assert!(!stats.no_forbidden_chars, "{}", path.display());
        assert_eq!(Cleaning::knowing(true, stats), Cleaning::Full);
        let unscanned = Outgoing::whole(source, Cleaning::DoctypeOnly).expect("body");
        let sent = read_all(&unscanned);
        assert!(sent != cleaned && sent.windows(5).any(|w| w == b"&#11;"));
    }
}

/// A dirty export of `records` records, what cleaning makes of it, and
/// the export as XML and as a zip in a folder that lives as long as they.
fn dirty_inputs(records: usize) -> (String, Vec<u8>, tempfile::TempDir, [PathBuf; 2]) {
    let doc = dirty_export(&dirty_records(records));
    let expected = expected_clean(&doc);
    let dir = tempdir();
    let paths = [
        write(dir.path(), "export.xml", &doc),
        zipped(dir.path(), "export.zip", doc.as_bytes()),
    ];
    (doc, expected, dir, paths)
}

/// Reads a whole body in reads of the given sizes, in turn.
fn read_in(body: &Outgoing, sizes: &[usize]) -> Vec<u8> {
    let mut reader = body
        .reader_at(0)
        .unwrap_or_else(|e| panic!("reader of {body:?}: {e}"));
    let (mut out, mut buf) = (Vec::new(), vec![0; 1 << 20]);
    for size in sizes.iter().cycle() {
        match reader.read(&mut buf[..*size]) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading {body:?}: {e}"),
        }
    }
    out
}

#[test]
fn large_reads_clean_in_place_as_small_reads_do() {
    // Several MiB, patterns everywhere, so large reads (the uploader's
    // 64 KiB, the least read in place, 1 MiB) end inside patterns and leave
    // tails for the next read.
    let (doc, expected, _dir, paths) = dirty_inputs(24_000);
    for path in paths {
        let body = whole(&source(&path), true);
        // First reads that end inside a pattern, then the uploader's.
        let inside = ["&#11;", "&#x0000b;", "\u{ffff}"].map(|pattern| {
            let (at, _) = doc[300_000..]
                .match_indices(pattern)
                .next()
                .unwrap_or_else(|| panic!("{pattern:?} past 300 kB"));
            300_000 + at + 2
        });
        let sizes = [
            vec![1 << 20],
            vec![1 << 20, 7],
            vec![64 << 10],
            vec![16 << 10, 7],
            vec![inside[0], 64 << 10],
            vec![inside[0], 1 << 20],
            vec![inside[1], 1 << 20],
            vec![inside[2], 1 << 20],
        ];
        for sizes in &sizes {
            let cleaned = read_in(&body, sizes);
            assert!(
                cleaned == expected,
                "{} read in {sizes:?}: {} bytes, first difference at {:?}",
                path.display(),
                cleaned.len(),
                cleaned.iter().zip(&expected).position(|(a, b)| a != b)
            );
        }
    }
}

#[test]
fn each_defect_alone_is_refused_before_cleaning_and_accepted_after() {
    let record = |name: &str| {
        quantity(
            "HKQuantityTypeIdentifierHeartRate",
            name,
            "count/min",
            "64",
            "2024-01-01 10:00:00 +0100",
        )
    };
    let cases = [
        ("iOS 16 DTD", dirty_export(&record("Watch"))),
        (
            "U+000B in an attribute",
            doc_with_prolog("", &record("Simon\u{b}s iPhone")),
        ),
        ("&#11;", doc_with_prolog("", &record("Tab&#11;Watch"))),
        (
            "&#x0000b;",
            doc_with_prolog("", &record("Tab&#x0000b;Watch")),
        ),
        ("U+FFFF", doc_with_prolog("", &record("Odd\u{ffff}"))),
    ];
    let dir = tempdir();
    for (i, (what, doc)) in cases.iter().enumerate() {
        strict(doc.as_bytes()).expect_err(what);
        let path = write(dir.path(), &format!("case-{i}.xml"), doc);
        let cleaned = read_all(&whole(&source(&path), true));
        assert_eq!(cleaned.len(), doc.len(), "{what}");
        strict(&cleaned).unwrap_or_else(|e| panic!("{what}: cleaned still refused: {e}"));
        // And the data is the same to the reader.
        let cleaned_path = write(dir.path(), &format!("case-{i}-clean.xml"), &cleaned);
        assert_eq!(
            read_path(&cleaned_path).report().stats.records,
            read_path(&path).report().stats.records,
            "{what}"
        );
    }
}

#[test]
fn a_cleaned_sample_export_passes_the_strict_parser() {
    let dir = tempdir();
    let spec = owi_sample::SampleSpec {
        records: 2_000,
        workouts: 5,
        seed: 7,
        locale: "fr_FR".into(),
        zip: true,
        junk_values: 30,
        dtd: Default::default(),
    };
    let manifest = owi_sample::generate(&spec, dir.path()).expect("sample");
    let zip = manifest.zip_path.clone().expect("zip written");
    let original = fs::read(&manifest.xml_path).expect("sample xml");
    for path in [manifest.xml_path.clone(), zip] {
        let cleaned = read_all(&whole(&source(&path), true));
        assert_eq!(cleaned.len(), original.len());
        strict(&cleaned).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn an_offset_past_the_end_is_an_error_and_the_end_an_empty_reader() {
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", small_doc());
    let body = whole(&source(&path), true);
    assert!(read_at(&body, body.len(), 10).is_empty());
    match body.reader_at(body.len() + 1) {
        Err(e @ Error::OffsetPastEnd { .. }) => assert_names_file(&e.to_string(), &path),
        Err(other) => panic!("expected OffsetPastEnd, got {other:?}"),
        Ok(_) => panic!("a reader past the end"),
    }
}

fn small_doc() -> String {
    dirty_export(&dirty_records(3))
}

// ---------------------------------------------------------------------------
// Readers at any offset
// ---------------------------------------------------------------------------

struct Fixture {
    _dir: tempfile::TempDir,
    /// Plain and zip whole bodies, and the pieces of the zip, with the bytes
    /// each must hold.
    bodies: Vec<(Outgoing, Vec<u8>)>,
    inside: Vec<u64>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Larger than a stream's 128 KiB chunk, so reads cross refills.
        let doc = dirty_export(&dirty_records(2_500));
        assert!(doc.len() > 400_000, "fixture size {}", doc.len());
        let expected = expected_clean(&doc);
        let dir = tempdir();
        let plain = source(&write(dir.path(), "export.xml", &doc));
        let zip = source(&zipped(dir.path(), "export.zip", doc.as_bytes()));
        let mut bodies = vec![
            (whole(&plain, true), expected.clone()),
            (whole(&zip, true), expected.clone()),
        ];
        for piece in split(&zip, true, doc.len() as u64 / 3) {
            let bytes = read_all(&piece);
            bodies.push((piece, bytes));
        }
        Fixture {
            _dir: dir,
            bodies,
            inside: pattern_offsets(&doc),
        }
    })
}

fn check_slice(which: usize, offset: u64, n: u64) {
    let fixture = fixture();
    let (body, bytes) = &fixture.bodies[which % fixture.bodies.len()];
    let offset = offset.min(body.len());
    let end = (offset + n).min(body.len()) as usize;
    let got = read_at(body, offset, n);
    assert!(
        got == bytes[offset as usize..end],
        "{body:?}: {n} bytes at {offset} differ from the whole body's"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_reader_at_any_offset_gives_the_slice_of_the_whole(
        which in 0usize..8,
        offset in 0u64..700_000,
        n in prop_oneof![1u64..64, 1u64..300_000],
    ) {
        check_slice(which, offset, n);
    }

    #[test]
    fn a_reader_starting_inside_a_pattern_gives_the_slice_of_the_whole(
        which in 0usize..2,
        index in any::<prop::sample::Index>(),
        n in 1u64..100,
    ) {
        let inside = &fixture().inside;
        check_slice(which, inside[index.index(inside.len())], n);
    }
}

#[test]
fn readers_at_every_offset_near_patterns_agree_with_the_whole() {
    let fixture = fixture();
    for &offset in fixture.inside.iter().step_by(3) {
        check_slice(0, offset.saturating_sub(40), 80);
        check_slice(1, offset, 16);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

mod splitting;
