//! Where accepted submissions go: [`SubmissionSink`], implemented for the real store.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use gongfang_core::{ServiceId, TeamId, Tick};
use gongfang_store::{NewSubmission, Store, SubmissionOutcome};

use crate::error::SubmissionError;

/// A boxed future, so the sink can be a trait object.
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SubmissionError>> + Send + 'a>>;

/// Storage as the submission pipeline needs it.
pub trait SubmissionSink: Send + Sync + 'static {
    /// Stores `batch` in ONE transaction; for each row, whether it is new or a duplicate of
    /// (attacker, flag). Must return only after the commit is durable.
    fn insert_batch<'a>(&'a self, batch: &'a [NewSubmission]) -> SinkFuture<'a, Vec<SubmissionOutcome>>;

    /// The team a presented token belongs to.
    fn verify_token<'a>(&'a self, token: &'a str) -> SinkFuture<'a, Option<TeamId>>;

    /// Services of which at least one flag has been captured in ticks `0..=upto`, so first
    /// blood is announced once per drill even across restarts.
    fn captured_services(&self, upto: Tick) -> SinkFuture<'_, HashSet<ServiceId>>;
}

/// Adapter: the store has no "services with a capture" query yet, so this walks the stored
/// submissions tick by tick. Runs once when a submission server starts.
#[derive(Debug)]
pub struct CapturedServicesFromStore;

impl CapturedServicesFromStore {
    pub async fn load(store: &Store, upto: Tick) -> Result<HashSet<ServiceId>, SubmissionError> {
        let mut services = HashSet::new();
        for tick in 0..=upto.0 {
            for s in store.submissions_in_tick(Tick(tick)).await? {
                services.insert(s.submission.service);
            }
        }
        Ok(services)
    }
}

impl SubmissionSink for Store {
    fn insert_batch<'a>(&'a self, batch: &'a [NewSubmission]) -> SinkFuture<'a, Vec<SubmissionOutcome>> {
        Box::pin(async move {
            let outcomes = self.insert_submissions(batch).await?;
            if outcomes.len() != batch.len() {
                return Err(SubmissionError::OutcomeCount { expected: batch.len(), got: outcomes.len() });
            }
            Ok(outcomes)
        })
    }

    fn verify_token<'a>(&'a self, token: &'a str) -> SinkFuture<'a, Option<TeamId>> {
        Box::pin(async move { Ok(Store::verify_token(self, token).await?) })
    }

    fn captured_services(&self, upto: Tick) -> SinkFuture<'_, HashSet<ServiceId>> {
        Box::pin(CapturedServicesFromStore::load(self, upto))
    }
}
