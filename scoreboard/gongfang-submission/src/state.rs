//! The shared state of a submission server: scenario facts, limits, the writer handle.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gongfang_core::NewSubmission;
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::{Identify, Ipv4Net, Scenario};
use gongfang_core::scoring::Capture;
use gongfang_core::{FlagCodec, TeamId, Tick};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

use crate::answer::Answer;
use crate::auth::{ConnectionCounter, RateLimiter, TokenCache};
use crate::classify::{Classified, Classifier};
use crate::error::SubmissionError;
use crate::sink::SubmissionSink;
use crate::writer::{StoredCaptures, Writer, WriterConfig};
use gongfang_core::clock::DrillClock;

/// Limits and tuning. The scenario's `[submission]` table supplies identification, the HTTP
/// rate limit and connections per team; the rest has sensible defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Longest accepted TCP line, without its line ending. Flags are about 45 bytes.
    pub max_line: usize,
    /// A TCP connection with nothing pending that sends no complete line for this long, or
    /// does not read its answers for this long, is closed.
    pub idle_timeout: Duration,
    /// Flags one TCP connection may have in flight (pipelined) before the server stops reading.
    pub pipeline_window: usize,
    /// Rows one team may have waiting for a commit, over all its connections.
    pub team_queue: usize,
    /// After an idle spell, how long the writer waits for more rows before committing a small
    /// batch. Rows that arrive while a commit runs go out as soon as it ends, without waiting.
    pub linger: Duration,
    /// Most rows per transaction.
    pub max_batch: usize,
    /// Longest a flag waits for its commit before it is answered `ERR` "try again later":
    /// exploit farms give up on a server after 2 to 5 s without an answer. While the storage
    /// has confirmed nothing for half this long, new flags get that answer at once.
    pub answer_within: Duration,
    /// Most rows the writer takes from one team before serving the next.
    pub quantum: usize,
    /// Batches committed at once; `None` asks the storage (2 on PostgreSQL, 1 on SQLite).
    pub commits_in_flight: Option<usize>,
    /// Most flags in one HTTP request.
    pub http_max_flags: usize,
    /// Largest HTTP request body.
    pub http_max_body: usize,
    /// How long a verified team token is trusted without asking the store again.
    pub token_ttl: Duration,
    /// How long a token-mode TCP client has to send its token.
    pub token_timeout: Duration,
    /// The first banner line of the TCP server.
    pub banner: String,
    /// Most TCP connections open at once, over all clients. Counted from accept, before the
    /// client says who it is, so with the per-address cap it bounds the file descriptors and
    /// memory the TCP server can be made to hold. `gongfang` derives it from the process's
    /// open-file limit.
    pub max_connections: usize,
    /// Most TCP connections open at once from one source address (an IPv6 client counts by its
    /// /64). Above it a connection is told so in one line and closed before anything else.
    pub max_connections_per_address: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_line: 256,
            idle_timeout: Duration::from_secs(120),
            pipeline_window: 4096,
            team_queue: 20_000,
            linger: Duration::from_millis(1),
            max_batch: 5_000,
            answer_within: Duration::from_secs(1),
            quantum: 500,
            commits_in_flight: None,
            http_max_flags: gongfang_core::wire::MAX_FLAGS_PER_PUT,
            http_max_body: 64 * 1024,
            token_ttl: Duration::from_secs(60),
            token_timeout: Duration::from_secs(30),
            banner: "Gongfang flag submission server".to_owned(),
            max_connections: 4_096,
            max_connections_per_address: 256,
        }
    }
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub identify: Identify,
    pub classifier: Classifier,
    pub scenario: Scenario,
    pub clock: watch::Receiver<DrillClock>,
    pub writer: Arc<Writer>,
    pub sink: Arc<dyn SubmissionSink>,
    pub tokens: TokenCache,
    pub rate: RateLimiter,
    pub connections: ConnectionCounter,
    /// The failure back-off for wrong tokens: shared with the drill's other servers once
    /// [`SubmissionState::with_backoff`] gives one, else made on first use.
    pub backoff: std::sync::OnceLock<Arc<gongfang_core::throttle::Backoff>>,
    /// The teams' WireGuard address blocks, from [`SubmissionState::with_vpn_addresses`]:
    /// a connection from a block counts for its team. Replaced whole when the plan changes.
    pub vpn_blocks: std::sync::RwLock<Arc<[(Ipv4Net, TeamId)]>>,
}

/// Everything the TCP and HTTP front ends share. Cheap to clone.
#[derive(Clone)]
pub struct SubmissionState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for SubmissionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmissionState").field("identify", &self.inner.identify).finish_non_exhaustive()
    }
}

impl SubmissionState {
    /// Builds the pipeline and spawns its group-commit writer on the current runtime.
    ///
    /// Loads which services have been captured already (for first blood) and the stored
    /// captures of flags that may still be submitted (their resubmissions are answered without
    /// the database), so call it after the store is migrated. The returned task ends after
    /// [`SubmissionState::close`] once every queued row is answered.
    pub async fn start(
        scenario: &Scenario,
        codec: FlagCodec,
        sink: Arc<dyn SubmissionSink>,
        clock: watch::Receiver<DrillClock>,
        events: broadcast::Sender<GameEvent>,
        settings: Settings,
    ) -> Result<(SubmissionState, JoinHandle<()>), SubmissionError> {
        let captured = sink.captured_services().await?;
        // The flags that may still be submitted were planted in the last `lifetime` ticks.
        let lifetime = scenario.drill.flag_lifetime;
        let oldest_valid = Tick(clock.borrow().current_tick().0.saturating_sub(lifetime.saturating_sub(1)));
        let mut stored = StoredCaptures::new(lifetime);
        for row in sink.submissions_planted_since(oldest_valid).await? {
            stored.insert(row);
        }
        tracing::debug!(since = %oldest_valid, captures = stored.len(), "stored captures of valid flags loaded");
        let config = WriterConfig {
            linger: settings.linger,
            max_batch: settings.max_batch.max(1),
            quantum: settings.quantum.max(1),
            team_queue: settings.team_queue.max(1),
            answer_within: settings.answer_within,
            in_flight: settings.commits_in_flight.unwrap_or_else(|| sink.commits_in_flight()).max(1),
        };
        let writer = Arc::new(Writer::new(scenario.teams.iter().map(|t| t.id), config));
        let task = tokio::spawn(writer.clone().run(sink.clone(), events, captured, stored));
        let inner = Inner {
            identify: scenario.submission.identify,
            classifier: Classifier::new(scenario, codec),
            rate: RateLimiter::new(scenario.submission.rate_limit),
            connections: ConnectionCounter::new(scenario.submission.max_connections),
            tokens: TokenCache::new(settings.token_ttl),
            backoff: std::sync::OnceLock::new(),
            vpn_blocks: std::sync::RwLock::new(Arc::from(Vec::new())),
            scenario: scenario.clone(),
            settings,
            clock,
            writer,
            sink,
        };
        Ok((SubmissionState { inner: Arc::new(inner) }, task))
    }

    /// Stops the writer once what is queued is committed; later submissions get `ERR`.
    pub fn close(&self) {
        self.inner.writer.close();
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The team a presented token belongs to (cached after the first verification).
    pub async fn team_by_token(&self, token: &str) -> Result<Option<TeamId>, SubmissionError> {
        self.inner.tokens.verify(&*self.inner.sink, token).await
    }

    /// Counts connections from the teams' WireGuard tunnel addresses (one block per team, as
    /// the drill's address plan hands them out) for their teams in address mode. Replaces the
    /// blocks given before, also for a state that is already serving: the servers share it.
    pub fn with_vpn_addresses(self, blocks: Vec<(Ipv4Net, TeamId)>) -> SubmissionState {
        let blocks: Arc<[(Ipv4Net, TeamId)]> = Arc::from(blocks);
        *self.inner.vpn_blocks.write().unwrap_or_else(std::sync::PoisonError::into_inner) = blocks;
        self
    }

    /// The team whose game network holds `ip`, else the team whose WireGuard block holds it.
    pub fn team_by_address(&self, ip: Ipv4Addr) -> Option<TeamId> {
        if let Some(team) = self.inner.scenario.team_by_address(ip) {
            return Some(team.id);
        }
        let blocks = self.inner.vpn_blocks.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        blocks.iter().find(|(net, _)| net.contains(ip)).map(|&(_, team)| team)
    }

    pub(crate) fn clock(&self) -> DrillClock {
        *self.inner.clock.borrow()
    }

    /// Runs one flag, received at `received`, through the pipeline.
    pub(crate) async fn submit(
        &self,
        attacker: TeamId,
        flag: &[u8],
        clock: DrillClock,
        received: DateTime<Utc>,
    ) -> Verdict {
        match self.inner.classifier.classify(attacker, flag, clock) {
            Classified::Final(answer) => Verdict::Now(answer),
            Classified::Capture(info) => {
                // Classification parsed it as a flag, so it is ASCII.
                let Ok(flag) = std::str::from_utf8(flag) else { return Verdict::Now(Answer::Invalid) };
                let row = NewSubmission {
                    capture: Capture {
                        attacker,
                        victim: info.team,
                        service: info.service,
                        store: info.store,
                        planted: info.tick,
                        submitted: clock.current_tick(),
                    },
                    flag: flag.to_owned(),
                    submitted_at: received,
                };
                Verdict::Later(self.inner.writer.enqueue(row).await)
            }
        }
    }
}

/// An answer now, or after the commit.
#[derive(Debug)]
pub(crate) enum Verdict {
    Now(Answer),
    Later(oneshot::Receiver<Answer>),
}

impl Verdict {
    pub async fn resolve(self) -> Answer {
        match self {
            Verdict::Now(a) => a,
            // The writer drops a reply only when it is gone: the flag was not stored.
            Verdict::Later(rx) => rx.await.unwrap_or(Answer::Unavailable),
        }
    }
}
