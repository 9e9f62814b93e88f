//! The import queue and its worker. A job is a row in `jobs`: it survives a
//! restart (a job found `processing` at start is queued again, up to its
//! tries; processing is idempotent thanks to the upserts). A failure that
//! may pass (I/O, the object store) is tried again after a delay, up to
//! `job_attempts` tries; one that cannot (the export does not parse) fails
//! at once. The worker parses with the
//! project's reader — so it takes what Apple really writes — and stores
//! workouts and samples in one transaction per job: a failed import leaves
//! nothing half-counted.

mod upkeep;
mod upsert;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use owi_progress::{CancelToken, Progress, ProgressSink};
use rusqlite::{OptionalExtension, params};
use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;

use crate::AppState;
use crate::db::{Db, now_rfc3339, now_secs};
use crate::error::Error;
use crate::sync::{Hub, Report, Stage, Status};

pub use upkeep::{resume_interrupted, sweep_uploads};
pub use upsert::{series_type, workout_type};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Direct,
    S3,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Direct => "direct",
            Origin::S3 => "s3",
        }
    }

    fn parse(s: &str) -> Origin {
        if s == "s3" {
            Origin::S3
        } else {
            Origin::Direct
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub task_id: String,
    /// The run its events carry: the task id, or one of its own (see
    /// [`crate::Compat::run_id`]).
    pub run_id: String,
    pub user_id: String,
    pub origin: Origin,
    pub path: String,
    pub filename: String,
}

#[derive(Debug, Clone)]
struct Job {
    id: String,
    run_id: String,
    user_id: String,
    /// A file on disk (direct) or an object key (s3).
    path: String,
    filename: String,
    origin: Origin,
    /// Tries begun, this one included.
    attempts: u32,
}

/// Writes a job row (inside the caller's transaction, so whatever made
/// the job and the job itself commit together).
pub fn insert_job(c: &rusqlite::Connection, job: &NewJob) -> rusqlite::Result<()> {
    let now = now_secs();
    c.execute(
        "INSERT INTO jobs (id, run_id, user_id, origin, path, filename, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7)",
        params![job.task_id, job.run_id, job.user_id, job.origin.as_str(), job.path, job.filename, now],
    )?;
    Ok(())
}

impl AppState {
    /// Queues an import and wakes the worker.
    pub async fn enqueue(&self, job: NewJob) -> Result<(), Error> {
        let row = job.clone();
        self.db.call(move |c| insert_job(c, &row)).await?;
        self.announce(job).await
    }

    /// Tells the job's followers it is queued, and wakes the worker.
    pub async fn announce(&self, job: NewJob) -> Result<(), Error> {
        if !self.config.compat.reports(job.origin, Stage::Queued) {
            self.wake.notify_one();
            return Ok(());
        }
        let hub = self.hub.clone();
        tokio::task::spawn_blocking(move || {
            hub.emit(Report {
                run_id: &job.run_id,
                user_id: &job.user_id,
                filename: &job.filename,
                stage: Stage::Queued,
                status: Status::InProgress,
                message: Some("Waiting to be processed".into()),
                progress: Some(0.0),
                items_processed: None,
                items_total: None,
                error: None,
                started_at: None,
                ended_at: None,
            })
            .map(|_| ())
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        self.wake.notify_one();
        Ok(())
    }
}

/// Runs jobs one at a time until `stop` is cancelled. The job in hand when
/// that happens is rolled back and left queued.
pub async fn work(state: AppState, db: Db, stop: CancelToken) {
    let runtime = tokio::runtime::Handle::current();
    loop {
        if stop.is_cancelled() {
            return;
        }
        let claimed = {
            let (jobs, now) = (state.db.clone(), state.config.clock.now_secs());
            tokio::task::spawn_blocking(move || claim(&jobs, now)).await
        };
        match claimed {
            Ok(Ok(Some(job))) => {
                let (state, db, stop, runtime) =
                    (state.clone(), db.clone(), stop.clone(), runtime.clone());
                let run = tokio::task::spawn_blocking(move || {
                    process(&state, &db, &job, &stop, &runtime);
                })
                .await;
                if let Err(e) = run {
                    tracing::error!(error = %e, "an import task panicked");
                }
            }
            Ok(Ok(None)) => {
                tokio::select! {
                    () = state.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the job queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "the job queue task failed");
                return;
            }
        }
    }
}

fn claim(db: &Db, now: i64) -> Result<Option<Job>, Error> {
    db.blocking(|c| {
        let tx = c.transaction()?;
        let job = tx
            .query_row(
                "SELECT id, run_id, user_id, path, filename, origin, attempts + 1 FROM jobs
                 WHERE state = 'queued' AND (retry_at IS NULL OR retry_at <= ?)
                 ORDER BY created_at, rowid LIMIT 1",
                [now],
                |r| {
                    Ok(Job {
                        id: r.get(0)?,
                        run_id: r.get(1)?,
                        user_id: r.get(2)?,
                        path: r.get(3)?,
                        filename: r.get(4)?,
                        origin: Origin::parse(&r.get::<_, String>(5)?),
                        attempts: r.get(6)?,
                    })
                },
            )
            .optional()?;
        if let Some(job) = &job {
            tx.execute(
                "UPDATE jobs SET state = 'processing', attempts = attempts + 1, updated_at = ? WHERE id = ?",
                params![now_secs(), job.id],
            )?;
        }
        tx.commit()?;
        Ok(job)
    })
}

/// Emits `Processing` events, at most one a second and at each 1 % step.
struct Progressor<'a> {
    hub: &'a Hub,
    /// Whether `Processing` events are reported at all.
    reports: bool,
    job: &'a Job,
    started_at: &'a str,
    items: &'a Mutex<u64>,
    last: Mutex<Option<(Instant, f64)>>,
}

impl ProgressSink for Progressor<'_> {
    fn report(&self, event: Progress) {
        let Progress::Advanced { position, .. } = event else {
            return;
        };
        if !self.reports {
            return;
        }
        let Some(total) = position.total.filter(|t| *t > 0) else {
            return;
        };
        let fraction = (position.done as f64 / total as f64).min(1.0);
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.is_some_and(|(at, f)| at.elapsed() < Duration::from_secs(1) || fraction - f < 0.01)
        {
            return;
        }
        *last = Some((Instant::now(), fraction));
        let items = self.items.lock().map(|n| *n).unwrap_or(0);
        let _ = self.hub.emit(Report {
            run_id: &self.job.run_id,
            user_id: &self.job.user_id,
            filename: &self.job.filename,
            stage: Stage::Processing,
            status: Status::InProgress,
            message: Some(format!("Processing {:.0} %", fraction * 100.0)),
            progress: Some(fraction),
            items_processed: Some(items),
            items_total: None,
            error: None,
            started_at: Some(self.started_at.to_string()),
            ended_at: None,
        });
    }
}

fn process(state: &AppState, db: &Db, job: &Job, stop: &CancelToken, runtime: &Handle) {
    let started_at = now_rfc3339();
    // Events belong to a user: none for an id that cannot name one.
    let reportable = uuid::Uuid::parse_str(&job.user_id).is_ok();
    let emit =
        |stage, status, message: String, progress, items, error: Option<String>, ended: bool| {
            if !reportable || !state.config.compat.reports(job.origin, stage) {
                return;
            }
            let _ = state.hub.emit(Report {
                run_id: &job.run_id,
                user_id: &job.user_id,
                filename: &job.filename,
                stage,
                status,
                message: Some(message),
                progress,
                items_processed: items,
                items_total: items,
                error,
                started_at: Some(started_at.clone()),
                ended_at: ended.then(now_rfc3339),
            });
        };
    emit(
        Stage::Started,
        Status::InProgress,
        "Import started".into(),
        Some(0.0),
        None,
        None,
        false,
    );
    let items = Mutex::new(0u64);
    // An S3 upload is read back through the S3 API first, as the real
    // worker downloads it.
    let local = if !user_exists(state, &job.user_id) {
        Err(ImportError::UnknownUser(job.user_id.clone()))
    } else if job.origin == Origin::S3 {
        emit(
            Stage::Fetching,
            Status::InProgress,
            "Reading the upload from the object store".into(),
            Some(0.0),
            None,
            None,
            false,
        );
        let target = state.uploads_dir().join(format!("{}.fetched.xml", job.id));
        runtime
            .block_on(fetch(state, &job.path, &target, stop))
            .map(|()| target)
    } else {
        Ok(PathBuf::from(&job.path))
    };
    // The file this job reads, removed once it is done with (the object
    // in the store stays, as an S3 upload does).
    let (local, outcome) = match local {
        Ok(path) => {
            let outcome = upsert::import(state, db, job, &path, stop, &items, &started_at);
            (Some(path), outcome)
        }
        Err(e) => (None, Err(e)),
    };
    let local_name = local
        .as_ref()
        .map_or_else(|| job.path.clone(), |p| p.display().to_string());
    let remove_local = || {
        if let Some(path) = &local {
            let _ = std::fs::remove_file(path);
        }
    };
    let count = items.lock().map(|n| *n).unwrap_or(0);
    let retry =
        matches!(&outcome, Err(e) if e.is_transient() && job.attempts < state.config.job_attempts);
    let error = match &outcome {
        Err(e) if e.is_transient() => Some(format!(
            "{} (try {} of {})",
            e.for_client(&local_name, &job.filename),
            job.attempts,
            state.config.job_attempts
        )),
        Err(e) => Some(e.for_client(&local_name, &job.filename)),
        Ok(()) => None,
    };
    let delay = i64::try_from(state.config.job_retry_delay.as_secs()).unwrap_or(i64::MAX);
    let _ = state.db.blocking(|c| match &outcome {
        // A stop is not a try: it does not count.
        Err(ImportError::Stopped) => c.execute(
            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, updated_at = ? WHERE id = ?",
            params![now_secs(), job.id],
        ),
        _ if retry => c.execute(
            "UPDATE jobs SET state = 'queued', error = ?, retry_at = ?, updated_at = ? WHERE id = ?",
            params![error, state.config.clock.now_secs().saturating_add(delay), now_secs(), job.id],
        ),
        _ => c.execute(
            "UPDATE jobs SET state = ?, error = ?, updated_at = ? WHERE id = ?",
            params![if outcome.is_ok() { "completed" } else { "failed" }, error, now_secs(), job.id],
        ),
    });
    // Done with the file before saying so: a client that sees the end sees
    // the server's disk as it will stay. A retry reads a direct upload again.
    if !matches!(outcome, Err(ImportError::Stopped)) && (!retry || job.origin == Origin::S3) {
        remove_local();
    }
    match outcome {
        Ok(()) => {
            emit(
                Stage::Completed,
                Status::Success,
                format!("Imported {count} items"),
                Some(1.0),
                Some(count),
                None,
                true,
            );
        }
        Err(ImportError::Stopped) => {
            tracing::info!(task = %job.id, "import interrupted by shutdown; queued again");
            // A direct upload's file is the job's input; an S3 one is
            // fetched again.
            if job.origin == Origin::S3 {
                remove_local();
            }
        }
        Err(e) if retry => {
            tracing::warn!(task = %job.id, error = %e, attempt = job.attempts, "import failed; trying again");
            emit(
                Stage::Queued,
                Status::InProgress,
                format!(
                    "Try {} of {} failed; trying again",
                    job.attempts, state.config.job_attempts
                ),
                Some(0.0),
                None,
                error,
                false,
            );
            state.wake.notify_one();
        }
        Err(e) => {
            tracing::warn!(task = %job.id, error = %e, "import failed");
            emit(
                Stage::Failed,
                Status::Failed,
                "Import failed".into(),
                None,
                Some(0),
                error,
                true,
            );
        }
    }
}

/// Streams an object to `target` (via a `.part` file, swept at start).
async fn fetch(
    state: &AppState,
    key: &str,
    target: &std::path::Path,
    stop: &CancelToken,
) -> Result<(), ImportError> {
    let objects = &state.objects;
    let response = objects
        .client
        .get_object()
        .bucket(&objects.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_s3::error::ProvideErrorMetadata;
            tracing::warn!(key, error = ?e, "cannot read an upload from the object store");
            let message = match e.code() {
                Some("NoSuchKey") => "the upload is no longer in the object store".into(),
                Some(code) => format!("the object store refused to return the upload ({code})"),
                None => "the object store is unreachable".into(),
            };
            ImportError::Fetch {
                transient: e.code() != Some("NoSuchKey"),
                message,
            }
        })?;
    let part = target.with_extension("part");
    let write_error = |e: std::io::Error| {
        tracing::error!(path = %part.display(), error = %e, "cannot store a fetched upload");
        if e.kind() == std::io::ErrorKind::StorageFull {
            ImportError::fetch("the server has no disk space left for this upload")
        } else {
            ImportError::fetch("the server could not store the upload")
        }
    };
    let mut file = tokio::fs::File::create(&part).await.map_err(write_error)?;
    let mut body = response.body;
    let copied: Result<(), ImportError> = async {
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            tracing::warn!(key, error = %e, "reading an upload from the object store failed");
            ImportError::fetch("the object store stopped sending the upload")
        })? {
            if stop.is_cancelled() {
                return Err(ImportError::Stopped);
            }
            file.write_all(&chunk).await.map_err(write_error)?;
        }
        file.flush().await.map_err(write_error)
    }
    .await;
    drop(file);
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, target).await.map_err(write_error)
}

#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error("{0}")]
    Export(#[from] owi_export::Error),
    #[error("{0}")]
    Server(#[from] Error),
    /// Reading an S3 upload back failed; `transient` unless the object is
    /// gone.
    #[error("{message}")]
    Fetch { message: String, transient: bool },
    /// A strict parser's refusal (Open Wearables 0.6 mode).
    #[error("{0}")]
    Strict(owi_export::Error),
    #[error("User with ID: {0} not found.")]
    UnknownUser(String),
    #[error("the server is stopping")]
    Stopped,
}

impl ImportError {
    fn fetch(message: &str) -> ImportError {
        ImportError::Fetch {
            message: message.into(),
            transient: true,
        }
    }

    /// Whether another try may succeed: reading failed, not parsing.
    fn is_transient(&self) -> bool {
        match self {
            // Bad bytes stay bad; a read that failed may not next time.
            ImportError::Export(owi_export::Error::Io { source, .. }) => !matches!(
                source.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ),
            ImportError::Export(_) => false,
            ImportError::Server(_) => true,
            ImportError::Fetch { transient, .. } => *transient,
            ImportError::Strict(_) | ImportError::UnknownUser(_) | ImportError::Stopped => false,
        }
    }

    /// The reason as a client may see it: named after the uploaded file,
    /// never with the server's own paths.
    fn for_client(&self, stored_path: &str, filename: &str) -> String {
        match self {
            ImportError::Server(_) => "The server could not store the import".into(),
            other => other.to_string().replace(stored_path, filename),
        }
    }
}

/// Uploads may be accepted for any user id (as Open Wearables 0.6 does):
/// the import is where an unknown one fails.
fn user_exists(state: &AppState, user_id: &str) -> bool {
    state
        .db
        .blocking(|c| {
            c.query_row("SELECT 1 FROM users WHERE id = ?", [user_id], |_| Ok(()))
                .optional()
        })
        .map(|found| found.is_some())
        .unwrap_or(true)
}
