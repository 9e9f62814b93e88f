//! The core's progress events as an indicatif bar on a terminal.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use owi_progress::{Progress, ProgressSink};

/// Draws progress on stderr when it is a terminal; silent otherwise.
#[derive(Debug)]
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl Bar {
    pub fn new() -> Self {
        Bar {
            bar: Mutex::new(None),
            enabled: std::io::stderr().is_terminal(),
        }
    }
}

impl ProgressSink for Bar {
    fn report(&self, event: Progress) {
        if !self.enabled {
            return;
        }
        let Ok(mut slot) = self.bar.lock() else {
            return;
        };
        match event {
            Progress::Started { total, .. } => {
                let bar = match total {
                    Some(total) => ProgressBar::new(total),
                    None => ProgressBar::new_spinner(),
                };
                bar.set_draw_target(ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                if let Some(old) = slot.replace(bar) {
                    old.finish_and_clear();
                }
            }
            Progress::Advanced { position, .. } => {
                if let Some(bar) = slot.as_ref() {
                    bar.set_position(position.done);
                    if let Some(part) = position.part {
                        bar.set_message(format!("part {} of {}", part.index, part.count));
                    }
                }
            }
            Progress::Stage { message, .. } => {
                if let Some(bar) = slot.as_ref() {
                    bar.set_message(message);
                }
            }
            Progress::Retrying {
                delay_ms, reason, ..
            } => {
                if let Some(bar) = slot.as_ref() {
                    bar.set_message(format!(
                        "retrying in {:.0} s: {reason}",
                        delay_ms as f64 / 1000.0
                    ));
                }
            }
            Progress::Finished { .. } => {
                if let Some(bar) = slot.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
