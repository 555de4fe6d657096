//! Where accepted submissions go: [`SubmissionSink`], implemented for the real store.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use gongfang_core::{ServiceId, TeamId};
use gongfang_store::{Backend, NewSubmission, Store, SubmissionOutcome};

use crate::error::SubmissionError;

/// A boxed future, so the sink can be a trait object.
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SubmissionError>> + Send + 'a>>;

/// Storage as the submission pipeline needs it.
pub trait SubmissionSink: Send + Sync + 'static {
    /// Stores `batch` atomically; for each row, in order, whether it is new or a duplicate of
    /// (attacker, flag): stored before, or earlier in the same batch. Must return only after
    /// the commit is durable, and must stay right when several batches run at once.
    fn insert_batch<'a>(&'a self, batch: &'a [NewSubmission]) -> SinkFuture<'a, Vec<SubmissionOutcome>>;

    /// How many batches are best committed at once. One by default; more where the database
    /// overlaps one commit's flush with the next batch's work.
    fn commits_in_flight(&self) -> usize {
        1
    }

    /// The team a presented token belongs to.
    fn verify_token<'a>(&'a self, token: &'a str) -> SinkFuture<'a, Option<TeamId>>;

    /// Services of which at least one flag has been captured so far, so first blood is
    /// announced once per drill even across restarts. Asked once, when a server starts; the
    /// writer keeps the set up to date from then on, so each capture costs one set lookup.
    fn captured_services(&self) -> SinkFuture<'_, HashSet<ServiceId>>;
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

    fn commits_in_flight(&self) -> usize {
        match self.backend() {
            // Measured (docs/benchmarks.md): a second batch in flight overlaps one commit's
            // WAL flush with the next batch's inserts on another backend process.
            Backend::Postgres => 2,
            // One writer at a time: a second transaction would only wait on the lock.
            Backend::Sqlite => 1,
        }
    }

    fn verify_token<'a>(&'a self, token: &'a str) -> SinkFuture<'a, Option<TeamId>> {
        Box::pin(async move { Ok(Store::verify_token(self, token).await?) })
    }

    fn captured_services(&self) -> SinkFuture<'_, HashSet<ServiceId>> {
        Box::pin(async move { Ok(Store::captured_services(self).await?.into_iter().collect()) })
    }
}
