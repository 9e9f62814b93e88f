//! The upload's check that the ingest keeps (`kept_check.rs`), on a thread
//! of its own: each batch the writer has stored comes here next, and is
//! replayed to the check in document order. The reader's thread, which
//! sets the pace of the whole load, no longer does the check's work.
//!
//! Records come back from their compact rows with what the check reads of
//! them (`owi_export::Checking` lists it): type, source, device, unit,
//! value and instants. Their metadata, heartbeats and byte offsets, which
//! it does not read, stay behind. The `kept_check` tests hold the outcome
//! equal to a read of the export, over many batches.

use crossbeam_channel::{Receiver, Sender};
use owi_export::time::Timestamp;
use owi_export::{Record, Value, Visitor};
use rustc_hash::FxHashMap;

use super::writer::{Batch, RecordRow, SeriesKey, Stored};

/// What the loader handed over, in the order it came: which of the batch's
/// lists the next item is taken from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Handover {
    Record,
    Correlation,
    Workout,
    Summary,
    Element,
    /// A top-level element ended; its `start..end` is the batch's next
    /// extent.
    Extent(TopLevel),
}

/// A top-level element's name, as one byte: the names the reader knows,
/// and the rest, whose names the check does not read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TopLevel {
    ExportDate,
    Me,
    Record,
    Correlation,
    Workout,
    ActivitySummary,
    ClinicalRecord,
    Audiogram,
    VisionPrescription,
    Other,
}

impl TopLevel {
    pub(crate) fn of(name: &[u8]) -> TopLevel {
        match name {
            b"ExportDate" => TopLevel::ExportDate,
            b"Me" => TopLevel::Me,
            b"Record" => TopLevel::Record,
            b"Correlation" => TopLevel::Correlation,
            b"Workout" => TopLevel::Workout,
            b"ActivitySummary" => TopLevel::ActivitySummary,
            b"ClinicalRecord" => TopLevel::ClinicalRecord,
            b"Audiogram" => TopLevel::Audiogram,
            b"VisionPrescription" => TopLevel::VisionPrescription,
            _ => TopLevel::Other,
        }
    }

    fn name(self) -> &'static [u8] {
        match self {
            TopLevel::ExportDate => b"ExportDate",
            TopLevel::Me => b"Me",
            TopLevel::Record => b"Record",
            TopLevel::Correlation => b"Correlation",
            TopLevel::Workout => b"Workout",
            TopLevel::ActivitySummary => b"ActivitySummary",
            TopLevel::ClinicalRecord => b"ClinicalRecord",
            TopLevel::Audiogram => b"Audiogram",
            TopLevel::VisionPrescription => b"VisionPrescription",
            TopLevel::Other => b"",
        }
    }
}

/// Turns batches back into the visitor calls the reader made.
pub(crate) struct Replay {
    /// Interned strings by id: those stored before this ingest and those
    /// its batches add.
    names: FxHashMap<i64, Box<str>>,
    series: FxHashMap<i64, SeriesKey>,
    /// A row named a string or series never handed over: the outcome
    /// cannot be trusted and is not kept.
    broken: bool,
    /// The writer said it stored every batch.
    ended: bool,
}

impl Replay {
    pub(crate) fn new(names: FxHashMap<i64, Box<str>>) -> Replay {
        Replay {
            names,
            series: FxHashMap::default(),
            broken: false,
            ended: false,
        }
    }

    /// Whether every batch replayed whole.
    /// Every batch the export made was replayed, each whole.
    pub(crate) fn intact(&self) -> bool {
        !self.broken && self.ended
    }

    /// Replays every batch `written` brings, then hands it back to the
    /// reader through `spare`.
    pub(crate) fn run(
        &mut self,
        written: Receiver<Stored>,
        spare: Sender<Box<Batch>>,
        visitor: &mut dyn Visitor,
    ) {
        for stored in written {
            let mut batch = match stored {
                Stored::Batch(batch) => batch,
                Stored::End => {
                    self.ended = true;
                    continue;
                }
            };
            self.batch(&batch, visitor);
            batch.clear();
            // The reader makes a new one when none comes back.
            let _ = spare.try_send(batch);
        }
    }

    fn batch(&mut self, b: &Batch, visitor: &mut dyn Visitor) {
        for (id, text) in &b.strings {
            self.names.insert(*id, text.clone());
        }
        for row in &b.series {
            self.series.insert(row.id, row.key);
        }
        let mut records = b.records.iter();
        let mut correlations = b.correlations.iter();
        let mut workouts = b.workouts.iter();
        let mut summaries = b.summaries.iter();
        let mut elements = b.elements.iter();
        let mut extents = b.extents.iter();
        for step in &b.steps {
            let handed = match step {
                Handover::Record => records.next().map(|row| self.record(row, visitor)),
                Handover::Correlation => correlations.next().map(|(_, _, c)| {
                    let _ = visitor.correlation(c);
                }),
                Handover::Workout => workouts.next().map(|(_, w)| {
                    let _ = visitor.workout(w);
                }),
                Handover::Summary => summaries.next().map(|s| {
                    let _ = visitor.activity_summary(s);
                }),
                Handover::Element => elements.next().map(|e| {
                    let _ = visitor.element(e);
                }),
                Handover::Extent(top) => extents.next().map(|&(start, end)| {
                    let _ = visitor.extent(top.name(), start, end);
                }),
            };
            self.broken |= handed.is_none();
        }
    }

    fn record(&mut self, row: &RecordRow, visitor: &mut dyn Visitor) {
        let Some(&(kind, source, version, device, unit)) = self.series.get(&row.series_id) else {
            self.broken = true;
            return;
        };
        let name = |id: i64| self.names.get(&id).map(AsRef::as_ref);
        let (Some(kind), Some(source_name)) = (name(kind), name(source)) else {
            self.broken = true;
            return;
        };
        let optional = |id: Option<i64>| match id {
            None => Ok(None),
            Some(id) => name(id).map(Some).ok_or(()),
        };
        let (Ok(source_version), Ok(device), Ok(unit), Ok(text)) = (
            optional(version),
            optional(device),
            optional(unit),
            optional(row.core.value_id),
        ) else {
            self.broken = true;
            return;
        };
        let core = &row.core;
        let at = |utc: i64| Timestamp {
            utc,
            offset_min: core.tz,
        };
        let end = core.start + core.duration;
        let value = match (core.value, text) {
            (Some(number), _) => Value::Number(number),
            (None, Some(text)) => Value::Text(text),
            (None, None) => Value::None,
        };
        let record = Record {
            kind,
            source_name,
            source_version,
            device,
            unit,
            created: core.created_delay.map(|delay| at(end + delay)),
            start: at(core.start),
            end: at(end),
            value,
            metadata: &[],
            beats: &[],
            offset: 0,
        };
        let _ = visitor.record(&record);
    }
}
