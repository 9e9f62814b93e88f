//! What an Open Wearables server will and will not import from an export
//! already in the store, without reading the export again.
//!
//! The rule is the server's own, [`owi_export::value_for_server`]: numbers
//! and sleep stages are stored, other category values are passed over, as
//! are correlations (their records come again on their own), activity
//! rings, clinical documents and whatever the reader could not read.
//! [`owi_export::preflight()`] applies the same rule while reading the file;
//! this answers from the store in milliseconds.

use std::collections::BTreeMap;

use owi_export::Value;
use serde::Serialize;

use crate::Store;
use crate::error::Result;
use crate::names::{
    Category, CategoryGroup, category_of, display_name, group_by_category, skip_reason_text,
};

/// A type, whether its records carry a number, their category value's
/// text, and how many there are.
type CategoryCount = (String, bool, Option<String>, u64);

/// Records of one type the server stores.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ImportedType {
    pub kind: String,
    pub name: String,
    pub category: Category,
    pub count: u64,
}

/// Something the server passes over, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PassedOver {
    /// A record type or an element name.
    pub kind: String,
    pub name: String,
    pub count: u64,
    /// One sentence for people.
    pub reason: String,
}

/// The server's view of one export.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ServerPreview {
    pub export_id: i64,
    /// Busiest first.
    pub imported: Vec<ImportedType>,
    /// The imported types grouped as the Health app groups them.
    pub categories: Vec<CategoryGroup>,
    pub passed_over: Vec<PassedOver>,
    pub records_imported: u64,
    pub records_passed_over: u64,
    /// Workouts it keeps: one per source, start and end.
    pub workouts: u64,
    /// Records nested in correlations it imports as well (stored once:
    /// they repeat top-level ones, but counted again).
    pub nested_records: u64,
    /// What the server will report as processed: records, nested ones
    /// again, and workouts.
    pub items_counted: u64,
}

const CATEGORY_VALUES: &str =
    "the server stores numbers and sleep stages; these records hold other values";
const NO_VALUE: &str = "these records have no value to store";
const NO_SERIES: &str = "the server keeps no series of this type";

impl Store {
    /// What the server will make of export `export_id`.
    pub fn server_preview(&self, export_id: i64) -> Result<ServerPreview> {
        let summary = self.summary(export_id)?;
        let mut imported: BTreeMap<String, u64> = BTreeMap::new();
        let mut passed: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        // Quantities always carry a number (the reader leaves out those
        // whose value it cannot read): the stored count is the answer.
        for t in &summary.record_types {
            if t.kind.starts_with("HKQuantityTypeIdentifier") && t.count > 0 {
                if owi_export::server_stores(&t.kind) {
                    imported.insert(t.kind.clone(), t.count);
                } else {
                    passed.insert((t.kind.clone(), NO_SERIES), t.count);
                }
            }
        }
        // Other types are decided value by value; they are few.
        let rows = self.category_values(export_id)?;
        for (kind, numeric, text, count) in rows {
            let value = match (&text, numeric) {
                (_, true) => Value::Number(0.0),
                (Some(t), false) => Value::Text(t),
                (None, false) => Value::None,
            };
            if owi_export::value_for_server(&kind, value).is_some() {
                *imported.entry(kind).or_default() += count;
            } else {
                let reason = if matches!(value, Value::None) {
                    NO_VALUE
                } else {
                    CATEGORY_VALUES
                };
                *passed.entry((kind, reason)).or_default() += count;
            }
        }
        let records_imported: u64 = imported.values().sum();
        let nested_records = self.nested_for_server(export_id)?;
        let records_passed_over = passed.values().sum();

        let mut imported: Vec<ImportedType> = imported
            .into_iter()
            .map(|(kind, count)| ImportedType {
                name: display_name(&kind),
                category: category_of(&kind),
                kind,
                count,
            })
            .collect();
        imported.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
        let categories = group_by_category(imported.iter().map(|t| (t.kind.as_str(), t.count)));

        let mut passed_over: Vec<PassedOver> = passed
            .into_iter()
            .map(|((kind, reason), count)| PassedOver {
                name: display_name(&kind),
                kind,
                count,
                reason: reason.to_string(),
            })
            .collect();
        let mut element = |kind: &str, name: &str, count: u64, reason: &str| {
            if count > 0 {
                passed_over.push(PassedOver {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    count,
                    reason: reason.to_string(),
                });
            }
        };
        element(
            "Correlation",
            "Correlations (blood pressure, food)",
            summary.correlations,
            "their records are in the export on their own too, and imported there",
        );
        element(
            "ActivitySummary",
            "Activity rings",
            summary.activity_summaries,
            "the server has no place for daily ring goals",
        );
        for (name, count) in &summary.elements {
            element(
                name,
                &display_name(name),
                *count,
                "clinical documents and prescriptions are not part of the import",
            );
        }
        for skip in &summary.skipped {
            element(
                &skip.element,
                &format!("{} with {}", skip.element, skip_reason_text(&skip.reason)),
                skip.count,
                "left out when reading the export: the server's reader skips them too",
            );
        }
        passed_over.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));

        let workouts: i64 = self.db(self.conn().query_row(
            "SELECT COUNT(*) FROM (SELECT DISTINCT source, start, end FROM workouts WHERE export_id = ?)",
            [export_id],
            |r| r.get(0),
        ))?;

        Ok(ServerPreview {
            export_id,
            imported,
            categories,
            passed_over,
            records_imported,
            records_passed_over,
            workouts: workouts as u64,
            nested_records,
            items_counted: records_imported + nested_records + workouts as u64,
        })
    }

    /// Records of the types other than quantities, counted by type,
    /// whether they carry a number, and their category value's text.
    fn category_values(&self, export_id: i64) -> Result<Vec<CategoryCount>> {
        let blocks = self.all(
            "SELECT t.text, b.data FROM series s
             JOIN strings t ON t.id = s.type_id
             JOIN record_blocks b ON b.series_id = s.id
             WHERE s.export_id = ?1 AND t.text NOT LIKE 'HKQuantityTypeIdentifier%'",
            [export_id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?;
        let mut counts: BTreeMap<(String, bool, Option<i64>), u64> = BTreeMap::new();
        for (kind, blob) in blocks {
            let mut by_value: BTreeMap<(bool, Option<i64>), u64> = BTreeMap::new();
            crate::record_block::for_each(&blob, |r| {
                let numeric = r.core.value.is_some();
                *by_value.entry((numeric, r.core.value_id)).or_default() += 1;
            });
            for ((numeric, value_id), n) in by_value {
                *counts.entry((kind.clone(), numeric, value_id)).or_default() += n;
            }
        }
        let mut rows: BTreeMap<(String, bool, Option<String>), u64> = BTreeMap::new();
        for ((kind, numeric, value_id), n) in counts {
            let text = match value_id {
                Some(id) => self
                    .all("SELECT text FROM strings WHERE id = ?1", [id], |r| {
                        r.get::<_, String>(0)
                    })?
                    .pop(),
                None => None,
            };
            *rows.entry((kind, numeric, text)).or_default() += n;
        }
        Ok(rows
            .into_iter()
            .map(|((kind, numeric, text), n)| (kind, numeric, text, n))
            .collect())
    }

    /// Records nested in the export's correlations that the server imports.
    fn nested_for_server(&self, export_id: i64) -> Result<u64> {
        #[derive(serde::Deserialize)]
        struct Nested {
            kind: String,
            value: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Kept {
            #[serde(default)]
            records: Vec<Nested>,
        }
        let kept = self.all(
            "SELECT json FROM correlations WHERE export_id = ?1",
            [export_id],
            |r| r.get::<_, String>(0),
        )?;
        Ok(kept
            .iter()
            .filter_map(|json| serde_json::from_str::<Kept>(json).ok())
            .flat_map(|c| c.records)
            .filter(|n| owi_export::nested_value_for_server(&n.kind, n.value.as_deref()).is_some())
            .count() as u64)
    }
}
