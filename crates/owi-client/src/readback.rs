//! Reading back what an import left on the server: the workouts of the
//! export's span, matched one by one, and the counts of samples and
//! workouts in that span. This is how an import is confirmed where the
//! server reports nothing about it (S3 imports on Open Wearables 0.6).

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Error;

/// What an export should leave on the server, from the pre-flight check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Expected {
    /// What the server counts as processed on a first import.
    pub items: u64,
    /// Every distinct workout's start and end (UTC seconds), sorted.
    pub workouts: Vec<(i64, i64)>,
    /// Distinct samples, by the server's identity of one.
    pub samples: u64,
    /// The first and last start of anything above, UTC seconds.
    pub span: Option<(i64, i64)>,
    /// What the server held in the span just before the upload, where
    /// it was read: data found afterwards must have grown from it.
    #[serde(default)]
    pub before: Option<OnServer>,
}

impl Expected {
    pub fn from_check(preflight: &owi_export::Preflight) -> Expected {
        let starts = preflight
            .workout_span
            .into_iter()
            .chain(preflight.sample_span);
        let span = starts.fold(None, |acc: Option<(i64, i64)>, (first, last)| {
            Some(acc.map_or((first, last), |(a, b)| (a.min(first), b.max(last))))
        });
        Expected {
            items: preflight.items_for_server(),
            workouts: preflight.workout_keys.clone(),
            samples: preflight.samples,
            span,
            before: None,
        }
    }
}

/// What the server holds in an export's span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OnServer {
    pub workouts: u64,
    /// `None` where the server cannot count samples.
    pub samples: Option<u64>,
}

impl OnServer {
    /// Everything expected is there. Counts may exceed what is expected:
    /// the span may hold data from elsewhere, and the server tells some
    /// samples apart that the check counts as one.
    pub fn has_all(&self, expected: &Expected) -> bool {
        let workouts = self.workouts >= expected.workouts.len() as u64;
        match self.samples {
            Some(samples) => workouts && samples >= expected.samples,
            // Workouts alone confirm an import only when there are some.
            None => workouts && !expected.workouts.is_empty(),
        }
    }
}

impl OnServer {
    /// Everything expected is there *and* arrived since the upload: the
    /// samples grew by at least those expected, and not every expected
    /// workout was there before. This is what data alone may confirm an
    /// import by — a delta's span may hold plenty of earlier data, so
    /// being there is not enough. Without a count from before, it is
    /// [`has_all`](OnServer::has_all).
    pub fn has_arrived(&self, expected: &Expected) -> bool {
        if !self.has_all(expected) {
            return false;
        }
        let Some(before) = expected.before else {
            return true;
        };
        let samples_grew = match (self.samples, before.samples) {
            (Some(now), Some(then)) => now.saturating_sub(then) >= expected.samples,
            _ => expected.samples == 0,
        };
        let wanted = expected.workouts.len() as u64;
        let workouts_came = wanted == 0 || before.workouts < wanted;
        let anything = expected.samples > 0 || wanted > 0;
        anything && samples_grew && workouts_came
    }
}

/// `/summaries/data`: only the counts this client reads.
#[derive(Debug, Deserialize)]
struct DataSummary {
    total_data_points: u64,
    total_workouts: u64,
}

impl Client {
    /// How much of `expected` is on the server: workouts matched one by
    /// one, samples counted in the span where the server can count them
    /// (`/summaries/data`), else workouts alone.
    pub async fn on_server(&self, user_id: &str, expected: &Expected) -> Result<OnServer, Error> {
        let Some((first, last)) = expected.span else {
            return Ok(OnServer::default());
        };
        let counts = self.data_summary(user_id, first, last).await?;
        // Matching workouts costs a page per hundred: only once the counts
        // say they may all be there, or where there are no counts.
        let workouts = match &counts {
            Some(c) if c.total_workouts < expected.workouts.len() as u64 => c.total_workouts,
            _ if expected.workouts.is_empty() => 0,
            _ => {
                // Servers list the workouts that end before the window does
                // (Open Wearables 0.6): it runs to the last one's end.
                let ends = expected.workouts.iter().map(|w| w.1).max().unwrap_or(last);
                let (from, to) = (expected.workouts[0].0, last.max(ends));
                let found = self.workout_keys(user_id, from, to).await?;
                matching(&expected.workouts, &found)
            }
        };
        Ok(OnServer {
            workouts,
            samples: counts.map(|c| c.total_data_points),
        })
    }

    /// The counts in `[from, to]`, or `None` from a server without them.
    async fn data_summary(
        &self,
        user_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Option<DataSummary>, Error> {
        let (start_date, end_date) = (iso(from - 1)?, iso(to + 1)?);
        let answer = self
            .get(
                &format!("users/{user_id}/summaries/data"),
                &[("start_date", &start_date), ("end_date", &end_date)],
            )
            .await;
        match answer {
            Ok(summary) => Ok(Some(summary)),
            Err(Error::NotFound { .. } | Error::Refused { status: 405, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The start and end (UTC seconds) of every workout the server holds
    /// for `user_id` starting from `from` and starting (ending, on Open
    /// Wearables 0.6) by `to`.
    pub async fn workout_keys(
        &self,
        user_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, i64)>, Error> {
        // A second either side: servers differ on whether the ends count.
        let (start_date, end_date) = (iso(from - 1)?, iso(to + 1)?);
        let path = format!("users/{user_id}/events/workouts");
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page: crate::api::WorkoutPage = self
                .get(
                    &path,
                    &[
                        ("start_date", Some(start_date.as_str())),
                        ("end_date", Some(end_date.as_str())),
                        ("limit", Some("100")),
                        ("cursor", cursor.as_deref()),
                    ],
                )
                .await?;
            for workout in &page.data {
                let secs = |s: &str| {
                    s.parse::<jiff::Timestamp>()
                        .map(|t| t.as_second())
                        .map_err(|e| Error::Protocol {
                            server: self.server().origin().to_string(),
                            reason: format!("a workout time {s:?}: {e}"),
                        })
                };
                keys.push((secs(&workout.start_time)?, secs(&workout.end_time)?));
            }
            match page.pagination.next_cursor {
                Some(next) if page.pagination.has_more && !page.data.is_empty() => {
                    cursor = Some(next)
                }
                _ => return Ok(keys),
            }
        }
    }
}

fn iso(secs: i64) -> Result<String, Error> {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .map_err(|e| Error::Config(format!("a time out of range: {e}")))
}

/// How many of `expected` (sorted) are in `found`, each found one counted
/// once.
pub(crate) fn matching(expected: &[(i64, i64)], found: &[(i64, i64)]) -> u64 {
    let mut found = found.to_vec();
    found.sort_unstable();
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < expected.len() && j < found.len() {
        match expected[i].cmp(&found[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_counts_each_found_workout_once() {
        let expected = [(1, 2), (3, 4), (3, 4), (5, 6)];
        assert_eq!(matching(&expected, &[(3, 4), (1, 2), (9, 9)]), 2);
        assert_eq!(matching(&expected, &[(3, 4), (3, 4), (5, 6), (1, 2)]), 4);
        assert_eq!(matching(&expected, &[]), 0);
    }
}
