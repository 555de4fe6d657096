//! Where accepted submissions go: [`SubmissionSink`], implemented for the real store.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use gongfang_core::NewSubmission;
use gongfang_core::{ServiceId, TeamId, Tick};
use gongfang_store::{Backend, SessionHolder, Store, SubmissionOutcome};

use crate::error::SubmissionError;

/// A boxed future, so the sink can be a trait object.
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SubmissionError>> + Send + 'a>>;

/// Storage as the submission pipeline needs it.
pub trait SubmissionSink: Send + Sync + 'static {
    /// Stores `batch` atomically; for each row, in order, whether it is new or a duplicate of
    /// (attacker, flag): stored before, or earlier in the same batch. Must return only after
    /// the commit is durable, and must stay right when several batches run at once.
    /// `expect_new` says the writer knows none of the rows to be stored or being stored: a
    /// hint the sink may optimise for, never a promise it may rely on.
    fn insert_batch<'a>(
        &'a self,
        batch: &'a [NewSubmission],
        expect_new: bool,
    ) -> SinkFuture<'a, Vec<SubmissionOutcome>>;

    /// How many batches are best committed at once. One by default; more where the database
    /// overlaps one commit's flush with the next batch's work.
    fn commits_in_flight(&self) -> usize {
        1
    }

    /// The team a presented token belongs to.
    fn verify_token<'a>(&'a self, token: &'a str) -> SinkFuture<'a, Option<TeamId>>;

    /// The team a token refused by [`SubmissionSink::verify_token`] belongs to, when it is a
    /// team's own but the team was taken out of the drill: it is told why, and its refusals
    /// count as no one's wrong guesses. A sink that takes no team out knows none.
    fn disabled_owner<'a>(&'a self, token: &'a str) -> SinkFuture<'a, Option<TeamId>> {
        let _ = token;
        Box::pin(async { Ok(None) })
    }

    /// The team whose open portal session `session` is, if `csrf` is that session's CSRF
    /// token (a flag form in the team's portal). A sink without browser sessions knows none.
    fn session_team<'a>(&'a self, session: &'a str, csrf: &'a str) -> SinkFuture<'a, Option<TeamId>> {
        let _ = (session, csrf);
        Box::pin(async { Ok(None) })
    }

    /// Services of which at least one flag has been captured so far, so first blood is
    /// announced once per drill even across restarts. Asked once, when a server starts; the
    /// writer keeps the set up to date from then on, so each capture costs one set lookup.
    fn captured_services(&self) -> SinkFuture<'_, HashSet<ServiceId>>;

    /// The stored submissions of flags planted in tick `since` or later, so a starting server
    /// answers resubmissions of flags that may still be submitted without asking again.
    fn submissions_planted_since(&self, since: Tick) -> SinkFuture<'_, Vec<NewSubmission>>;
}

impl SubmissionSink for Store {
    fn insert_batch<'a>(
        &'a self,
        batch: &'a [NewSubmission],
        expect_new: bool,
    ) -> SinkFuture<'a, Vec<SubmissionOutcome>> {
        Box::pin(async move {
            let outcomes = if expect_new {
                self.insert_new_submissions(batch).await?
            } else {
                self.insert_submissions(batch).await?
            };
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

    fn disabled_owner<'a>(&'a self, token: &'a str) -> SinkFuture<'a, Option<TeamId>> {
        Box::pin(async move { Ok(self.token_owner(token).await?.filter(|o| o.disabled).map(|o| o.team)) })
    }

    fn session_team<'a>(&'a self, session: &'a str, csrf: &'a str) -> SinkFuture<'a, Option<TeamId>> {
        Box::pin(async move {
            if !self.csrf_matches(session, csrf).await? {
                return Ok(None);
            }
            match self.session(session, chrono::Utc::now()).await? {
                Some(SessionHolder::Team(team)) => Ok(Some(team)),
                _ => Ok(None),
            }
        })
    }

    fn captured_services(&self) -> SinkFuture<'_, HashSet<ServiceId>> {
        Box::pin(async move { Ok(Store::captured_services(self).await?.into_iter().collect()) })
    }

    fn submissions_planted_since(&self, since: Tick) -> SinkFuture<'_, Vec<NewSubmission>> {
        Box::pin(async move {
            Ok(Store::submissions_planted_since(self, since).await?.into_iter().map(|s| s.submission).collect())
        })
    }
}
