//! Where the app's summary shows what the tests and the bench read.

/// The summary's "Records" figure.
pub const RECORDS: &str = "section[aria-label='At a glance'] .fact:nth-child(2) strong";
/// The "Covers" label: "Covers (so far)" while the export is being read.
pub const COVERS_LABEL: &str = "section[aria-label='At a glance'] .fact:nth-child(1) .label";

/// The number in a figure as shown ("1,204,332" → 1204332; 0 if none).
pub fn figure(text: &str) -> u64 {
    text.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}
