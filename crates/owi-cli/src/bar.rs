//! The core's progress events as an indicatif bar on a terminal, with the
//! live preview's running counts on a line under it while an export is read.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use owi_progress::{Phase, Progress, ProgressSink};
use owi_store::{Glimpse, GlimpseSink, Summary};

use crate::upload::count;

const ONE_LINE: &str = "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}";
/// Reading an export: stage messages go to the prefix, the counts under it.
const WITH_COUNTS: &str = "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {prefix}\n  {wide_msg}";

/// Draws progress on stderr when it is a terminal; silent otherwise.
#[derive(Debug)]
pub struct Bar {
    state: Mutex<State>,
    enabled: bool,
}

#[derive(Debug, Default)]
struct State {
    bar: Option<ProgressBar>,
    /// The current bar shows the counts (reading an export, indexing it).
    counted: bool,
    counts: String,
}

impl State {
    fn say(&self, message: String) {
        if let Some(bar) = &self.bar {
            if self.counted {
                bar.set_prefix(message);
            } else {
                bar.set_message(message);
            }
        }
    }
}

impl Bar {
    pub fn new() -> Self {
        Bar {
            state: Mutex::new(State::default()),
            enabled: std::io::stderr().is_terminal(),
        }
    }
}

/// One line of what an export holds so far: "1,204,332 records of 48 types
/// · 812 workouts · 5 sources · 2014-03-02 to 2023-11-30".
pub fn counts_line(s: &Summary) -> String {
    let types = s.record_types.iter().filter(|t| t.count > 0).count();
    let mut line = format!(
        "{} records of {} types · {} workouts · {} sources",
        count(s.records),
        count(types as u64),
        count(s.workouts),
        count(s.sources.len() as u64)
    );
    if let (Some(first), Some(last)) = (&s.first_record_start, &s.last_record_start) {
        let day = |t: &str| t.get(..10).unwrap_or(t).to_string();
        line.push_str(&format!(" · {} to {}", day(first), day(last)));
    }
    line
}

impl GlimpseSink for Bar {
    fn glimpse(&self, glimpse: Glimpse) {
        if !self.enabled {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.counts = counts_line(&glimpse.summary);
        if let Some(bar) = state.bar.as_ref().filter(|_| state.counted) {
            bar.set_message(state.counts.clone());
        }
    }
}

impl ProgressSink for Bar {
    fn report(&self, event: Progress) {
        if !self.enabled {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match event {
            Progress::Started { phase, total } => {
                let bar = match total {
                    Some(total) => ProgressBar::new(total),
                    None => ProgressBar::new_spinner(),
                };
                bar.set_draw_target(ProgressDrawTarget::stderr());
                // Counts appear once the first glimpse came: a reused
                // export or an upload's check shows none.
                let counted = matches!(phase, Phase::Ingest | Phase::Index);
                let template = if counted { WITH_COUNTS } else { ONE_LINE };
                let style = ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                if counted {
                    bar.set_message(state.counts.clone());
                }
                state.counted = counted;
                if let Some(old) = state.bar.replace(bar) {
                    old.finish_and_clear();
                }
            }
            Progress::Advanced { position, .. } => {
                if let Some(bar) = state.bar.as_ref() {
                    bar.set_position(position.done);
                }
                if let Some(part) = position.part {
                    state.say(format!("part {} of {}", part.index, part.count));
                }
            }
            Progress::Stage { message, .. } => state.say(message),
            Progress::Retrying {
                delay_ms, reason, ..
            } => state.say(format!(
                "retrying in {:.0} s: {reason}",
                delay_ms as f64 / 1000.0
            )),
            Progress::Finished { .. } => {
                if let Some(bar) = state.bar.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
