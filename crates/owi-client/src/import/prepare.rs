//! Before a byte is sent: what goes — the person's filters, then only what
//! this server's user does not have from us (the ledger) — and what the
//! server will make of it, from one read of the export; and the guard
//! against a server that lost what we sent it.

use std::sync::Arc;

use owi_export::{
    Choice, Cleaning, ExportSource, KeptCheck, LeftOut, Preflight, ReadOptions, Selection,
    SentItems, Tally,
};
use owi_progress::{CancelToken, ProgressSink};
use owi_store::{KeptRow, Ledger};
use serde::Serialize;

use super::{ImportRequest, Importer, blocking, forwarding};
use crate::error::Error;
use crate::readback::Expected;
use crate::upload::Method;

/// What the check found, in short: of what goes, and what stays.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Checked {
    /// Bytes of XML that go (before any cut into pieces).
    pub xml_bytes: u64,
    /// Items that go: records, workouts, correlations, summaries.
    pub items_sent: u64,
    pub records_imported: u64,
    pub items_ignored: u64,
    pub workouts: u64,
    /// What the server will count as processed: the records above, those
    /// nested in correlations again, and every workout.
    pub items_for_server: u64,
    /// Distinct samples the server will keep (sleep apart).
    pub samples: u64,
    /// Records the server stores, by type.
    pub imported: Vec<(String, u64)>,
    /// What the server passes over, by what it is.
    pub ignored: Vec<(String, u64)>,
    /// The DTD or characters a strict parser refuses are there.
    pub needs_cleaning: bool,
    /// Whether they are blanked before sending (`ImportRequest::clean`).
    pub cleaned: bool,
    /// What the filters and the ledger kept home.
    pub left_out: LeftOut,
    /// Only what is new went: the ledger held this many items.
    pub ledger_items: Option<u64>,
    /// The filters in words ("" for none).
    pub filters: String,
    /// A dry run's count of every item by group and day.
    pub tally: Option<Tally>,
}

impl Checked {
    pub fn delta(&self) -> bool {
        self.ledger_items.is_some()
    }
}

/// What an upload would send and how, without sending it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Plan {
    pub checked: Checked,
    pub method: Method,
    pub why: String,
    pub pieces: u32,
    /// The ledger says more was sent than the server holds: a delta
    /// would leave it short (a real upload stops with this).
    pub server_forgot: Option<String>,
}

/// The outcome of the preparation.
pub(super) struct Prepared {
    pub source: Arc<ExportSource>,
    pub preflight: Preflight,
    pub checked: Checked,
    /// Why a delta would leave the server short, if it would.
    pub forgot: Option<Error>,
    /// The kept check whose log holds the identities of what goes, when
    /// it was chosen whole from it: the ledger names it instead.
    pub kept: Option<KeptRow>,
}

impl Importer {
    /// Everything that can be known before sending, in the order that
    /// costs the person least: the user (a typo should not wait for a
    /// read), the ledger and the server's copy of it, then one read.
    pub(super) async fn prepare(
        &self,
        request: &ImportRequest,
        tally: bool,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Prepared, Error> {
        let user_id = &request.user_id;
        let source = {
            let path = request.path.clone();
            blocking(move || ExportSource::open(&path).map_err(|e| Error::Export(e.to_string())))
                .await?
        };
        let source = Arc::new(source);
        // The check an earlier read kept is looked up while the server
        // answers: it is local, and tens of megabytes for a large export.
        let (kept, asked) = tokio::join!(self.kept_check(request), async {
            self.client.user(user_id).await.map_err(|e| match e {
                Error::NotFound { server, .. } => Error::UnknownUser {
                    server,
                    id: user_id.clone(),
                },
                e => e,
            })?;
            self.check_method(request.method, user_id).await
        });
        asked?;
        let server = self.server();
        let ledger = if request.delta {
            let user_id = user_id.clone();
            self.store(move |s| s.ledger(&server, &user_id)).await?
        } else {
            None
        };
        let forgot = match &ledger {
            Some(ledger) => self.guard(user_id, ledger).await?,
            None => None,
        };
        // 3 million identities take a tenth of a second to table: off the
        // runtime's thread, the CLI's only one.
        let sent = match ledger {
            Some(ledger) => {
                Some(blocking(move || Ok(ledger.items.into_iter().collect::<SentItems>())).await?)
            }
            None => None,
        };
        let (row, kept) = kept
            .filter(|(_, k)| k.xml_bytes() == source.xml_size())
            .unzip();
        let preflight = check(&source, kept, request, sent, tally, progress, cancel).await?;
        let in_log = preflight
            .selection
            .as_ref()
            .is_some_and(Selection::in_kept_log);
        let mut checked = summary(&preflight);
        checked.cleaned = request.clean && checked.needs_cleaning;
        checked.filters = request
            .share
            .describe(|kind| owi_export::names::display_name(kind).to_lowercase());
        Ok(Prepared {
            source,
            preflight,
            checked,
            forgot,
            kept: row.filter(|_| in_log),
        })
    }

    /// The check an earlier read of this very file kept (an ingest: the
    /// preview). Any trouble finding it reads the export.
    async fn kept_check(&self, request: &ImportRequest) -> Option<(KeptRow, KeptCheck)> {
        let path = request.path.clone();
        match self.store(move |s| s.kept_check_row(&path)).await {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for a kept check; reading the export");
                None
            }
        }
    }

    /// What `request` would send, and how: nothing is uploaded.
    pub async fn plan(
        &self,
        request: &ImportRequest,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Plan, Error> {
        let request = &super::normalized(request)?;
        let prepared = self.prepare(request, true, progress, cancel).await?;
        let len = prepared.checked.xml_bytes;
        let (method, why) = self
            .choose(request.method, len, &request.user_id, false)
            .await?;
        let limit = super::sending::limit_of(method);
        let cleaning = Cleaning::knowing(request.clean, &prepared.preflight.stats);
        let pieces = match prepared.preflight.selection {
            Some(selection) if !selection.is_empty() => {
                let source = prepared.source.clone();
                blocking(move || {
                    crate::upload::UploadSource::selected(source, cleaning, &selection, limit)
                })
                .await?
                .len() as u32
            }
            _ => 0,
        };
        Ok(Plan {
            checked: prepared.checked,
            method,
            why,
            pieces,
            server_forgot: prepared.forgot.map(|e| e.to_string()),
        })
    }

    /// Whether the server still holds the workouts the ledger says we
    /// sent to this user: `Some` with the reason when it holds fewer.
    async fn guard(&self, user_id: &str, ledger: &Ledger) -> Result<Option<Error>, Error> {
        let Some(first) = ledger.workouts.first() else {
            // Nothing to look for: records alone cannot be matched one by one.
            return Ok(None);
        };
        let last = ledger.workouts.iter().map(|w| w.0).max().unwrap_or(first.0);
        let expected = Expected {
            items: 0,
            workouts: ledger.workouts.clone(),
            samples: 0,
            span: Some((first.0, last)),
            before: None,
        };
        let held = self.client.on_server(user_id, &expected).await?.workouts;
        let sent = ledger.workouts.len() as u64;
        Ok((held < sent).then(|| Error::ServerForgot {
            server: self.server(),
            user: user_id.to_string(),
            held,
            sent,
        }))
    }
}

fn summary(preflight: &Preflight) -> Checked {
    let by_count = |map: &std::collections::BTreeMap<String, u64>| {
        let mut list: Vec<(String, u64)> = map.iter().map(|(k, n)| (k.clone(), *n)).collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list
    };
    Checked {
        xml_bytes: preflight.bytes_sent(),
        items_sent: preflight.items_sent(),
        records_imported: preflight.records_imported(),
        items_ignored: preflight.items_ignored(),
        workouts: preflight.workouts,
        items_for_server: preflight.items_for_server(),
        samples: preflight.samples,
        imported: by_count(&preflight.imported),
        ignored: by_count(&preflight.ignored),
        needs_cleaning: preflight.needs_cleaning(),
        cleaned: false,
        left_out: preflight.left_out.clone(),
        ledger_items: preflight.ledger_items,
        filters: String::new(),
        tally: preflight.tally.clone(),
    }
}

/// What goes and what the server will make of it, on a blocking thread
/// forwarding the progress: chosen from what an earlier read of this export
/// kept (only the bytes that go are read), else, or when what it kept is
/// damaged, from one read of the export.
pub(super) async fn check(
    source: &Arc<ExportSource>,
    kept: Option<KeptCheck>,
    request: &ImportRequest,
    mut sent: Option<SentItems>,
    tally: bool,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Preflight, Error> {
    let source = source.clone();
    let share = request.share.clone();
    forwarding(progress, cancel, move |progress, cancel| {
        let options = || ReadOptions {
            progress,
            cancel: Some(cancel),
            ..ReadOptions::default()
        };
        if let Some(kept) = kept {
            let choice = Choice {
                share: &share,
                sent: sent.as_mut(),
                tally,
            };
            match kept.choose(source.clone(), choice, options()) {
                Ok(Some(chosen)) => {
                    tracing::info!("chosen from the earlier read of this export: not read whole");
                    return Ok(chosen);
                }
                Ok(None) => {
                    tracing::warn!(
                        "the earlier read's check cannot choose this (damaged, or kept \
                         without its log): reading the export"
                    )
                }
                Err(e) => return Err(export_error(e)),
            }
        }
        let choice = Choice {
            share: &share,
            sent: sent.as_mut(),
            tally,
        };
        owi_export::preflight_choosing(&source, options(), choice).map_err(export_error)
    })
    .await
}

fn export_error(e: owi_export::Error) -> Error {
    match e {
        owi_export::Error::Cancelled { .. } => Error::Cancelled,
        e => Error::Export(e.to_string()),
    }
}
