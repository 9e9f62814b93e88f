use std::path::PathBuf;

use anyhow::{Context, bail};
use owi_export::time::parse_date;
use owi_store::names::display_name;
use owi_store::{Store, WorkoutFilter, WorkoutSort};

use crate::out::{column_width, out};
use crate::paths;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The local database (default: in the platform's data directory).
    #[arg(long, env = "OWI_DB")]
    db: Option<PathBuf>,
    /// Which export (default: the latest read).
    #[arg(long)]
    export: Option<i64>,
    /// Activity type: `Running` or `HKWorkoutActivityTypeRunning`.
    #[arg(long = "type")]
    activity_type: Option<String>,
    /// First local date to include, YYYY-MM-DD.
    #[arg(long)]
    from: Option<String>,
    /// Last local date to include, YYYY-MM-DD.
    #[arg(long)]
    to: Option<String>,
    /// Column to sort by.
    #[arg(long, value_enum, default_value = "start")]
    sort: SortArg,
    /// Sort in descending order.
    #[arg(long)]
    desc: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SortArg {
    Start,
    End,
    Type,
    Duration,
    Distance,
    Energy,
    HrAvg,
    HrMax,
    Source,
    Route,
}

impl From<SortArg> for WorkoutSort {
    fn from(s: SortArg) -> Self {
        match s {
            SortArg::Start => WorkoutSort::Start,
            SortArg::End => WorkoutSort::End,
            SortArg::Type => WorkoutSort::ActivityType,
            SortArg::Duration => WorkoutSort::Duration,
            SortArg::Distance => WorkoutSort::Distance,
            SortArg::Energy => WorkoutSort::Energy,
            SortArg::HrAvg => WorkoutSort::HeartRateAvg,
            SortArg::HrMax => WorkoutSort::HeartRateMax,
            SortArg::Source => WorkoutSort::Source,
            SortArg::Route => WorkoutSort::RoutePoints,
        }
    }
}

fn day(arg: &Option<String>, flag: &str) -> anyhow::Result<Option<i64>> {
    match arg {
        None => Ok(None),
        Some(s) => match parse_date(s) {
            Some(d) => Ok(Some(d)),
            None => bail!("--{flag} {s:?} is not a date like 2024-01-31"),
        },
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (from_day, to_day) = (day(&args.from, "from")?, day(&args.to, "to")?);
    let db = paths::database(args.db)?;
    let store = Store::open(&db)?;
    let export = match args.export {
        Some(id) => id,
        None => store.exports()?.first().map(|e| e.id).with_context(|| {
            format!(
                "{} holds no export yet; run `owi inspect PATH` first",
                db.display()
            )
        })?,
    };
    let filter = WorkoutFilter {
        activity_type: args.activity_type,
        from_day,
        to_day,
        sort: args.sort.into(),
        descending: args.desc,
    };
    let rows = store.workouts(export, &filter)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    // Names people read ("Traditional strength training"), in a column as
    // wide as the longest; `--json` keeps the identifiers.
    let names: Vec<String> = rows
        .iter()
        .map(|w| display_name(&w.activity_type))
        .collect();
    let width = column_width("type", names.iter().map(String::as_str));
    out!(
        "{:<width$} {:<25} {:<8} {:>9} {:>10} {:>9} {:>15} {:>6}  source",
        "type",
        "start",
        "end",
        "duration",
        "distance",
        "energy",
        "hr min/avg/max",
        "route"
    )?;
    let opt = |v: Option<f64>, scale: f64, unit: &str| {
        v.map(|v| format!("{:.1} {unit}", v * scale))
            .unwrap_or_else(|| "-".into())
    };
    let hr = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
    for (w, name) in rows.iter().zip(&names) {
        let minutes = w.duration_s / 60.0;
        out!(
            "{name:<width$} {:<25} {:<8} {:>7.1} m {:>10} {:>9} {:>15} {:>6}  {}",
            w.start,
            w.end.get(11..19).unwrap_or(&w.end),
            minutes,
            opt(w.distance_m, 0.001, "km"),
            opt(w.energy_kcal, 1.0, "kcal"),
            format!("{}/{}/{}", hr(w.hr_min), hr(w.hr_avg), hr(w.hr_max)),
            w.route_points,
            w.source
        )?;
    }
    out!("{} workouts", rows.len())?;
    Ok(())
}
