use std::path::PathBuf;

use crate::out::out;
use owi_sample::{Dtd, SampleSpec, generate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder to write into (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Number of top-level records.
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Number of workouts.
    #[arg(long, default_value_t = 20)]
    workouts: u64,
    /// Same seed, same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Locale of the export (sets the XML's file name, e.g. ru_RU → экспорт.xml).
    #[arg(long, default_value = "en_US")]
    locale: String,
    /// Also write export.zip, as the Health app does.
    #[arg(long)]
    zip: bool,
    /// How many records get an unparseable value (nan, empty, junk).
    #[arg(long, default_value_t = 0)]
    junk: u64,
    /// Start it with iOS 16's malformed DTD, which strict parsers refuse.
    #[arg(long)]
    ios16_dtd: bool,
    /// Print the manifest (what was written) as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = SampleSpec {
        records: args.records,
        workouts: args.workouts,
        seed: args.seed,
        locale: args.locale,
        zip: args.zip,
        junk_values: args.junk,
        dtd: if args.ios16_dtd {
            Dtd::Ios16
        } else {
            Dtd::Version14
        },
    };
    let manifest = generate(&spec, &args.out)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&manifest)?)?;
    } else {
        out!(
            "wrote {} ({:.1} MB, {} records, {} workouts)",
            manifest.xml_path.display(),
            manifest.xml_bytes as f64 / 1e6,
            manifest.records,
            manifest.workouts
        )?;
        if let Some(zip) = &manifest.zip_path {
            out!("wrote {}", zip.display())?;
        }
    }
    Ok(())
}
