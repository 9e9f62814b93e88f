//! The writer's record blocks: each record appended to its series' open
//! block, a block written once full, every open block once they hold too
//! much together and at the end.

use rusqlite::params;

use super::{Inserts, RecordRow};
use crate::record_block::{BLOCK_RECORDS, BlockWriter, RecordRef};

/// Bytes of record blocks held open across series before all are written:
/// bounds memory when an export interleaves many series.
const OPEN_BLOCK_BYTES: usize = 4 << 20;

/// A finished block, ready for its row.
struct BlockRow {
    count: i64,
    min_start: i64,
    max_start: i64,
    max_id: i64,
    data: Vec<u8>,
}

impl Inserts<'_> {
    /// Appends a record to its series' open block, writing the block once
    /// full (or every open block, once they hold too much together).
    pub(super) fn add_record(
        &mut self,
        r: &RecordRow,
        metadata: Option<&str>,
        beats: &[(i64, f64)],
    ) -> rusqlite::Result<()> {
        let block = self.open.entry(r.series_id).or_default();
        let before = block.len();
        block.push(RecordRef {
            core: r.core,
            metadata,
            beats,
        });
        self.open_bytes += block.len() - before;
        if block.count >= BLOCK_RECORDS {
            let blob_len = block.len();
            let row = Self::block_row(block);
            self.open_bytes -= blob_len;
            self.insert_block(r.series_id, row)?;
        } else if self.open_bytes > OPEN_BLOCK_BYTES {
            self.flush_blocks()?;
        }
        Ok(())
    }

    /// Writes every open block.
    pub(super) fn flush_blocks(&mut self) -> rusqlite::Result<()> {
        let mut rows: Vec<(i64, BlockRow)> = self
            .open
            .iter_mut()
            .filter(|(_, b)| !b.is_empty())
            .map(|(&series, b)| (series, Self::block_row(b)))
            .collect();
        // Written in series order: the blocks of a series end up together.
        rows.sort_unstable_by_key(|(series, row)| (*series, row.min_start));
        for (series, row) in rows {
            self.insert_block(series, row)?;
        }
        self.open_bytes = 0;
        Ok(())
    }

    fn block_row(block: &mut BlockWriter) -> BlockRow {
        BlockRow {
            count: block.count as i64,
            min_start: block.min_start,
            max_start: block.max_start,
            max_id: block.max_id,
            data: block.take(),
        }
    }

    fn insert_block(&mut self, series: i64, row: BlockRow) -> rusqlite::Result<()> {
        self.blocks.execute(params![
            series,
            row.count,
            row.min_start,
            row.max_start,
            row.max_id,
            row.data
        ])?;
        Ok(())
    }
}
