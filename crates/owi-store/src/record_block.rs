//! Records packed by series into blocks, one `record_blocks` row per up to
//! [`BLOCK_RECORDS`] records. A row per record cost the ingest most of its
//! time (B-tree inserts of 3 million rows, then sorting them into an index);
//! a block holds exactly what a `records` row and its `record_beats` held.
//!
//! Layout: a version byte (1), then per record a flags byte and, as LEB128
//! varints (zigzag for signed), the id and start as deltas from the
//! previous record's, the duration, the offset, then what the flags say is
//! there: the creation delay, the value (`f64`, 8 bytes LE, bit-exact), the
//! interned value id, the packed metadata (length, bytes), the beats (count,
//! then each `at_ms` as a delta and `bpm` as `f64`).

use rusqlite::Connection;

/// Records per block: small enough that a workout's heart rate decodes a
/// few kilobytes, large enough that rows stay few.
pub(crate) const BLOCK_RECORDS: usize = 1024;

const VERSION: u8 = 1;

/// The bits of a record's flags byte: which optional fields follow.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Has {
    Created = 1,
    Value = 2,
    ValueId = 4,
    Metadata = 8,
    Beats = 16,
}
const CREATED: u8 = Has::Created as u8;
const VALUE: u8 = Has::Value as u8;
const VALUE_ID: u8 = Has::ValueId as u8;
const METADATA: u8 = Has::Metadata as u8;
const BEATS: u8 = Has::Beats as u8;

/// The fixed-size fields of a record, as a `records` row held them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct RecordCore {
    pub(crate) id: i64,
    pub(crate) start: i64,
    /// end − start, seconds.
    pub(crate) duration: i64,
    /// creationDate − end, seconds.
    pub(crate) created_delay: Option<i64>,
    pub(crate) tz: i16,
    /// Quantities.
    pub(crate) value: Option<f64>,
    /// Category values, interned.
    pub(crate) value_id: Option<i64>,
}

/// One record as stored: a former `records` row and its beats.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct StoredRecord {
    pub(crate) core: RecordCore,
    /// `key_id U+001F value U+001E …`.
    pub(crate) metadata: Option<String>,
    /// `(at_ms, bpm)`.
    pub(crate) beats: Vec<(i64, f64)>,
}

impl StoredRecord {
    pub(crate) fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            core: self.core,
            metadata: self.metadata.as_deref(),
            beats: &self.beats,
        }
    }
}

/// A block being filled for one series.
#[derive(Debug, Default)]
pub(crate) struct BlockWriter {
    data: Vec<u8>,
    pub(crate) count: usize,
    prev_id: i64,
    prev_start: i64,
    pub(crate) min_start: i64,
    pub(crate) max_start: i64,
    pub(crate) max_id: i64,
}

/// A record to append, borrowed from wherever it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordRef<'a> {
    pub(crate) core: RecordCore,
    pub(crate) metadata: Option<&'a str>,
    pub(crate) beats: &'a [(i64, f64)],
}

impl BlockWriter {
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes held, for the writer's bound on memory.
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn push(&mut self, record: RecordRef<'_>) {
        let r = record.core;
        if self.count == 0 {
            self.data.clear();
            self.data.push(VERSION);
            self.min_start = r.start;
            self.max_start = r.start;
        }
        let flags = [
            (r.created_delay.is_some(), CREATED),
            (r.value.is_some(), VALUE),
            (r.value_id.is_some(), VALUE_ID),
            (record.metadata.is_some(), METADATA),
            (!record.beats.is_empty(), BEATS),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |f, (_, bit)| f | bit);
        let out = &mut self.data;
        out.push(flags);
        put_signed(out, r.id.wrapping_sub(self.prev_id));
        put_signed(out, r.start.wrapping_sub(self.prev_start));
        put_signed(out, r.duration);
        put_signed(out, i64::from(r.tz));
        if let Some(c) = r.created_delay {
            put_signed(out, c);
        }
        if let Some(v) = r.value {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = r.value_id {
            put_signed(out, v);
        }
        if let Some(m) = record.metadata {
            put_unsigned(out, m.len() as u64);
            out.extend_from_slice(m.as_bytes());
        }
        if !record.beats.is_empty() {
            put_unsigned(out, record.beats.len() as u64);
            let mut prev = r.start.wrapping_mul(1000);
            for &(at_ms, bpm) in record.beats {
                put_signed(out, at_ms.wrapping_sub(prev));
                out.extend_from_slice(&bpm.to_le_bytes());
                prev = at_ms;
            }
        }
        self.prev_id = r.id;
        self.prev_start = r.start;
        self.min_start = self.min_start.min(r.start);
        self.max_start = self.max_start.max(r.start);
        self.max_id = self.max_id.max(r.id);
        self.count += 1;
    }

    /// The finished blob; the writer is empty again afterwards.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let blob = std::mem::take(&mut self.data);
        *self = BlockWriter::default();
        blob
    }
}

/// Decodes a block; `None` if it is not in a layout this version knows.
#[cfg(test)]
pub(crate) fn decode(blob: &[u8]) -> Option<Vec<StoredRecord>> {
    let mut out = Vec::new();
    for_each(blob, |r| out.push(r))?;
    Some(out)
}

/// Calls `f` with each record of a block, in the order they were written.
pub(crate) fn for_each(blob: &[u8], mut f: impl FnMut(StoredRecord)) -> Option<()> {
    let (&version, mut rest) = blob.split_first()?;
    if version != VERSION {
        return None;
    }
    let (mut prev_id, mut prev_start) = (0i64, 0i64);
    while let Some((&flags, tail)) = rest.split_first() {
        rest = tail;
        let mut core = RecordCore {
            id: prev_id.wrapping_add(get_signed(&mut rest)?),
            start: prev_start.wrapping_add(get_signed(&mut rest)?),
            duration: get_signed(&mut rest)?,
            tz: i16::try_from(get_signed(&mut rest)?).ok()?,
            ..RecordCore::default()
        };
        if flags & CREATED != 0 {
            core.created_delay = Some(get_signed(&mut rest)?);
        }
        if flags & VALUE != 0 {
            core.value = Some(get_f64(&mut rest)?);
        }
        if flags & VALUE_ID != 0 {
            core.value_id = Some(get_signed(&mut rest)?);
        }
        let mut r = StoredRecord {
            core,
            ..StoredRecord::default()
        };
        if flags & METADATA != 0 {
            let len = usize::try_from(get_unsigned(&mut rest)?).ok()?;
            let bytes = rest.get(..len)?;
            rest = &rest[len..];
            r.metadata = Some(String::from_utf8(bytes.to_vec()).ok()?);
        }
        if flags & BEATS != 0 {
            let n = usize::try_from(get_unsigned(&mut rest)?).ok()?;
            let mut prev = core.start.wrapping_mul(1000);
            r.beats.reserve(n.min(rest.len()));
            for _ in 0..n {
                let at_ms = prev.wrapping_add(get_signed(&mut rest)?);
                r.beats.push((at_ms, get_f64(&mut rest)?));
                prev = at_ms;
            }
        }
        prev_id = core.id;
        prev_start = core.start;
        f(r);
    }
    Some(())
}

fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn get_unsigned(rest: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, tail) = rest.split_first()?;
        *rest = tail;
        v |= u64::from(b & 0x7F) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn get_signed(rest: &mut &[u8]) -> Option<i64> {
    let v = get_unsigned(rest)?;
    Some((v >> 1) as i64 ^ -((v & 1) as i64))
}

fn get_f64(rest: &mut &[u8]) -> Option<f64> {
    let bytes = rest.get(..8)?;
    *rest = &rest[8..];
    Some(f64::from_le_bytes(bytes.try_into().ok()?))
}

/// Migration 8: the rows of `records` and `record_beats` of stores written
/// before blocks, packed into `record_blocks` in the same transaction that
/// drops the old tables.
pub(crate) fn pack_legacy_rows(conn: &Connection) -> rusqlite::Result<()> {
    let legacy: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'records'",
        [],
        |r| r.get(0),
    )?;
    if !legacy {
        return Ok(());
    }
    let mut insert = conn.prepare(
        "INSERT INTO record_blocks (series_id, count, min_start, max_start, max_id, data)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    let mut flush = |series: i64, block: &mut BlockWriter| -> rusqlite::Result<()> {
        if block.is_empty() {
            return Ok(());
        }
        let (count, min, max, max_id) = (
            block.count as i64,
            block.min_start,
            block.max_start,
            block.max_id,
        );
        insert.execute(rusqlite::params![
            series,
            count,
            min,
            max,
            max_id,
            block.take()
        ])?;
        Ok(())
    };
    let mut beats_of =
        conn.prepare("SELECT at_ms, bpm FROM record_beats WHERE record_id = ? ORDER BY rowid")?;
    let mut rows = conn.prepare(
        "SELECT r.id, r.series_id, r.start, r.duration, r.created_delay, r.tz, r.value, r.value_id, r.metadata,
                EXISTS (SELECT 1 FROM record_beats b WHERE b.record_id = r.id)
         FROM records r ORDER BY r.series_id, r.id",
    )?;
    let mut query = rows.query([])?;
    let mut block = BlockWriter::default();
    let mut series = None;
    while let Some(row) = query.next()? {
        let id: i64 = row.get(0)?;
        let series_id: i64 = row.get(1)?;
        if series != Some(series_id) || block.count >= BLOCK_RECORDS {
            if let Some(s) = series {
                flush(s, &mut block)?;
            }
            series = Some(series_id);
        }
        let beats: Vec<(i64, f64)> = if row.get(9)? {
            beats_of
                .query_map([id], |b| Ok((b.get(0)?, b.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        } else {
            Vec::new()
        };
        let record = StoredRecord {
            core: RecordCore {
                id,
                start: row.get(2)?,
                duration: row.get(3)?,
                created_delay: row.get(4)?,
                tz: row.get(5)?,
                value: row.get(6)?,
                value_id: row.get(7)?,
            },
            metadata: row.get(8)?,
            beats,
        };
        block.push(record.as_ref());
    }
    if let Some(s) = series {
        flush(s, &mut block)?;
    }
    drop(query);
    conn.execute_batch(
        "DROP TABLE record_beats;
         DROP TABLE records;",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(core: RecordCore) -> StoredRecord {
        StoredRecord {
            core,
            ..StoredRecord::default()
        }
    }

    fn round_trip(records: &[StoredRecord]) -> Vec<StoredRecord> {
        let mut w = BlockWriter::default();
        for r in records {
            w.push(r.as_ref());
        }
        decode(&w.take()).unwrap_or_default()
    }

    #[test]
    fn every_field_survives_including_extremes() {
        let records = vec![
            StoredRecord {
                core: RecordCore {
                    id: 7,
                    start: 1_600_000_000,
                    duration: 3600,
                    created_delay: Some(-5),
                    tz: -420,
                    value: Some(72.6),
                    value_id: None,
                },
                metadata: Some("12\u{1F}0\u{1E}13\u{1F}Ünïcode ✓\u{1E}".into()),
                beats: vec![(1_600_000_000_500, 61.0), (1_599_999_999_000, 59.5)],
            },
            sample(RecordCore {
                id: 3,
                start: i64::MIN,
                value: Some(f64::MIN_POSITIVE),
                value_id: Some(i64::MAX),
                ..RecordCore::default()
            }),
            sample(RecordCore {
                id: i64::MAX,
                start: i64::MAX,
                value: Some(-0.0),
                duration: i64::MIN,
                tz: i16::MAX,
                created_delay: Some(i64::MAX),
                value_id: None,
            }),
            sample(RecordCore {
                id: 1,
                ..RecordCore::default()
            }),
        ];
        let back = round_trip(&records);
        assert_eq!(back.len(), records.len());
        for (a, b) in records.iter().zip(&back) {
            assert_eq!(
                a.core.value.map(f64::to_bits),
                b.core.value.map(f64::to_bits)
            );
            assert_eq!(a, b);
        }
    }

    #[test]
    fn a_damaged_block_is_refused_not_misread() {
        let mut w = BlockWriter::default();
        w.push(RecordRef {
            core: RecordCore {
                id: 1,
                start: 10,
                duration: 1,
                value: Some(1.5),
                ..RecordCore::default()
            },
            metadata: Some("k\u{1F}v\u{1E}"),
            beats: &[],
        });
        let blob = w.take();
        assert!(decode(&blob).is_some());
        assert_eq!(decode(&blob[..blob.len() - 1]), None);
        let mut other = blob.clone();
        other[0] = 9;
        assert_eq!(decode(&other), None);
    }
}
