//! Team tokens and per-team limits: a cache of verified tokens, the failure back-off, HTTP
//! rate limits and TCP connection counts.
//!
//! Verifying a token is cheap (a keyed hash, never argon2) but still a database lookup, so a
//! token verified once is remembered for a while by its SHA-256, and the clear token is never
//! kept; re-issuing a token takes effect within the TTL. A wrong token counts one failure for
//! its source address in the drill's shared [`Backoff`]: after 20 within a minute the address is
//! refused (HTTP 429 with `Retry-After`; TCP one line, then closed) without its tokens being
//! checked, until the window clears.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gongfang_core::TeamId;
use gongfang_core::throttle::Backoff;
use sha2::{Digest, Sha256};

use crate::error::SubmissionError;
use crate::sink::SubmissionSink;
use crate::state::SubmissionState;

/// What a presented team token turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Team(TeamId),
    /// Wrong, or not a token at all; counted as a failure of its address.
    Wrong,
    /// The token of a team the organisers took out of the drill: refused, saying why, and
    /// not counted as a failure.
    Disabled(TeamId),
    /// The address is backed off: the token was not checked. Come back after this long.
    BackedOff(Duration),
}

impl SubmissionState {
    /// Counts wrong team tokens in `backoff`, shared with the drill's other servers. Call it
    /// before the state serves anything: once a request has used the state's own back-off,
    /// that one stays (and this says so in the log).
    pub fn with_backoff(self, backoff: Arc<Backoff>) -> SubmissionState {
        if self.inner.backoff.set(backoff).is_err() {
            tracing::warn!(
                "the submission servers already count failures on their own; the shared back-off is not used"
            );
        }
        self
    }

    fn backoff(&self) -> &Backoff {
        self.inner.backoff.get_or_init(|| Arc::new(Backoff::default()))
    }

    /// How long `ip` is still backed off, if it is.
    pub(crate) fn backed_off(&self, ip: Option<IpAddr>) -> Option<Duration> {
        self.backoff().check(ip, None, Instant::now()).err()
    }

    /// Checks a token presented from `ip` under the back-off. `None` is a token that could not
    /// even be read (too long, not UTF-8): a failure like a wrong one.
    pub(crate) async fn check_token(
        &self,
        token: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<TokenCheck, SubmissionError> {
        if let Some(wait) = self.backed_off(ip) {
            return Ok(TokenCheck::BackedOff(wait));
        }
        let Some(token) = token else {
            self.backoff().failed(ip, None, Instant::now());
            return Ok(TokenCheck::Wrong);
        };
        if let Some(team) = self.team_by_token(token).await? {
            return Ok(TokenCheck::Team(team));
        }
        if let Some(team) = self.inner.sink.disabled_owner(token).await? {
            return Ok(TokenCheck::Disabled(team));
        }
        self.backoff().failed(ip, None, Instant::now());
        Ok(TokenCheck::Wrong)
    }
}

impl SubmissionState {
    /// Checks a team's portal session (its cookie and CSRF token) presented from `ip`, under
    /// the back-off like a token: a session that is no (longer a) team's counts as a failure.
    pub(crate) async fn check_session(
        &self,
        session: &str,
        csrf: &str,
        ip: Option<IpAddr>,
    ) -> Result<TokenCheck, SubmissionError> {
        if let Some(wait) = self.backed_off(ip) {
            return Ok(TokenCheck::BackedOff(wait));
        }
        match self.inner.sink.session_team(session, csrf).await? {
            Some(team) => Ok(TokenCheck::Team(team)),
            None => {
                self.backoff().failed(ip, None, Instant::now());
                Ok(TokenCheck::Wrong)
            }
        }
    }
}

/// Verified tokens, by their hash.
#[derive(Debug)]
pub(crate) struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (TeamId, Instant)>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub async fn verify(&self, sink: &dyn SubmissionSink, token: &str) -> Result<Option<TeamId>, SubmissionError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(&(team, at)) = self.entries.lock().expect("token cache poisoned").get(&key)
            && now.duration_since(at) < self.ttl
        {
            return Ok(Some(team));
        }
        let team = sink.verify_token(token).await?;
        let mut entries = self.entries.lock().expect("token cache poisoned");
        match team {
            Some(team) => {
                entries.insert(key, (team, now));
            }
            None => {
                entries.remove(&key);
            }
        }
        Ok(team)
    }
}

/// A token bucket per team: `rate` flags per second, bursts up to one second's worth.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: Option<u32>,
    buckets: Mutex<HashMap<TeamId, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate: Option<u32>) -> RateLimiter {
        RateLimiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Charges `flags` to `team`; `Err(wait)` says how long until it would pass.
    pub fn charge(&self, team: TeamId, flags: usize, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.rate else { return Ok(()) };
        let rate = f64::from(rate.max(1));
        let mut buckets = self.buckets.lock().expect("rate limiter poisoned");
        let (tokens, at) = buckets.entry(team).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(rate);
        *at = now;
        // A request larger than the bucket passes when the bucket is full and leaves a debt,
        // so a low limit still admits full-size requests, just less often.
        let need = (flags as f64).min(rate);
        if *tokens + 1e-9 < need {
            return Err(Duration::from_secs_f64((need - *tokens) / rate));
        }
        *tokens -= flags as f64;
        Ok(())
    }
}

/// Open TCP connections per team.
#[derive(Debug)]
pub(crate) struct ConnectionCounter {
    max: u32,
    open: Mutex<HashMap<TeamId, Arc<AtomicU32>>>,
}

/// Held while a connection is open; gives its slot back when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionSlot(Arc<AtomicU32>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionCounter {
    pub fn new(max: u32) -> ConnectionCounter {
        ConnectionCounter { max, open: Mutex::new(HashMap::new()) }
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    pub fn try_open(&self, team: TeamId) -> Option<ConnectionSlot> {
        let counter = self.open.lock().expect("connection counter poisoned").entry(team).or_default().clone();
        let admitted =
            counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1)).is_ok();
        // Only a taken slot may become a `ConnectionSlot`: dropping one gives a slot back, so
        // one built for a refusal would free a slot nobody held (and wrap the count below zero).
        admitted.then(|| ConnectionSlot(counter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_refills_over_time() {
        let limiter = RateLimiter::new(Some(10));
        let t0 = Instant::now();
        let team = TeamId(1);
        assert!(limiter.charge(team, 10, t0).is_ok());
        let wait = limiter.charge(team, 5, t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500), "{wait:?}");
        assert!(limiter.charge(team, 5, t0 + Duration::from_millis(500)).is_ok());
        // Another team has its own bucket.
        assert!(limiter.charge(TeamId(2), 10, t0).is_ok());
        // A request above the bucket size passes when full, then the team waits its debt off.
        assert!(limiter.charge(TeamId(3), 100, t0).is_ok());
        assert!(limiter.charge(TeamId(3), 1, t0 + Duration::from_secs(5)).is_err());
        assert!(limiter.charge(TeamId(3), 1, t0 + Duration::from_secs(10)).is_ok());
        assert!(RateLimiter::new(None).charge(team, 1_000_000, t0).is_ok());
    }

    #[test]
    fn connection_slots_are_returned() {
        let counter = ConnectionCounter::new(2);
        let a = counter.try_open(TeamId(1)).unwrap();
        let _b = counter.try_open(TeamId(1)).unwrap();
        assert!(counter.try_open(TeamId(1)).is_none());
        // Refusals take nothing and give nothing back.
        assert!(counter.try_open(TeamId(1)).is_none());
        assert!(counter.try_open(TeamId(2)).is_some());
        drop(a);
        let _c = counter.try_open(TeamId(1)).unwrap();
        assert!(counter.try_open(TeamId(1)).is_none());
    }
}
