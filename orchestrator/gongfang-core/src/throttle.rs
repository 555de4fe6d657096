//! The failure back-off shared by every server of a drill: too many wrong credentials from one
//! source address, or for one account name, and that address or account is refused for a while
//! without its credentials being checked at all.
//!
//! Pure logic: the caller passes "now" as an [`Instant`] and the peer's address, so tests drive
//! time. The rules, with the [`Limits`] defaults:
//!
//! - **Counting.** Each wrong credential (a team token, a session token, a password) counts one
//!   failure against its source address and, for a password, one against the account name.
//!   Failures older than the window (60 s) no longer count: the window slides.
//! - **Starting.** 20 failures from one address, or 5 for one account, within the window start a
//!   back-off for that address or account.
//! - **Length.** A back-off lasts until the window holds fewer failures than the limit again,
//!   i.e. until the oldest counted failure is a window old: at most 60 s, and shorter when the
//!   failures were spread out. It does not grow beyond that, and requests refused during it are
//!   not failures (their credentials are never checked), so waiting always ends it; an address
//!   that keeps failing gets at most `limit` checks per window. While it lasts, [`Backoff::check`]
//!   answers how long is left (for `Retry-After`).
//! - **Success.** A right password clears its account's failures (not the address's: one valid
//!   credential must not buy an address more guesses).
//! - **Addresses.** An IPv6 address counts for its /64 (one host usually has a whole /64); an
//!   IPv4-mapped IPv6 address counts as its IPv4 address. A request whose peer address is unknown
//!   counts against one shared "unknown" source.
//! - **Memory.** At most `max_keys` addresses and `max_keys` accounts are tracked, each with at
//!   most `limit` timestamps; beyond that the least recently added one is forgotten, so an
//!   attacker cycling addresses or names cannot grow it. Account names are kept as a SHA-256
//!   digest, whatever their length.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// When failures start a back-off, and how much is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures from one source address within the window that start its back-off.
    pub per_address: u32,
    /// Failures for one account name within the window that start its back-off.
    pub per_account: u32,
    /// The sliding window failures are counted in.
    pub window: Duration,
    /// Most addresses, and most account names, tracked at once.
    pub max_keys: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { per_address: 20, per_account: 5, window: Duration::from_secs(60), max_keys: 16_384 }
    }
}

/// Where a request came from, as the back-off counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4([u8; 4]),
    /// The /64 prefix.
    V6([u8; 8]),
    Unknown,
}

impl Source {
    fn of(ip: Option<IpAddr>) -> Source {
        match ip {
            None => Source::Unknown,
            // Counted as the connection caps count it.
            Some(ip) => match crate::admission::source_of(ip) {
                IpAddr::V4(v4) => Source::V4(v4.octets()),
                IpAddr::V6(v6) => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Source::V6(prefix)
                }
            },
        }
    }
}

type AccountKey = [u8; 32];

fn account_key(name: &str) -> AccountKey {
    Sha256::digest(name.as_bytes()).into()
}

/// Recent failures of one key: at most `limit` timestamps, oldest first.
#[derive(Debug)]
struct Failures {
    at: VecDeque<Instant>,
    /// When the key was added, to tell its place in the eviction order from a newer entry.
    generation: u64,
}

/// Failures of many keys, bounded in number.
#[derive(Debug)]
struct Tracker<K> {
    limit: usize,
    entries: HashMap<K, Failures>,
    /// Keys in the order they were added, with the generation they were added as; an item whose
    /// key has since been removed (or re-added) is skipped when its turn comes.
    order: VecDeque<(K, u64)>,
    next_generation: u64,
}

impl<K: Copy + Eq + Hash> Tracker<K> {
    fn new(limit: u32) -> Tracker<K> {
        Tracker {
            limit: usize::try_from(limit.max(1)).unwrap_or(usize::MAX),
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
        }
    }

    /// How long `key` is still backed off at `now`, if it is.
    fn remaining(&self, key: &K, now: Instant, window: Duration) -> Option<Duration> {
        let failures = self.entries.get(key)?;
        if failures.at.len() < self.limit {
            return None;
        }
        let oldest = *failures.at.front()?;
        let ends = oldest + window;
        (ends > now).then(|| ends - now)
    }

    fn fail(&mut self, key: K, now: Instant, window: Duration, max_keys: usize) {
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= max_keys.max(1) {
                let Some((old, generation)) = self.order.pop_front() else { break };
                if self.entries.get(&old).is_some_and(|f| f.generation == generation) {
                    self.entries.remove(&old);
                }
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            self.entries.insert(key, Failures { at: VecDeque::with_capacity(self.limit), generation });
            self.order.push_back((key, generation));
            // Removed keys leave stale items behind; drop them before they outnumber the live ones.
            if self.order.len() > 2 * max_keys.max(1) {
                let entries = &self.entries;
                self.order.retain(|(k, g)| entries.get(k).is_some_and(|f| f.generation == *g));
            }
        }
        let failures = self.entries.get_mut(&key).expect("inserted above");
        while failures.at.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
            failures.at.pop_front();
        }
        if failures.at.len() == self.limit {
            failures.at.pop_front();
        }
        failures.at.push_back(now);
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[derive(Debug)]
struct Trackers {
    addresses: Tracker<Source>,
    accounts: Tracker<AccountKey>,
}

/// The back-off of one process, shared by all its servers (`Arc<Backoff>`).
#[derive(Debug)]
pub struct Backoff {
    limits: Limits,
    trackers: Mutex<Trackers>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(Limits::default())
    }
}

impl Backoff {
    pub fn new(limits: Limits) -> Backoff {
        Backoff {
            limits,
            trackers: Mutex::new(Trackers {
                addresses: Tracker::new(limits.per_address),
                accounts: Tracker::new(limits.per_account),
            }),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn trackers(&self) -> std::sync::MutexGuard<'_, Trackers> {
        // The trackers stay consistent at every await-free step, so a panic elsewhere while
        // holding the lock leaves nothing half-done.
        self.trackers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Before checking a credential: `Err(retry_after)` if the source address or the account is
    /// backed off at `now` (the longer of the two waits), and then the credential must not be
    /// checked.
    pub fn check(&self, ip: Option<IpAddr>, account: Option<&str>, now: Instant) -> Result<(), Duration> {
        let window = self.limits.window;
        let t = self.trackers();
        let by_address = t.addresses.remaining(&Source::of(ip), now, window);
        let by_account = account.and_then(|a| t.accounts.remaining(&account_key(a), now, window));
        match by_address.into_iter().chain(by_account).max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// After a wrong credential: one failure for the source address and, if given, the account.
    pub fn failed(&self, ip: Option<IpAddr>, account: Option<&str>, now: Instant) {
        let (window, max_keys) = (self.limits.window, self.limits.max_keys);
        let mut t = self.trackers();
        t.addresses.fail(Source::of(ip), now, window, max_keys);
        if let Some(account) = account {
            t.accounts.fail(account_key(account), now, window, max_keys);
        }
    }

    /// After a right credential: the account's failures are forgotten. The address's are kept.
    pub fn succeeded(&self, _ip: Option<IpAddr>, account: Option<&str>, _now: Instant) {
        if let Some(account) = account {
            self.trackers().accounts.clear(&account_key(account));
        }
    }

    /// How many addresses and accounts are tracked now (for tests and metrics).
    pub fn tracked(&self) -> (usize, usize) {
        let t = self.trackers();
        (t.addresses.len(), t.accounts.len())
    }
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(10, 60, 1, last)))
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn twenty_failures_from_one_address_start_a_backoff_until_the_window_clears() {
        let b = Backoff::default();
        let t0 = Instant::now();
        for i in 0..19 {
            assert_eq!(b.check(ip(9), None, t0 + i * S), Ok(()), "refused before 20 failures");
            b.failed(ip(9), None, t0 + i * S);
        }
        assert_eq!(b.check(ip(9), None, t0 + 19 * S), Ok(()));
        b.failed(ip(9), None, t0 + 19 * S);
        // The 21st attempt is refused until the first failure is 60 s old.
        assert_eq!(b.check(ip(9), None, t0 + 20 * S), Err(40 * S));
        assert_eq!(b.check(ip(9), None, t0 + 59 * S), Err(S));
        // Another address is not affected.
        assert_eq!(b.check(ip(10), None, t0 + 20 * S), Ok(()));
        // Then one more check is allowed, and a failure backs it off again until the second
        // failure is 60 s old: at most 20 checks a minute.
        assert_eq!(b.check(ip(9), None, t0 + 60 * S), Ok(()));
        b.failed(ip(9), None, t0 + 60 * S);
        assert_eq!(b.check(ip(9), None, t0 + 60 * S), Err(S));
        // Failures spread wider than the window never start one.
        let spread = Backoff::default();
        for i in 0..100 {
            assert_eq!(spread.check(ip(1), None, t0 + i * 4 * S), Ok(()), "attempt {i}");
            spread.failed(ip(1), None, t0 + i * 4 * S);
        }
    }

    #[test]
    fn five_wrong_passwords_for_one_account_back_it_off_from_every_address() {
        let b = Backoff::default();
        let t0 = Instant::now();
        for i in 0..5u8 {
            assert_eq!(b.check(ip(i), Some("ana"), t0), Ok(()));
            b.failed(ip(i), Some("ana"), t0);
        }
        assert_eq!(b.check(ip(100), Some("ana"), t0 + S), Err(59 * S));
        assert_eq!(b.check(ip(100), Some("bo"), t0 + S), Ok(()), "another account is backed off");
        assert_eq!(b.check(ip(0), None, t0 + S), Ok(()), "the address is backed off after one failure");
        assert_eq!(b.check(ip(100), Some("ana"), t0 + 60 * S), Ok(()));
    }

    #[test]
    fn a_right_password_clears_the_account_but_not_the_address() {
        let b = Backoff::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            b.failed(ip(1), Some("ana"), t0);
        }
        b.succeeded(ip(1), Some("ana"), t0);
        b.failed(ip(1), Some("ana"), t0);
        assert_eq!(b.check(ip(2), Some("ana"), t0), Ok(()), "the success did not clear the account");
        for _ in 0..15 {
            b.failed(ip(1), None, t0);
        }
        b.succeeded(ip(1), None, t0);
        assert!(b.check(ip(1), None, t0).is_err(), "a success cleared the address");
    }

    #[test]
    fn addresses_count_as_their_host() {
        let b = Backoff::default();
        let t0 = Instant::now();
        let v6 = |last: u16| Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last)));
        for i in 0..20 {
            b.failed(v6(i), None, t0);
        }
        assert!(b.check(v6(999), None, t0).is_err(), "one /64 is one source");
        let other_net = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1)));
        assert_eq!(b.check(other_net, None, t0), Ok(()));
        let mapped = Some(IpAddr::V6(Ipv4Addr::new(10, 60, 1, 7).to_ipv6_mapped()));
        for _ in 0..20 {
            b.failed(mapped, None, t0);
        }
        assert!(b.check(ip(7), None, t0).is_err(), "a v4-mapped address is its v4 address");
        // Unknown peers share one source.
        for _ in 0..20 {
            b.failed(None, None, t0);
        }
        assert!(b.check(None, None, t0).is_err());
        assert_eq!(b.check(ip(8), None, t0), Ok(()));
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_key_goes_first() {
        let limits = Limits { max_keys: 100, ..Limits::default() };
        let b = Backoff::new(limits);
        let t0 = Instant::now();
        for _ in 0..20 {
            b.failed(ip(1), Some("ana"), t0);
        }
        assert!(b.check(ip(1), None, t0).is_err());
        // An attacker cycling through many addresses and names.
        for i in 0..10_000u32 {
            let a = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
            b.failed(a, Some(&format!("user{i}{}", "x".repeat(1_000))), t0 + S);
            let (addresses, accounts) = b.tracked();
            assert!(addresses <= 100 && accounts <= 100, "{addresses} addresses, {accounts} accounts");
        }
        // The oldest were forgotten first.
        assert_eq!(b.check(ip(1), Some("ana"), t0 + S), Ok(()));
        // The most recent are still tracked.
        let last = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 9_999)));
        for _ in 0..19 {
            b.failed(last, None, t0 + S);
        }
        assert!(b.check(last, None, t0 + S).is_err());
        // Cleared keys leave no growing bookkeeping behind.
        for i in 0..10_000u32 {
            b.failed(None, Some(&format!("n{i}")), t0);
            b.succeeded(None, Some(&format!("n{i}")), t0);
        }
        assert!(b.trackers().accounts.order.len() <= 2 * 100 + 1);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(40_001)), 41);
        assert_eq!(retry_after_secs(Duration::from_secs(40)), 40);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
