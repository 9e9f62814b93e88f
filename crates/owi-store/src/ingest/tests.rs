//! Records in blocks hold exactly what a row each held: every field of every
//! record the reader hands over, in document order, and a store written
//! before blocks is packed without losing a row.

use std::ops::ControlFlow;
use std::path::Path;

use owi_export::{ExportSource, ReadOptions, Record, Value, Visitor, read_export};
use rusqlite::params;

use super::loader::core_of;
use crate::Store;
use crate::record_block::{RecordCore, StoredRecord, decode};

/// A record as the old `records` row (and its beats) held it, with interned
/// ids replaced by their text so two stores compare.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    series: (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    /// Start, duration, creation delay, offset.
    times: (i64, i64, Option<i64>, i16),
    value: Option<u64>,
    value_text: Option<String>,
    metadata: Vec<(String, String)>,
    beats: Vec<(i64, u64)>,
}

/// What the old loader would have stored, from the reader directly.
#[derive(Default)]
struct Expected(Vec<Row>);

impl Visitor for Expected {
    fn record(&mut self, r: &Record<'_>) -> ControlFlow<()> {
        let (value, value_text) = match r.value {
            Value::Number(v) => (Some(v.to_bits()), None),
            Value::Text(t) => (None, Some(t.to_string())),
            Value::None => (None, None),
        };
        self.0.push(Row {
            series: (
                r.kind.into(),
                r.source_name.into(),
                r.source_version.map(Into::into),
                r.device.map(Into::into),
                r.unit.map(Into::into),
            ),
            times: times_of(&core_of(r, 0, None, None)),
            value,
            value_text,
            metadata: r
                .metadata
                .iter()
                .map(|m| (m.key.clone(), m.value.clone()))
                .collect(),
            beats: r.beats.iter().map(|b| (b.at_ms, b.bpm.to_bits())).collect(),
        });
        ControlFlow::Continue(())
    }
}

fn times_of(c: &RecordCore) -> (i64, i64, Option<i64>, i16) {
    (c.start, c.duration, c.created_delay, c.tz)
}

fn text(conn: &rusqlite::Connection, id: Option<i64>) -> Option<String> {
    let id = id?;
    conn.query_row("SELECT text FROM strings WHERE id = ?", [id], |r| r.get(0))
        .ok()
}

/// Every record of `export_id`, decoded from its blocks, in id order.
fn stored(db: &Path, export_id: i64) -> Vec<(i64, Row)> {
    let conn = rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("{e}"));
    let mut stmt = conn
        .prepare(
            "SELECT s.type_id, s.source_id, s.source_version_id, s.device_id, s.unit_id, b.data
             FROM record_blocks b JOIN series s ON s.id = b.series_id WHERE s.export_id = ?",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    type Ids = (i64, i64, Option<i64>, Option<i64>, Option<i64>);
    let blocks: Vec<(Ids, Vec<u8>)> = stmt
        .query_map([export_id], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for ((kind, source, version, device, unit), blob) in blocks {
        let records: Vec<StoredRecord> = decode(&blob).unwrap_or_else(|| panic!("a bad block"));
        for r in records {
            let metadata = r
                .metadata
                .as_deref()
                .unwrap_or_default()
                .split_terminator('\u{1E}')
                .map(|pair| {
                    let (key, value) = pair.split_once('\u{1F}').unwrap_or_default();
                    (
                        text(&conn, key.parse().ok()).unwrap_or_default(),
                        value.to_string(),
                    )
                })
                .collect();
            out.push((
                r.core.id,
                Row {
                    series: (
                        text(&conn, Some(kind)).unwrap_or_default(),
                        text(&conn, Some(source)).unwrap_or_default(),
                        text(&conn, version),
                        text(&conn, device),
                        text(&conn, unit),
                    ),
                    times: times_of(&r.core),
                    value: r.core.value.map(f64::to_bits),
                    value_text: text(&conn, r.core.value_id),
                    metadata,
                    beats: r
                        .beats
                        .iter()
                        .map(|&(at, bpm)| (at, bpm.to_bits()))
                        .collect(),
                },
            ));
        }
    }
    out.sort_by_key(|(id, _)| *id);
    out
}

#[test]
fn blocks_hold_every_record_field_for_field_in_document_order() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spec = owi_sample::SampleSpec {
        records: 6_000,
        workouts: 8,
        zip: true,
        ..owi_sample::SampleSpec::default()
    };
    let manifest =
        owi_sample::generate(&spec, &dir.path().join("s")).unwrap_or_else(|e| panic!("{e}"));
    let source = ExportSource::open(&manifest.xml_path).unwrap_or_else(|e| panic!("{e}"));
    let mut expected = Expected::default();
    read_export(&source, &mut expected, ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        expected.0.iter().any(|r| !r.beats.is_empty())
            && expected.0.iter().any(|r| !r.metadata.is_empty())
            && expected.0.iter().any(|r| r.value_text.is_some()),
        "the sample has beats, metadata and category values to carry"
    );

    let db = dir.path().join("owi.sqlite");
    let mut store = Store::open(&db).unwrap_or_else(|e| panic!("{e}"));
    // Twice: the second export's record ids continue after the first's.
    let first = store
        .ingest(&manifest.xml_path, Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let zip = manifest
        .zip_path
        .clone()
        .unwrap_or_else(|| panic!("no zip"));
    let second = store
        .ingest(&zip, Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(first.export_id, second.export_id);
    let rows = stored(&db, second.export_id);
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids run on in document order"
    );
    let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    assert_eq!(rows.len(), expected.0.len());
    for (i, (got, want)) in rows.iter().zip(&expected.0).enumerate() {
        assert_eq!(got, want, "record {i}");
    }
}

#[test]
fn a_store_from_before_blocks_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("owi.sqlite");
    drop(Store::open(&db).unwrap_or_else(|e| panic!("{e}")));
    let legacy: Vec<StoredRecord> = (1..=2_500)
        .map(|i| StoredRecord {
            core: RecordCore {
                id: i,
                start: 1_600_000_000 + (i * 37) % 1000,
                duration: i % 7,
                created_delay: (i % 3 == 0).then_some(-i),
                tz: -420,
                value: (i % 2 == 0).then_some(i as f64 / 3.0),
                value_id: (i % 2 == 1).then_some(i % 5),
            },
            metadata: (i % 4 == 0).then(|| format!("3\u{1F}{i}\u{1E}")),
            beats: if i % 100 == 0 {
                vec![(i * 1000, 60.5), (i * 1000 + 900, 61.0)]
            } else {
                Vec::new()
            },
        })
        .collect();
    {
        // The tables as version 7 had them, filled, and the version put back.
        let conn = rusqlite::Connection::open(&db).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(
            "CREATE TABLE records (id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL, start INTEGER NOT NULL,
                 duration INTEGER NOT NULL, created_delay INTEGER, tz INTEGER NOT NULL, value REAL,
                 value_id INTEGER, metadata TEXT);
             CREATE TABLE record_beats (record_id INTEGER NOT NULL, at_ms INTEGER NOT NULL, bpm REAL NOT NULL);
             PRAGMA user_version = 7;",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for r in &legacy {
            conn.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    r.core.id,
                    r.core.id % 3,
                    r.core.start,
                    r.core.duration,
                    r.core.created_delay,
                    r.core.tz,
                    r.core.value,
                    r.core.value_id,
                    r.metadata
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
            for (at, bpm) in &r.beats {
                conn.execute(
                    "INSERT INTO record_beats VALUES (?, ?, ?)",
                    params![r.core.id, at, bpm],
                )
                .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    drop(Store::open(&db).unwrap_or_else(|e| panic!("{e}")));
    let conn = rusqlite::Connection::open(&db).unwrap_or_else(|e| panic!("{e}"));
    let gone: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('records', 'record_beats')",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gone, 0, "the old tables are dropped");
    let mut stmt = conn
        .prepare("SELECT series_id, count, min_start, max_start, max_id, data FROM record_blocks")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut packed: Vec<StoredRecord> = Vec::new();
    let blocks: Vec<(i64, i64, i64, i64, i64, Vec<u8>)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{e}"));
    for (series, count, min, max, max_id, blob) in blocks {
        let records = decode(&blob).unwrap_or_else(|| panic!("a bad block"));
        assert_eq!(records.len() as i64, count);
        assert!(records.iter().all(|r| r.core.id % 3 == series));
        assert_eq!(records.iter().map(|r| r.core.start).min(), Some(min));
        assert_eq!(records.iter().map(|r| r.core.start).max(), Some(max));
        assert_eq!(records.iter().map(|r| r.core.id).max(), Some(max_id));
        packed.extend(records);
    }
    packed.sort_by_key(|r| r.core.id);
    assert_eq!(packed, legacy);
}
