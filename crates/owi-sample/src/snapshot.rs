//! Earlier snapshots of an export this crate wrote: the same header and
//! end, and only some of its top-level elements — what the phone held
//! before, or held without some late-synced samples. Tests of sending only
//! what is new make them from a later export.
//!
//! It relies on how this crate writes: one top-level element starts on
//! each line that begins with exactly one space and `<` (children are
//! indented further, closing tags are ` </…>`).

/// An export cut at its top-level elements.
#[derive(Debug, Clone)]
pub struct Snapshot {
    head: String,
    elements: Vec<String>,
    tail: String,
}

impl Snapshot {
    /// Cuts an export written by this crate. `None` when it is not one.
    pub fn of(xml: &str) -> Option<Snapshot> {
        let mut head = String::new();
        let mut elements: Vec<String> = Vec::new();
        let mut tail = String::new();
        for line in xml.split_inclusive('\n') {
            let top = line.starts_with(" <") && !line.starts_with(" </");
            if line.starts_with("</HealthData") {
                tail.push_str(line);
            } else if top && !line.starts_with(" <ExportDate") && !line.starts_with(" <Me ") {
                elements.push(line.to_string());
            } else if let Some(current) = elements.last_mut() {
                current.push_str(line);
            } else {
                head.push_str(line);
            }
        }
        (!elements.is_empty() && !tail.is_empty()).then_some(Snapshot {
            head,
            elements,
            tail,
        })
    }

    /// The top-level elements after `ExportDate` and `Me`, as written.
    pub fn elements(&self) -> &[String] {
        &self.elements
    }

    /// The export with only the elements `keep` accepts (by index and text).
    pub fn with(&self, keep: impl Fn(usize, &str) -> bool) -> String {
        let mut xml = self.head.clone();
        for (i, element) in self.elements.iter().enumerate() {
            if keep(i, element) {
                xml.push_str(element);
            }
        }
        xml.push_str(&self.tail);
        xml
    }
}

/// The local day an element starts on, as written (`startDate`, or a
/// summary's `dateComponents`): `YYYY-MM-DD`.
pub fn day_of(element: &str) -> Option<&str> {
    ["startDate=\"", "dateComponents=\""]
        .iter()
        .find_map(|attr| {
            element
                .split_once(attr)
                .and_then(|(_, rest)| rest.get(..10))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SampleSpec, generate};

    #[test]
    fn a_snapshot_of_everything_is_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SampleSpec {
            records: 300,
            workouts: 3,
            ..SampleSpec::default()
        };
        let m = generate(&spec, dir.path()).unwrap();
        let xml = std::fs::read_to_string(&m.xml_path).unwrap();
        let cut = Snapshot::of(&xml).unwrap();
        assert_eq!(cut.with(|_, _| true), xml);
        let records = cut
            .elements()
            .iter()
            .filter(|e| e.starts_with(" <Record"))
            .count();
        assert_eq!(records as u64, m.records);
        assert!(cut.elements().iter().all(|e| day_of(e).is_some()));
        let none = cut.with(|_, _| false);
        assert!(none.contains("<ExportDate") && none.ends_with("</HealthData>\n"));
    }
}
