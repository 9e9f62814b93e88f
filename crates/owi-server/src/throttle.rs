//! Failed-login counts per account (the email as typed, case-folded) and
//! per client address, in memory: a restart forgets them, which costs an
//! attacker a restart they cannot cause.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::config::LoginThrottle;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// Failures since `since` (Unix seconds), the start of this entry's window.
#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    since: i64,
}

#[derive(Debug)]
pub struct Throttle {
    limits: LoginThrottle,
    window: i64,
    counts: Mutex<HashMap<Key, Count>>,
}

impl Throttle {
    pub fn new(limits: LoginThrottle) -> Self {
        Throttle {
            window: i64::try_from(limits.window.as_secs())
                .unwrap_or(i64::MAX)
                .max(1),
            limits,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, address: IpAddr) -> [(Key, u32); 2] {
        [
            (Key::Account(email.trim().to_lowercase()), 0),
            (Key::Address(address), 1),
        ]
    }

    fn limit(&self, slot: u32) -> u32 {
        if slot == 0 {
            self.limits.per_account
        } else {
            self.limits.per_address
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Count>> {
        // A panic elsewhere cannot leave a count half-written.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(seconds)` while the account or the address is held back.
    pub fn check(&self, email: &str, address: IpAddr, now: i64) -> Result<(), u64> {
        let counts = self.lock();
        let mut wait = 0;
        for (key, slot) in Self::keys(email, address) {
            if let Some(count) = counts.get(&key)
                && now < count.since + self.window
                && count.failures >= self.limit(slot)
            {
                wait = wait.max(count.since + self.window - now);
            }
        }
        if wait > 0 {
            Err(wait.unsigned_abs())
        } else {
            Ok(())
        }
    }

    pub fn failed(&self, email: &str, address: IpAddr, now: i64) {
        let mut counts = self.lock();
        for (key, _) in Self::keys(email, address) {
            if !counts.contains_key(&key) && counts.len() >= self.limits.max_entries {
                self.make_room(&mut counts, now);
            }
            let count = counts.entry(key).or_insert(Count {
                failures: 0,
                since: now,
            });
            if now >= count.since + self.window {
                *count = Count {
                    failures: 0,
                    since: now,
                };
            }
            count.failures = count.failures.saturating_add(1);
        }
    }

    /// A good password clears the account's count (not the address's: one
    /// known account must not let an address go on guessing others).
    pub fn succeeded(&self, email: &str) {
        self.lock()
            .remove(&Key::Account(email.trim().to_lowercase()));
    }

    /// Drops expired counts, and if the table is still full the oldest one.
    fn make_room(&self, counts: &mut HashMap<Key, Count>, now: i64) {
        counts.retain(|_, c| now < c.since + self.window);
        if counts.len() >= self.limits.max_entries.max(1) {
            let oldest = counts
                .iter()
                .min_by_key(|(_, c)| c.since)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                counts.remove(&oldest);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn throttle(max_entries: usize) -> Throttle {
        Throttle::new(LoginThrottle {
            per_account: 2,
            per_address: 3,
            window: Duration::from_secs(60),
            max_entries,
        })
    }

    #[test]
    fn holds_back_until_the_window_ends_and_forgets_after() {
        let t = throttle(100);
        let ip: IpAddr = [10, 0, 0, 1].into();
        t.failed("A@x", ip, 1000);
        assert_eq!(t.check("a@x", ip, 1000), Ok(()));
        t.failed("a@x ", ip, 1010);
        assert_eq!(
            t.check("a@x", ip, 1010),
            Err(50),
            "per account, case-folded"
        );
        assert_eq!(t.check("b@x", ip, 1010), Ok(()), "another account");
        t.failed("b@x", ip, 1020);
        assert_eq!(t.check("c@x", ip, 1020), Err(40), "the address's third");
        assert_eq!(t.check("c@x", [10, 0, 0, 2].into(), 1020), Ok(()));
        assert_eq!(t.check("a@x", ip, 1060), Ok(()), "the window ended");
    }

    #[test]
    fn the_table_stays_within_its_cap() {
        let t = throttle(10);
        for i in 0..100u8 {
            t.failed(&format!("{i}@x"), [10, 0, 0, i].into(), 1000 + i64::from(i));
        }
        assert!(t.len() <= 10, "{}", t.len());
        // A full table still counts the newest failures.
        let ip: IpAddr = [10, 0, 1, 1].into();
        t.failed("new@x", ip, 1100);
        t.failed("new@x", ip, 1100);
        assert!(t.len() <= 10, "{}", t.len());
        assert_eq!(t.check("new@x", ip, 1100), Err(60));
    }
}
