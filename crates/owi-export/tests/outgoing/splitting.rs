//! Splitting an export into pieces, and the zip stream pool.

use super::*;

// ---------------------------------------------------------------------------
// Splitting
// ---------------------------------------------------------------------------

/// Everything `path` reads as, offsets aside.
fn content(path: &Path) -> (Vec<OwnedRecord>, owi_export::Stats, Collector) {
    let out = read_path(path);
    let stats = out.report().stats.clone();
    let records = out
        .seen
        .records
        .iter()
        .map(|r| OwnedRecord {
            offset: 0,
            ..r.clone()
        })
        .collect();
    (records, stats, out.seen)
}

#[test]
fn pieces_are_exports_that_together_hold_every_element_once_in_order() {
    let dir = tempdir();
    let spec = owi_sample::SampleSpec {
        records: 3_000,
        workouts: 12,
        seed: 3,
        locale: "en_US".into(),
        zip: true,
        junk_values: 10,
        dtd: Default::default(),
    };
    let manifest = owi_sample::generate(&spec, dir.path()).expect("sample");
    let xml = fs::read(&manifest.xml_path).expect("sample xml");
    let (all_records, all_stats, all_seen) = content(&manifest.xml_path);
    let zip = manifest.zip_path.clone().expect("zip written");
    for (path, clean) in [(manifest.xml_path.clone(), false), (zip, true)] {
        let source = source(&path);
        let limit = source.xml_size() / 5;
        let pieces = split(&source, clean, limit);
        assert!(pieces.len() >= 5, "{} pieces", pieces.len());
        let mut records = Vec::new();
        let mut stats = owi_export::Stats::default();
        let mut middles = Vec::new();
        let mut head: Option<Vec<u8>> = None;
        for (i, piece) in pieces.iter().enumerate() {
            let part = piece.piece().expect("a piece knows its place");
            assert_eq!(
                (part.index, part.count),
                (i as u32 + 1, pieces.len() as u32)
            );
            assert!(
                piece.len() <= limit,
                "piece {} is {} > {limit}",
                i + 1,
                piece.len()
            );
            let bytes = read_all(piece);
            if clean {
                strict(&bytes).unwrap_or_else(|e| panic!("piece {}: {e}", i + 1));
            }
            let piece_path = write(dir.path(), &format!("piece-{}.xml", i + 1), &bytes);
            let (piece_records, piece_stats, seen) = content(&piece_path);
            let header = seen.header();
            assert_eq!(
                header,
                all_seen.header(),
                "piece {} carries the header",
                i + 1
            );
            assert!(header.export_date.is_some() && !header.me.is_empty());
            records.extend(piece_records);
            stats.records += piece_stats.records;
            stats.workouts += piece_stats.workouts;
            stats.correlations += piece_stats.correlations;
            stats.activity_summaries += piece_stats.activity_summaries;
            // Header as written, a run of the XML, the closing tag.
            let h = head.get_or_insert_with(|| {
                let me = find(&xml, b"<Me ");
                let end = me + find(&xml[me..], b"/>") + 2;
                bytes[..end].to_vec()
            });
            assert!(
                bytes.starts_with(h) && bytes.ends_with(TAIL),
                "piece {}",
                i + 1
            );
            middles.extend_from_slice(&bytes[h.len()..bytes.len() - TAIL.len()]);
        }
        assert_eq!(stats.records, all_stats.records);
        assert_eq!(stats.workouts, all_stats.workouts);
        assert_eq!(stats.correlations, all_stats.correlations);
        assert_eq!(stats.activity_summaries, all_stats.activity_summaries);
        assert_eq!(records, all_records, "every record once, in order");
        // The runs are the XML between the header and `</HealthData>`, cut
        // only between elements.
        let h = head.unwrap_or_default().len();
        assert_eq!(middles, xml[h..h + middles.len()], "{}", path.display());
        let rest = String::from_utf8_lossy(&xml[h + middles.len()..]);
        assert_eq!(
            rest.trim(),
            "</HealthData>",
            "nothing after the last run but the close"
        );
        if clean {
            assert!(
                head_blanked(&read_all(&pieces[0])),
                "the DOCTYPE is blanked in pieces"
            );
        }
    }
}

fn head_blanked(bytes: &[u8]) -> bool {
    !bytes.windows(9).any(|w| w == b"<!DOCTYPE")
}

#[test]
fn an_export_that_fits_is_one_whole_body_found_without_a_scan() {
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", many_records(200));
    let source = source(&path);
    let progress = Recorder::new();
    let bodies = Outgoing::split(
        source.clone(),
        Cleaning::Full,
        source.xml_size(),
        &progress,
        &CancelToken::new(),
    )
    .expect("fits");
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0].piece(), None);
    assert_eq!(bodies[0].len(), source.xml_size());
    assert!(progress.events().is_empty(), "no scan, so no progress");
}

#[test]
fn the_scan_reports_progress_and_can_be_cancelled() {
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", many_records(5_000));
    let source = source(&path);
    let progress = Recorder::new();
    let limit = source.xml_size() / 2;
    Outgoing::split(
        source.clone(),
        Cleaning::Full,
        limit,
        &progress,
        &CancelToken::new(),
    )
    .expect("split");
    let events = progress.events();
    assert!(
        matches!(events.first(), Some(Progress::Started { total: Some(t), .. }) if *t == source.xml_size())
    );
    assert!(
        matches!(events.last(), Some(Progress::Finished { .. })),
        "{events:?}"
    );

    let cancel = CancelToken::new();
    cancel.cancel();
    match Outgoing::split(source.clone(), Cleaning::Full, limit, &Silent, &cancel) {
        Err(Error::Cancelled { path: p }) => assert_eq!(p, path),
        other => panic!("expected Cancelled, got {other:?}"),
    }
}

#[test]
fn an_element_too_large_for_a_piece_is_an_error_naming_file_and_offset() {
    let mut body = many_records(40);
    let big: String = (0..400)
        .map(|i| format!("  <MetadataEntry key=\"k{i}\" value=\"v\"/>\n"))
        .collect();
    let workout = format!(
        " <Workout workoutActivityType=\"HKWorkoutActivityTypeYoga\" sourceName=\"Huge\" \
         startDate=\"2024-01-01 11:00:00 +0100\" endDate=\"2024-01-01 11:30:00 +0100\">\n{big} </Workout>\n"
    );
    let at = body.find(" <Record").expect("a record");
    body.insert_str(at, &workout);
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", &body);
    let source = source(&path);
    let limit = workout.len() as u64;
    match split_err(&source, limit) {
        Error::TooLargeToSplit {
            offset,
            element,
            needed,
            limit: l,
            ..
        } => {
            assert_eq!(offset, offset_of(&body, "Workout", "sourceName=\"Huge\""));
            assert_eq!(element, "Workout");
            assert!(needed > limit && l == limit);
        }
        other => panic!("expected TooLargeToSplit, got {other:?}"),
    }
    let message = split_err(&source, limit).to_string();
    assert_names_file(&message, &path);

    // A limit smaller than the header alone.
    let head = body.find("<Workout").expect("the workout") as u64;
    match split_err(&source, head / 2) {
        Error::TooLargeToSplit { element, .. } => assert_eq!(element, "HealthData"),
        other => panic!("expected TooLargeToSplit for the header, got {other:?}"),
    }
}

#[test]
fn a_truncated_export_is_an_error_never_pieces_missing_data() {
    let doc = many_records(300);
    let close = doc.rfind("</HealthData>").expect("closed");
    let last_record = doc.rfind("<Record").expect("a record");
    let cuts = [
        close + 5,        // inside `</HealthData>`
        close,            // after the last element
        last_record + 40, // inside a tag
        doc.len() / 2,
        doc.find("<Record").expect("a record") + 3,
    ];
    let dir = tempdir();
    for (i, &cut) in cuts.iter().enumerate() {
        let bytes = &doc.as_bytes()[..cut];
        for path in [
            write(dir.path(), &format!("cut-{i}.xml"), bytes),
            zipped(dir.path(), &format!("cut-{i}.zip"), bytes),
        ] {
            let source = source(&path);
            let error = split_err(&source, cut as u64 / 3);
            match &error {
                Error::Truncated { offset, .. } => {
                    assert!(*offset <= cut as u64, "cut {cut}: offset {offset}")
                }
                other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
            }
            assert_names_file(&error.to_string(), &path);
        }
    }
}

// ---------------------------------------------------------------------------
// The zip stream pool
// ---------------------------------------------------------------------------

#[test]
fn reading_a_zip_body_part_by_part_inflates_it_a_few_times_not_once_per_part() {
    let dir = tempdir();
    let spec = owi_sample::SampleSpec {
        records: 12_000,
        workouts: 10,
        seed: 11,
        zip: true,
        ..owi_sample::SampleSpec::default()
    };
    let manifest = owi_sample::generate(&spec, dir.path()).expect("sample");
    let source = source(&manifest.zip_path.clone().expect("zip"));
    let body = whole(&source, true);
    let expected = read_all(&body);
    let len = body.len();
    assert!(len > 2 << 20, "a sample of {len} bytes");

    // Four parts in flight, as the uploader does: a part starts when the
    // oldest is done.
    const PARTS: u64 = 32;
    const IN_FLIGHT: u64 = 4;
    let part = len.div_ceil(PARTS);
    let before = body.inflated_bytes();
    let clone = body.clone();
    let mut open: std::collections::VecDeque<_> = (0..IN_FLIGHT)
        .map(|k| (k, clone.reader_at(k * part).expect("reader")))
        .collect();
    let mut sent = Vec::with_capacity(expected.len());
    while let Some((k, reader)) = open.pop_front() {
        reader
            .take(part)
            .read_to_end(&mut sent)
            .unwrap_or_else(|e| panic!("part {k}: {e}"));
        let next = k + IN_FLIGHT;
        if next * part < len {
            open.push_back((next, body.reader_at(next * part).expect("reader")));
        }
    }
    assert!(sent == expected, "the parts put together are the body");
    let inflated = body.inflated_bytes() - before;
    // Each of the four streams goes through the body once (plus read-ahead);
    // re-inflating from the start for every part would cost ~16.5 times.
    assert!(
        inflated <= IN_FLIGHT * len + (1 << 20),
        "inflated {inflated} bytes for a body of {len} ({:.1}x)",
        inflated as f64 / len as f64
    );

    // Pieces read one after another hand the stream on: about one pass.
    let pieces = split(&source, true, len / 6);
    let before = pieces[0].inflated_bytes();
    for piece in &pieces {
        let half = piece.len() / 2;
        read_at(piece, 0, half);
        read_at(piece, half, u64::MAX);
    }
    let inflated = pieces[0].inflated_bytes() - before;
    assert!(
        inflated <= len + (1 << 20),
        "inflated {inflated} bytes reading {} pieces of a {len}-byte body",
        pieces.len()
    );
}

#[test]
fn plain_files_inflate_nothing() {
    let dir = tempdir();
    let path = write(dir.path(), "export.xml", small_doc());
    let body = whole(&source(&path), true);
    read_all(&body);
    assert_eq!(body.inflated_bytes(), 0);
}
