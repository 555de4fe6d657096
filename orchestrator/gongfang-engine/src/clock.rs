//! Time as the engine sees it: the wall clock in a drill, a manual clock in tests.

use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// Where the engine gets the time of day and how it waits for a moment.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Returns at `at` (at once if `at` has passed).
    fn sleep_until(&self, at: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        if let Ok(wait) = (at - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Simulated time: sleeping jumps the clock forward to the moment waited for, at once.
///
/// Checker actions still take real time (they talk to real services); only the waiting
/// between them is skipped, so a twenty-tick game runs in seconds.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn starting_at(at: DateTime<Utc>) -> ManualClock {
        ManualClock { now: Arc::new(Mutex::new(at)) }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.now.lock().expect("clock lock") = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let mut now = self.now.lock().expect("clock lock");
        if at > *now {
            *now = at;
        }
    }
}
