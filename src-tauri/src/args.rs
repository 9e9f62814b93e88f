//! The command line: `owi-app [--data-dir DIR] [EXPORT]`. The export is
//! what "Open with…" passes; `--data-dir` keeps test and demo runs away
//! from a person's real data.

use std::ffi::OsString;
use std::path::PathBuf;

/// What the app was started with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub data_dir: Option<PathBuf>,
    /// An export to open at start.
    pub export: Option<PathBuf>,
}

impl Args {
    /// Reads the arguments after the program name. Unknown flags are
    /// ignored (desktop launchers add their own); the first other argument
    /// is the export.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Args {
        let mut parsed = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy();
            if text == "--data-dir" {
                parsed.data_dir = args.next().map(|dir| absolute(PathBuf::from(dir)));
            } else if let Some(dir) = text.strip_prefix("--data-dir=") {
                parsed.data_dir = Some(absolute(PathBuf::from(dir)));
            } else if text.starts_with('-') {
                tracing::debug!(flag = %text, "ignoring an unknown flag");
            } else if parsed.export.is_none() {
                // A file manager may hand over a `file://` URI, escaped
                // (`My%20Export.zip`).
                parsed.export = Some(
                    url::Url::parse(&text)
                        .ok()
                        .filter(|u| u.scheme() == "file")
                        .and_then(|u| u.to_file_path().ok())
                        .unwrap_or_else(|| PathBuf::from(arg)),
                );
            }
        }
        parsed
    }
}

/// The data folder made absolute: it names the app's single instance and
/// holds the window's state, whichever folder the app was started from.
fn absolute(dir: PathBuf) -> PathBuf {
    std::path::absolute(&dir).unwrap_or(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn reads_the_export_and_the_data_dir() {
        assert_eq!(parse(&[]), Args::default());
        assert_eq!(
            parse(&["--data-dir", "/tmp/d", "/home/a/export.zip"]),
            Args {
                data_dir: Some("/tmp/d".into()),
                export: Some("/home/a/export.zip".into()),
            }
        );
        assert_eq!(
            parse(&[
                "--data-dir=/tmp/d",
                "--psn_0_1",
                "file:///x/export.xml",
                "more"
            ]),
            Args {
                data_dir: Some("/tmp/d".into()),
                export: Some("/x/export.xml".into()),
            }
        );
        assert_eq!(
            parse(&["file:///home/ada/My%20Export%20%C3%A9t%C3%A9.zip"]).export,
            Some("/home/ada/My Export été.zip".into())
        );
        // A plain path that merely looks like a URI is kept as it is.
        assert_eq!(
            parse(&["/home/ada/50%25 done.zip"]).export,
            Some("/home/ada/50%25 done.zip".into())
        );
    }

    #[test]
    fn a_relative_data_dir_is_made_absolute() {
        let dir = parse(&["--data-dir", "demo"]).data_dir.unwrap();
        assert!(dir.is_absolute(), "{}", dir.display());
        assert!(dir.ends_with("demo"));
        assert_eq!(parse(&["--data-dir=demo"]).data_dir, Some(dir));
    }
}
