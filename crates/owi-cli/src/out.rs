//! Standard output that a closed pipe ends quietly: `owi workouts | head`
//! stops once `head` has read enough, as other Unix tools do, instead of
//! panicking on the write that finds the pipe gone.

use std::fmt;
use std::io::{self, Write};

/// The reader of standard output went away; `main` ends quietly.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct Closed;

/// One line on standard output.
pub fn line(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe => anyhow::Error::new(Closed),
            _ => anyhow::Error::new(e).context("writing to standard output"),
        })
}

/// The width, in characters, of a column of `cells` under `header`: the
/// names people read vary in length, and tables line up on the longest.
pub fn column_width<'a>(header: &str, cells: impl IntoIterator<Item = &'a str>) -> usize {
    cells
        .into_iter()
        .map(|c| c.chars().count())
        .fold(header.chars().count(), usize::max)
}

/// `println!` that returns the write's error instead of panicking.
macro_rules! out {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use out;
