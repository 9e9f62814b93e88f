//! Password verification off the async threads and at most a few at once:
//! each argon2 hash takes ~19 MiB and a core for tens of milliseconds, so a
//! flood of logins must queue rather than exhaust memory or the blocking
//! pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::auth::verify_password;
use crate::config::HashingLimits;
use crate::error::ApiError;

/// How many hashes run now and the most that ever ran at once.
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct HashingGauge {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl HashingGauge {
    /// The high-water mark of hashes running at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn enter(&self) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
pub struct Hashing {
    permits: Arc<Semaphore>,
    /// Logins admitted at once: those hashing and those queued.
    admitted: usize,
    waiting: AtomicUsize,
    gauge: HashingGauge,
}

/// Counts a login from admission to its answer, even one whose client
/// goes away meanwhile.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hashing {
    pub fn new(limits: &HashingLimits) -> Self {
        Hashing {
            permits: Arc::new(Semaphore::new(limits.concurrent.max(1))),
            admitted: limits.concurrent.max(1) + limits.queued,
            waiting: AtomicUsize::new(0),
            gauge: HashingGauge::default(),
        }
    }

    pub fn gauge(&self) -> HashingGauge {
        self.gauge.clone()
    }

    /// Whether `password` matches `phc`; 503 when too many logins wait.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, ApiError> {
        let busy = || ApiError::Busy("Too many logins at once; try again shortly".into(), 1);
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.admitted {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        let waiting = Waiting(&self.waiting);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| busy())?;
        let gauge = self.gauge.clone();
        let verified = tokio::task::spawn_blocking(move || {
            gauge.enter();
            let ok = verify_password(&password, &phc);
            gauge.leave();
            drop(permit);
            ok
        })
        .await
        .map_err(|_| ApiError::Internal);
        drop(waiting);
        verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_login_beyond_the_queue_is_told_to_come_back() {
        let hashing = Hashing::new(&HashingLimits {
            concurrent: 1,
            queued: 1,
        });
        // One hashing and one waiting already.
        hashing.waiting.store(2, Ordering::SeqCst);
        let answer = hashing.verify("pw".into(), "$argon2id$bad".into()).await;
        assert!(matches!(answer, Err(ApiError::Busy(_, 1))), "{answer:?}");
        assert_eq!(hashing.waiting.load(Ordering::SeqCst), 2, "not counted");
        hashing.waiting.store(1, Ordering::SeqCst);
        let answer = hashing.verify("pw".into(), "$argon2id$bad".into()).await;
        assert!(matches!(answer, Ok(false)), "admitted: {answer:?}");
        assert_eq!(hashing.waiting.load(Ordering::SeqCst), 1);
    }
}
