//! The yardstick `owi inspect` is held to: the loader a competent author
//! would write in an afternoon. One thread, quick-xml events, every
//! `Record`'s type, source, unit, start, end and value stored as text in one
//! table through a prepared INSERT in one transaction, with the usual
//! bulk-load pragmas. It keeps nothing else (no metadata, beats, workouts,
//! routes, summaries, skips), checks nothing and builds no index.

use std::io::{BufRead, BufReader};
use std::path::Path;

use quick_xml::events::Event;

use super::Result;

/// Loads every `Record` of `input` (an export's XML, or the zip holding it,
/// read through the `zip` crate) into a fresh database at `db`. Returns the
/// number of records stored.
pub fn load(input: &Path, db: &Path) -> Result<u64> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let file = std::fs::File::open(input)?;
    if input.extension().is_some_and(|e| e == "zip") {
        let mut archive = zip::ZipArchive::new(BufReader::new(file))?;
        let name = archive
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.into_owned()))
            .find(|n| n.ends_with("/export.xml") || n == "export.xml")
            .ok_or("no export.xml in the zip")?;
        let entry = archive.by_name(&name)?;
        store(BufReader::with_capacity(1 << 20, entry), db)
    } else {
        store(BufReader::with_capacity(1 << 20, file), db)
    }
}

fn store<R: BufRead>(xml: R, db: &Path) -> Result<u64> {
    let mut conn = rusqlite::Connection::open(db)?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;
         CREATE TABLE records (type TEXT, source TEXT, unit TEXT, start TEXT, end TEXT, value TEXT);",
    )?;
    let tx = conn.transaction()?;
    let mut stored = 0u64;
    {
        let mut insert = tx.prepare("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)")?;
        let mut reader = quick_xml::Reader::from_reader(xml);
        let mut buf = Vec::with_capacity(4096);
        loop {
            match reader.read_event_into(&mut buf)? {
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"Record" => {
                    let mut row: [Option<std::borrow::Cow<'_, str>>; 6] = Default::default();
                    for attr in e.attributes().with_checks(false) {
                        let attr = attr?;
                        let column = match attr.key.as_ref() {
                            b"type" => 0,
                            b"sourceName" => 1,
                            b"unit" => 2,
                            b"startDate" => 3,
                            b"endDate" => 4,
                            b"value" => 5,
                            _ => continue,
                        };
                        row[column] =
                            Some(attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)?);
                    }
                    let [kind, source, unit, start, end, value] = &row;
                    insert.execute(rusqlite::params![kind, source, unit, start, end, value])?;
                    stored += 1;
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
    }
    tx.commit()?;
    Ok(stored)
}
