//! The one progress model of the importer.
//!
//! Every long operation (ingesting an export, uploading it, following the
//! server's import) reports through a [`ProgressSink`] with the same
//! [`Progress`] events: cumulative counts, never deltas, so a consumer that
//! misses one event loses nothing. The library never prints; the CLI turns
//! events into an indicatif bar, the app into IPC channel messages, tests
//! into a `Vec`.
//!
//! [`Tracker`] throttles `Advanced` events to one per [`MIN_INTERVAL`] and
//! always emits the final one, so sinks can be cheap and dumb.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The shortest interval between two `Advanced` events from one [`Tracker`].
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What part of the work an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading an export into the local store; units are uncompressed XML bytes.
    Ingest,
    /// Building the local store's indexes after a bulk load; no units.
    Index,
    /// Reading an export to check it before sending; units are XML bytes.
    Check,
    /// Sending an export to a server; units are bytes.
    Upload,
    /// The server processing an upload; units are items.
    ServerImport,
}

/// Which of several pieces is in flight, for work split into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Part {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

/// A cumulative position within a phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Position {
    pub done: u64,
    pub total: Option<u64>,
    /// Units per second since the phase started.
    pub rate: f64,
    /// Seconds left at the current rate, when a total is known.
    pub eta_secs: Option<f64>,
    pub part: Option<Part>,
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    Started {
        phase: Phase,
        total: Option<u64>,
    },
    Advanced {
        phase: Phase,
        #[serde(flatten)]
        position: Position,
    },
    /// A transient failure; the operation waits `delay_ms` and tries again.
    Retrying {
        phase: Phase,
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// A human-readable stage change ("building indexes", "waiting for the server").
    Stage {
        phase: Phase,
        message: String,
    },
    Finished {
        phase: Phase,
        done: u64,
        elapsed_ms: u64,
    },
}

impl Progress {
    pub fn phase(&self) -> Phase {
        match self {
            Progress::Started { phase, .. }
            | Progress::Advanced { phase, .. }
            | Progress::Retrying { phase, .. }
            | Progress::Stage { phase, .. }
            | Progress::Finished { phase, .. } => *phase,
        }
    }

    /// The same event, told of another phase (a read reused as a check).
    pub fn in_phase(mut self, to: Phase) -> Progress {
        match &mut self {
            Progress::Started { phase, .. }
            | Progress::Advanced { phase, .. }
            | Progress::Retrying { phase, .. }
            | Progress::Stage { phase, .. }
            | Progress::Finished { phase, .. } => *phase = to,
        }
        self
    }
}

/// Where progress goes. Implementations must be cheap: they are called from
/// hot loops (throttled by [`Tracker`]).
pub trait ProgressSink: Send + Sync {
    fn report(&self, event: Progress);
}

impl<F> ProgressSink for F
where
    F: Fn(Progress) + Send + Sync,
{
    fn report(&self, event: Progress) {
        self(event)
    }
}

/// A sink that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl ProgressSink for Silent {
    fn report(&self, _event: Progress) {}
}

/// A sink that keeps every event, for tests and for replaying to late subscribers.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    events: Arc<Mutex<Vec<Progress>>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn events(&self) -> Vec<Progress> {
        match self.events.lock() {
            Ok(events) => events.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ProgressSink for Recorder {
    fn report(&self, event: Progress) {
        match self.events.lock() {
            Ok(mut events) => events.push(event),
            Err(poisoned) => poisoned.into_inner().push(event),
        }
    }
}

/// Cooperative cancellation shared between the caller and the worker.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Turns a stream of cumulative counts into throttled [`Progress`] events.
pub struct Tracker<'a> {
    sink: &'a dyn ProgressSink,
    phase: Phase,
    total: Option<u64>,
    part: Option<Part>,
    started: Instant,
    last_emit: Option<Instant>,
    done: u64,
}

impl std::fmt::Debug for Tracker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("phase", &self.phase)
            .field("total", &self.total)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'a> Tracker<'a> {
    /// Emits `Started` and begins timing.
    pub fn start(sink: &'a dyn ProgressSink, phase: Phase, total: Option<u64>) -> Self {
        Self::start_at(sink, phase, total, Instant::now())
    }

    pub fn start_at(
        sink: &'a dyn ProgressSink,
        phase: Phase,
        total: Option<u64>,
        now: Instant,
    ) -> Self {
        sink.report(Progress::Started { phase, total });
        Self {
            sink,
            phase,
            total,
            part: None,
            started: now,
            last_emit: None,
            done: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    pub fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
    }

    pub fn set_part(&mut self, part: Option<Part>) {
        self.part = part;
    }

    /// Records the cumulative count; emits at most once per [`MIN_INTERVAL`].
    pub fn advance(&mut self, done: u64) {
        self.advance_at(done, Instant::now());
    }

    pub fn advance_at(&mut self, done: u64, now: Instant) {
        self.done = done;
        let due = self
            .last_emit
            .is_none_or(|last| now.saturating_duration_since(last) >= MIN_INTERVAL);
        if due {
            self.emit(now);
        }
    }

    pub fn stage(&self, message: impl Into<String>) {
        self.sink.report(Progress::Stage {
            phase: self.phase,
            message: message.into(),
        });
    }

    pub fn retrying(&self, attempt: u32, delay: Duration, reason: impl Into<String>) {
        self.sink.report(Progress::Retrying {
            phase: self.phase,
            attempt,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            reason: reason.into(),
        });
    }

    /// Emits the last position (whatever the throttle says) and `Finished`.
    pub fn finish(mut self) {
        self.finish_at(Instant::now());
    }

    pub fn finish_at(&mut self, now: Instant) {
        self.emit(now);
        self.sink.report(Progress::Finished {
            phase: self.phase,
            done: self.done,
            elapsed_ms: u64::try_from(now.saturating_duration_since(self.started).as_millis())
                .unwrap_or(u64::MAX),
        });
    }

    fn emit(&mut self, now: Instant) {
        self.last_emit = Some(now);
        let elapsed = now.saturating_duration_since(self.started).as_secs_f64();
        let rate = if elapsed > 0.0 {
            self.done as f64 / elapsed
        } else {
            0.0
        };
        let eta_secs = match self.total {
            Some(total) if rate > 0.0 => Some(total.saturating_sub(self.done) as f64 / rate),
            _ => None,
        };
        self.sink.report(Progress::Advanced {
            phase: self.phase,
            position: Position {
                done: self.done,
                total: self.total,
                rate,
                eta_secs,
                part: self.part,
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advanced(events: &[Progress]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|e| match e {
                Progress::Advanced { position, .. } => Some(position.done),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn throttles_to_one_event_per_interval_and_always_sends_the_last() {
        let recorder = Recorder::new();
        let t0 = Instant::now();
        let mut tracker = Tracker::start_at(&recorder, Phase::Ingest, Some(1000), t0);
        for i in 1..=100u64 {
            // 100 updates over 99 ms: only the first one is due.
            tracker.advance_at(i, t0 + Duration::from_millis(i - 1));
        }
        tracker.advance_at(500, t0 + Duration::from_millis(250));
        tracker.advance_at(600, t0 + Duration::from_millis(260));
        tracker.finish_at(t0 + Duration::from_millis(270));

        let events = recorder.events();
        assert_eq!(advanced(&events), vec![1, 500, 600]);
        assert!(matches!(
            events.first(),
            Some(Progress::Started {
                total: Some(1000),
                ..
            })
        ));
        assert!(matches!(
            events.last(),
            Some(Progress::Finished {
                done: 600,
                elapsed_ms: 270,
                ..
            })
        ));
    }

    #[test]
    fn rate_and_eta_follow_the_cumulative_count() {
        let recorder = Recorder::new();
        let t0 = Instant::now();
        let mut tracker = Tracker::start_at(&recorder, Phase::Upload, Some(1000), t0);
        tracker.advance_at(250, t0 + Duration::from_secs(1));
        let events = recorder.events();
        let Some(Progress::Advanced { position, .. }) = events.last() else {
            panic!("expected an Advanced event, got {events:?}");
        };
        assert!((position.rate - 250.0).abs() < 1e-9);
        assert_eq!(position.eta_secs, Some(3.0));
    }

    #[test]
    fn events_serialize_with_a_tag_the_ui_can_switch_on() {
        let json = serde_json::to_string(&Progress::Stage {
            phase: Phase::Index,
            message: "building indexes".into(),
        })
        .unwrap_or_default();
        assert_eq!(
            json,
            r#"{"event":"stage","phase":"index","message":"building indexes"}"#
        );
    }
}
