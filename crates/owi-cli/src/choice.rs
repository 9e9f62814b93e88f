//! What `owi upload` lets leave the machine (`--only`, `--except`,
//! `--from`, `--to`, `--include-me`, `--all`), and what `--dry-run` prints.

use owi_client::{Checked, Plan};
use owi_export::names::display_name;
use owi_export::{Share, resolve_kinds};

use crate::out::{column_width, out};
use crate::upload::count;

#[derive(Debug, Clone, clap::Args)]
pub struct ShareArgs {
    /// Send everything the filters let out, not only what this user's
    /// server does not have from earlier uploads.
    #[arg(long)]
    pub all: bool,
    /// Send only these kinds of data, comma-separated: HealthKit types
    /// (HeartRate, HKQuantityTypeIdentifierStepCount), categories (heart,
    /// sleep, activity, body, vitals, nutrition, …), workouts, or clinical
    /// (clinical records, audiograms and vision prescriptions go only when
    /// named here).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub only: Vec<String>,
    /// Never send these kinds of data (same names as --only).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub except: Vec<String>,
    /// Send only items that start on this local day or later (YYYY-MM-DD,
    /// the day written in each item's startDate).
    #[arg(long, value_name = "DATE", value_parser = day)]
    pub from: Option<i64>,
    /// Send only items that start on this local day or earlier.
    #[arg(long, value_name = "DATE", value_parser = day)]
    pub to: Option<i64>,
    /// Send the profile too: date of birth, biological sex, blood type,
    /// skin type (left out by default).
    #[arg(long)]
    pub include_me: bool,
}

fn day(s: &str) -> Result<i64, String> {
    owi_export::time::parse_date(s.trim())
        .ok_or_else(|| format!("{s:?} is not a day: write it as YYYY-MM-DD, e.g. 2024-03-31"))
}

impl ShareArgs {
    pub fn share(&self) -> anyhow::Result<Share> {
        let kinds = |names: &[String]| resolve_kinds(names.iter().map(String::as_str));
        let only = if self.only.is_empty() {
            None
        } else {
            Some(kinds(&self.only)?)
        };
        if let (Some(from), Some(to)) = (self.from, self.to) {
            anyhow::ensure!(
                from <= to,
                "--from {} is after --to {}: nothing would go",
                owi_export::time::format_day(from),
                owi_export::time::format_day(to)
            );
        }
        Ok(Share {
            only,
            except: kinds(&self.except)?,
            from: self.from,
            to: self.to,
            include_me: self.include_me,
        })
    }
}

/// Lines about what stays home, for the check's step and the dry run.
pub fn left_out_lines(c: &Checked) -> Vec<String> {
    let out = &c.left_out;
    let mut lines = Vec::new();
    if let Some(ledger) = c.ledger_items {
        lines.push(format!(
            "{} items already on the server from earlier uploads ({} in this user's ledger); --all sends them again",
            count(out.sent_before),
            count(ledger)
        ));
    }
    if out.gone > 0 {
        lines.push(format!(
            "{} items sent before are no longer in this export; the server keeps them",
            count(out.gone)
        ));
    }
    if !out.kinds.is_empty() {
        let mut kinds: Vec<(&String, &u64)> = out.kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = kinds
            .iter()
            .take(6)
            .map(|(k, n)| format!("{} ({})", display_name(k), count(**n)))
            .collect();
        let more = kinds.len().saturating_sub(6);
        let more = if more > 0 {
            format!(" and {more} more kinds")
        } else {
            String::new()
        };
        lines.push(format!(
            "{} items of kinds not shared: {}{more}",
            count(out.by_kind()),
            shown.join(", ")
        ));
    }
    if out.dates > 0 {
        lines.push(format!(
            "{} items outside the days shared",
            count(out.dates)
        ));
    }
    if out.me {
        lines.push(
            "the profile (date of birth, sex, blood and skin type); --include-me sends it".into(),
        );
    }
    if out.unreadable > 0 {
        lines.push(format!(
            "{} elements that could not be read or are unknown",
            count(out.unreadable)
        ));
    }
    lines
}

/// What `--dry-run` prints for people.
pub fn print_plan(plan: &Plan, user: &str) -> anyhow::Result<()> {
    let c = &plan.checked;
    let scope = if c.delta() {
        "new for this user"
    } else {
        "everything"
    };
    let filters = if c.filters.is_empty() {
        String::new()
    } else {
        format!(", {}", c.filters)
    };
    if c.items_sent == 0 {
        out!("nothing would go to user {user} ({scope}{filters})")?;
    } else {
        let method = format!("{:?}", plan.method).to_lowercase();
        let pieces = if plan.pieces > 1 {
            format!(" in {} pieces", plan.pieces)
        } else {
            String::new()
        };
        out!(
            "would send {} items, {} workouts, {} of XML to user {user} ({scope}{filters}) by {method}{pieces}: {}",
            count(c.items_sent),
            count(c.workouts),
            indicatif::DecimalBytes(c.xml_bytes),
            plan.why
        )?;
    }
    let rows: Vec<(String, u64, &str)> = c
        .imported
        .iter()
        .map(|(k, n)| (display_name(k), *n, "stored"))
        .chain(
            c.ignored
                .iter()
                .map(|(k, n)| (display_name(k), *n, "passed over by the server")),
        )
        .collect();
    let width = column_width("", rows.iter().map(|(k, ..)| k.as_str()));
    for (kind, n, fate) in &rows {
        out!("  {kind:<width$}  {:>10}  {fate}", count(*n))?;
    }
    let left = left_out_lines(c);
    if !left.is_empty() {
        out!("left out:")?;
        for line in left {
            out!("  {line}")?;
        }
    }
    if let Some(warning) = &plan.server_forgot {
        out!("warning: {warning}")?;
    }
    Ok(())
}
