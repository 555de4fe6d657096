//! Per-team queues and the group-commit writer.
//!
//! Connections put capture candidates into their team's queue and wait on a oneshot. One writer
//! task drains the queues round-robin, a bounded quantum per team per round, so a team flooding
//! the server delays others by at most one quantum; it hands each batch to the sink, which
//! commits it atomically, and only then answers. A few batches may be committing at once when
//! the database gains from it. Each team's queue is bounded by a semaphore whose permit travels
//! with the row, so a flood pushes back on its own connections, not on memory or on other
//! teams.
//!
//! The writer also remembers which captures of still-valid flags are stored, so a resubmitted
//! flag is answered `DUP` without a round trip to the database, and the batches it does send
//! are expected to be new, which the store inserts more cheaply (and checks all the same).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gongfang_core::NewSubmission;
use gongfang_core::event::GameEvent;
use gongfang_core::{ServiceId, TeamId, Tick};
use gongfang_store::SubmissionOutcome;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, oneshot};
use tokio::task::JoinSet;

use crate::answer::Answer;
use crate::error::SubmissionError;
use crate::sink::SubmissionSink;

/// A row waiting for its commit.
struct Pending {
    row: NewSubmission,
    reply: oneshot::Sender<Answer>,
    permit: OwnedSemaphorePermit,
    enqueued: Instant,
}

#[derive(Default)]
struct Queues {
    teams: HashMap<TeamId, VecDeque<Pending>>,
    /// Teams with queued rows, in round-robin order.
    ring: VecDeque<TeamId>,
    total: usize,
    closed: bool,
}

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterConfig {
    pub linger: Duration,
    pub max_batch: usize,
    pub quantum: usize,
    pub team_queue: usize,
    /// Batches being committed at once (at least 1).
    pub in_flight: usize,
    /// How long a submitter waits for a row's answer before it answers "try again later"
    /// itself. A queued row older than this whose submitter stopped waiting is not stored:
    /// it was never confirmed, and the submitter sends it again.
    pub answer_within: Duration,
}

/// Stored captures of flags that have not expired, as the store's unique constraint names them
/// (attacker and flag), grouped by the tick each flag was planted in so they can be forgotten
/// as they expire: a flag that has expired is answered `OLD` before it reaches the writer, so
/// remembering its captures would only cost memory.
#[derive(Debug)]
pub(crate) struct StoredCaptures {
    lifetime: u32,
    by_planted: BTreeMap<Tick, HashMap<TeamId, HashSet<Box<str>>>>,
}

impl StoredCaptures {
    /// Remembers nothing yet; flags live for `lifetime` ticks.
    pub fn new(lifetime: u32) -> StoredCaptures {
        StoredCaptures { lifetime, by_planted: BTreeMap::new() }
    }

    /// Remembers that `row` is stored.
    pub fn insert(&mut self, row: NewSubmission) {
        let flags = self.by_planted.entry(row.capture.planted).or_default().entry(row.capture.attacker).or_default();
        flags.insert(row.flag.into_boxed_str());
    }

    fn contains(&self, row: &NewSubmission) -> bool {
        self.by_planted
            .get(&row.capture.planted)
            .and_then(|teams| teams.get(&row.capture.attacker))
            .is_some_and(|flags| flags.contains(row.flag.as_str()))
    }

    /// Forgets the captures of flags that have expired by tick `now`.
    fn forget_expired(&mut self, now: Tick) {
        while let Some(entry) = self.by_planted.first_entry() {
            if u64::from(entry.key().0) + u64::from(self.lifetime) > u64::from(now.0) {
                break;
            }
            entry.remove();
        }
    }

    pub fn len(&self) -> usize {
        self.by_planted.values().flat_map(HashMap::values).map(HashSet::len).sum()
    }
}

/// What the writer knows of stored captures, kept up to date as it answers.
struct Known {
    /// Services captured at least once: first blood is announced once per service.
    services: HashSet<ServiceId>,
    stored: StoredCaptures,
    /// Hashes of the captures in the batches being committed, with how many of those batches
    /// hold each. A hash is enough: two captures sharing one only make a batch less likely to
    /// be declared new, which costs time, never a wrong answer.
    committing: HashMap<u64, usize>,
    hasher: std::hash::RandomState,
}

/// The handle connections enqueue through.
pub(crate) struct Writer {
    queues: Mutex<Queues>,
    notify: Notify,
    permits: HashMap<TeamId, Arc<Semaphore>>,
    config: WriterConfig,
    /// Rows handed to the sink and not answered yet.
    committing_rows: AtomicUsize,
    /// When a commit last ended, or work last arrived at an idle writer: with rows waiting,
    /// its age says how long the storage has confirmed nothing.
    progress: Mutex<Instant>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A batch handed to the sink: the rows, and who waits for each.
struct Batch {
    rows: Vec<NewSubmission>,
    waiters: Vec<Waiter>,
}

/// Who waits for a row's answer, and the queue slot it holds until then.
struct Waiter {
    reply: oneshot::Sender<Answer>,
    // Released when the row is answered: the team may then queue another.
    _permit: OwnedSemaphorePermit,
}

impl Writer {
    pub fn new(teams: impl IntoIterator<Item = TeamId>, config: WriterConfig) -> Writer {
        let permits = teams.into_iter().map(|t| (t, Arc::new(Semaphore::new(config.team_queue)))).collect();
        Writer {
            queues: Mutex::new(Queues::default()),
            notify: Notify::new(),
            permits,
            config,
            committing_rows: AtomicUsize::new(0),
            progress: Mutex::new(Instant::now()),
        }
    }

    /// Whether rows wait and the storage has confirmed nothing for half the answer time: a
    /// row queued now would most likely not be answered in time, so it is better refused at
    /// once, with words that make farms send it again.
    fn stalled(&self) -> bool {
        let waiting = self.committing_rows.load(Ordering::Acquire) > 0
            || self.queues.lock().expect("queue lock poisoned").total > 0;
        waiting && self.progress.lock().expect("progress lock poisoned").elapsed() > self.config.answer_within / 2
    }

    fn progressed(&self) {
        *self.progress.lock().expect("progress lock poisoned") = Instant::now();
    }

    /// Queues a capture; the receiver yields its answer once the batch is committed. Waits
    /// while the team already has its maximum of rows in flight. While the storage is stalled
    /// the answer is [`Answer::Busy`] at once.
    pub async fn enqueue(&self, row: NewSubmission) -> oneshot::Receiver<Answer> {
        let (reply, answer) = oneshot::channel();
        if self.stalled() {
            let _ = reply.send(Answer::Busy);
            return answer;
        }
        let Some(semaphore) = self.permits.get(&row.capture.attacker) else {
            // The classifier only passes known attackers; answer rather than panic.
            let _ = reply.send(Answer::Invalid);
            return answer;
        };
        let Ok(permit) = semaphore.clone().acquire_owned().await else {
            let _ = reply.send(Answer::Unavailable);
            return answer;
        };
        let mut q = self.queues.lock().expect("queue lock poisoned");
        if q.closed {
            let _ = reply.send(Answer::Unavailable);
            return answer;
        }
        if q.total == 0 && self.committing_rows.load(Ordering::Acquire) == 0 {
            // Work after an idle spell: the storage's silence is counted from now.
            self.progressed();
        }
        let team = row.capture.attacker;
        let queue = q.teams.entry(team).or_default();
        let was_empty = queue.is_empty();
        queue.push_back(Pending { row, reply, permit, enqueued: Instant::now() });
        if was_empty {
            q.ring.push_back(team);
        }
        q.total += 1;
        drop(q);
        self.notify.notify_one();
        answer
    }

    /// Asks the writer to finish what is queued and stop.
    pub fn close(&self) {
        self.queues.lock().expect("queue lock poisoned").closed = true;
        self.notify.notify_one();
    }

    /// Takes up to `max_batch` rows round-robin, at most `quantum` per team per round.
    fn drain(&self) -> Batch {
        let mut q = self.queues.lock().expect("queue lock poisoned");
        let size = q.total.min(self.config.max_batch);
        let mut batch = Batch { rows: Vec::with_capacity(size), waiters: Vec::with_capacity(size) };
        let mut taken = 0;
        while taken < self.config.max_batch {
            let Some(team) = q.ring.pop_front() else { break };
            let room = self.config.max_batch - taken;
            let queue = q.teams.get_mut(&team).expect("ring names only queued teams");
            let take = queue.len().min(self.config.quantum).min(room);
            for p in queue.drain(..take) {
                if p.reply.is_closed() && p.enqueued.elapsed() >= self.config.answer_within {
                    // Answered "try again later" already: storing it now would turn the
                    // resubmission the farm was asked for into a DUP.
                    continue;
                }
                batch.rows.push(p.row);
                batch.waiters.push(Waiter { reply: p.reply, _permit: p.permit });
            }
            taken += take;
            if !queue.is_empty() {
                q.ring.push_back(team);
            }
        }
        q.total -= taken;
        batch
    }

    fn queued(&self) -> (usize, bool) {
        let q = self.queues.lock().expect("queue lock poisoned");
        (q.total, q.closed)
    }

    /// The writer task: runs until closed and drained.
    ///
    /// Up to `in_flight` batches are committed at once (PostgreSQL overlaps one batch's
    /// commit with the next one's work; SQLite has one writer at a time anyway). Rows that
    /// arrive while a commit runs form the next batch as soon as a slot is free; only after
    /// an idle spell does the writer linger, so a burst's first flag does not commit alone.
    ///
    /// `captured` and `stored` are what the store held when the server started: the services
    /// captured so far, and the captures of flags that may still be submitted.
    pub async fn run(
        self: Arc<Self>,
        sink: Arc<dyn SubmissionSink>,
        events: broadcast::Sender<GameEvent>,
        captured: HashSet<ServiceId>,
        stored: StoredCaptures,
    ) {
        let mut known =
            Known { services: captured, stored, committing: HashMap::new(), hasher: std::hash::RandomState::new() };
        let depth = self.config.in_flight.max(1);
        type Committed = (Batch, Vec<u64>, Result<Vec<SubmissionOutcome>, SubmissionError>);
        let mut commits: JoinSet<Committed> = JoinSet::new();
        let mut idle = true;
        loop {
            let (total, closed) = self.queued();
            if total > 0 && commits.len() < depth {
                if idle
                    && commits.is_empty()
                    && total < self.config.max_batch
                    && !closed
                    && !self.config.linger.is_zero()
                {
                    // Group commit: give concurrent submitters a moment to join this batch.
                    tokio::time::sleep(self.config.linger).await;
                }
                idle = false;
                let Some((batch, hashes, expect_new)) = known.answer_stored(self.drain()) else { continue };
                self.committing_rows.fetch_add(batch.rows.len(), Ordering::AcqRel);
                // Counted down however the commit ends, a panic included.
                let counted = Committing { writer: self.clone(), rows: batch.rows.len() };
                let sink = sink.clone();
                commits.spawn(async move {
                    let _counted = counted;
                    let started = std::time::Instant::now();
                    let result = sink.insert_batch(&batch.rows, expect_new).await;
                    let elapsed = started.elapsed();
                    crate::metrics::committed(elapsed, if result.is_ok() { batch.rows.len() } else { 0 });
                    tracing::trace!(
                        rows = batch.rows.len(),
                        elapsed_us = elapsed.as_micros() as u64,
                        "batch committed"
                    );
                    (batch, hashes, result)
                });
                continue;
            }
            if total == 0 && commits.is_empty() {
                if closed {
                    break;
                }
                idle = true;
                self.notify.notified().await;
                continue;
            }
            tokio::select! {
                Some(done) = commits.join_next() => match done {
                    Ok((batch, hashes, result)) => {
                        self.progressed();
                        known.answer(batch, hashes, result, &events);
                    }
                    // Its waiters were dropped with it: they answer ERR, nothing was claimed.
                    Err(error) => {
                        self.progressed();
                        tracing::error!(%error, "a submission commit task failed");
                    }
                },
                () = self.notify.notified(), if commits.len() < depth => {}
            }
        }
        tracing::debug!("submission writer stopped");
    }
}

/// Rows of one batch counted as being committed, until dropped.
struct Committing {
    writer: Arc<Writer>,
    rows: usize,
}

impl Drop for Committing {
    fn drop(&mut self) {
        self.writer.committing_rows.fetch_sub(self.rows, Ordering::AcqRel);
    }
}

impl Known {
    /// Answers `DUP` to the rows of `batch` known to be stored and returns the others, if any,
    /// with their hashes (to release when they are answered) and whether they are expected to
    /// be new: none of them is being committed already.
    fn answer_stored(&mut self, batch: Batch) -> Option<(Batch, Vec<u64>, bool)> {
        if let Some(newest) = batch.rows.iter().map(|r| r.capture.submitted).max() {
            self.stored.forget_expired(newest);
        }
        let mut rest =
            Batch { rows: Vec::with_capacity(batch.rows.len()), waiters: Vec::with_capacity(batch.rows.len()) };
        for (row, waiter) in batch.rows.into_iter().zip(batch.waiters) {
            if self.stored.contains(&row) {
                let _ = waiter.reply.send(Answer::Duplicate);
            } else {
                rest.rows.push(row);
                rest.waiters.push(waiter);
            }
        }
        if rest.rows.is_empty() {
            return None;
        }
        // A flag twice in this batch does not count: the store sees that without the database.
        let hashes: Vec<u64> = rest.rows.iter().map(|row| self.hash(row)).collect();
        let expect_new = hashes.iter().all(|h| !self.committing.contains_key(h));
        for &h in &hashes {
            *self.committing.entry(h).or_default() += 1;
        }
        Some((rest, hashes, expect_new))
    }

    fn hash(&self, row: &NewSubmission) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((row.capture.attacker, row.flag.as_str()))
    }

    /// Answers every row of a committed (or failed) batch, in batch order; `hashes` are its
    /// rows' from [`Known::answer_stored`].
    fn answer(
        &mut self,
        batch: Batch,
        hashes: Vec<u64>,
        result: Result<Vec<SubmissionOutcome>, SubmissionError>,
        events: &broadcast::Sender<GameEvent>,
    ) {
        for h in hashes {
            if let Some(count) = self.committing.get_mut(&h) {
                *count -= 1;
                if *count == 0 {
                    self.committing.remove(&h);
                }
            }
        }
        for row in answer(batch, result, events, &mut self.services) {
            self.stored.insert(row);
        }
    }
}

/// Answers every row of a committed (or failed) batch, in batch order, and returns the rows
/// now stored (new or stored before).
fn answer(
    batch: Batch,
    result: Result<Vec<SubmissionOutcome>, SubmissionError>,
    events: &broadcast::Sender<GameEvent>,
    captured: &mut HashSet<ServiceId>,
) -> Vec<NewSubmission> {
    let outcomes = match result {
        Ok(outcomes) if outcomes.len() == batch.rows.len() => Some(outcomes),
        Ok(outcomes) => {
            let error = SubmissionError::OutcomeCount { expected: batch.rows.len(), got: outcomes.len() };
            tracing::error!(%error, "submission batch answered wrongly");
            None
        }
        Err(error) => {
            // Nothing of this batch is stored: every row gets ERR and may be resubmitted.
            tracing::error!(%error, rows = batch.rows.len(), "submission batch failed");
            None
        }
    };
    for (i, (row, waiter)) in batch.rows.iter().zip(batch.waiters).enumerate() {
        let answer = match outcomes.as_ref().map(|o| o[i]) {
            Some(SubmissionOutcome::New) => {
                publish_capture(row, events, captured);
                Answer::Accepted
            }
            Some(SubmissionOutcome::Duplicate) => Answer::Duplicate,
            None => Answer::Unavailable,
        };
        // The submitter may have gone away; its flag is stored regardless.
        let _ = waiter.reply.send(answer);
    }
    if outcomes.is_some() { batch.rows } else { Vec::new() }
}

fn publish_capture(row: &NewSubmission, events: &broadcast::Sender<GameEvent>, captured: &mut HashSet<ServiceId>) {
    // No receivers is fine: events are for whoever listens.
    let _ = events.send(GameEvent::FlagCaptured {
        tick: row.capture.submitted,
        attacker: row.capture.attacker,
        victim: row.capture.victim,
        service: row.capture.service,
        store: row.capture.store,
        planted: row.capture.planted,
    });
    if captured.insert(row.capture.service) {
        tracing::info!(service = %row.capture.service, attacker = %row.capture.attacker, "first blood");
        let _ = events.send(GameEvent::FirstBlood {
            tick: row.capture.submitted,
            attacker: row.capture.attacker,
            victim: row.capture.victim,
            service: row.capture.service,
        });
    }
}

#[cfg(test)]
mod tests {
    use gongfang_core::StoreIdx;

    use gongfang_core::scoring::Capture;

    use super::*;
    use crate::error::SubmissionError;
    use crate::sink::SinkFuture;

    /// Records the rows of each batch and, like the store, says a row is new the first time
    /// its (attacker, flag) is seen.
    #[derive(Default)]
    struct Recording(Mutex<Recorded>);

    type Key = (TeamId, String);

    #[derive(Default)]
    struct Recorded {
        batches: Vec<Vec<Key>>,
        expect_new: Vec<bool>,
        seen: HashSet<Key>,
    }

    impl Recording {
        fn batches(&self) -> Vec<Vec<Key>> {
            self.0.lock().unwrap().batches.clone()
        }
    }

    impl SubmissionSink for Recording {
        fn insert_batch<'a>(
            &'a self,
            batch: &'a [NewSubmission],
            expect_new: bool,
        ) -> SinkFuture<'a, Vec<SubmissionOutcome>> {
            let mut state = self.0.lock().unwrap();
            state.batches.push(batch.iter().map(|r| (r.capture.attacker, r.flag.clone())).collect());
            state.expect_new.push(expect_new);
            let outcomes = batch
                .iter()
                .map(|r| {
                    if state.seen.insert((r.capture.attacker, r.flag.clone())) {
                        SubmissionOutcome::New
                    } else {
                        SubmissionOutcome::Duplicate
                    }
                })
                .collect();
            Box::pin(async move { Ok(outcomes) })
        }
        fn verify_token<'a>(&'a self, _: &'a str) -> SinkFuture<'a, Option<TeamId>> {
            Box::pin(async { Ok(None) })
        }
        fn captured_services(&self) -> SinkFuture<'_, HashSet<ServiceId>> {
            Box::pin(async { Err(SubmissionError::Closed) })
        }
        fn submissions_planted_since(&self, _: Tick) -> SinkFuture<'_, Vec<NewSubmission>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    fn row(attacker: u16, n: usize) -> NewSubmission {
        NewSubmission {
            capture: Capture {
                attacker: TeamId(attacker),
                victim: TeamId(9),
                service: ServiceId(1),
                store: StoreIdx(0),
                planted: Tick(1),
                submitted: Tick(1),
            },
            flag: format!("F{n}"),
            submitted_at: chrono::Utc::now(),
        }
    }

    const LIFETIME: u32 = 5;

    fn config() -> WriterConfig {
        WriterConfig {
            linger: Duration::ZERO,
            max_batch: 100,
            quantum: 10,
            team_queue: 100_000,
            in_flight: 1,
            answer_within: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn a_flooding_team_does_not_starve_another() {
        let writer = Arc::new(Writer::new([TeamId(1), TeamId(2)], config()));
        let mut flood = Vec::new();
        for n in 0..10_000 {
            flood.push(writer.enqueue(row(1, n)).await);
        }
        let mut small = Vec::new();
        for n in 0..5 {
            small.push(writer.enqueue(row(2, n)).await);
        }
        let sink = Arc::new(Recording::default());
        let (events, _) = broadcast::channel(16);
        let task =
            tokio::spawn(writer.clone().run(sink.clone(), events, HashSet::new(), StoredCaptures::new(LIFETIME)));
        for rx in small {
            assert_eq!(rx.await.unwrap(), Answer::Accepted);
        }
        for rx in flood {
            assert_eq!(rx.await.unwrap(), Answer::Accepted);
        }
        writer.close();
        task.await.unwrap();
        let batches = sink.batches();
        // Team 2 queued behind 10,000 rows, yet all its rows went into the first commit.
        assert_eq!(batches[0].iter().filter(|(t, _)| *t == TeamId(2)).count(), 5);
        assert!(batches.iter().all(|b| b.len() <= 100));
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 10_005);
    }

    #[tokio::test]
    async fn a_flag_twice_in_one_batch_is_stored_once() {
        let writer = Arc::new(Writer::new([TeamId(1), TeamId(2)], config()));
        let first = writer.enqueue(row(1, 7)).await;
        let again = writer.enqueue(row(1, 7)).await;
        let other_team = writer.enqueue(row(2, 7)).await;
        let sink = Arc::new(Recording::default());
        let (events, mut rx) = broadcast::channel(16);
        let task =
            tokio::spawn(writer.clone().run(sink.clone(), events, HashSet::new(), StoredCaptures::new(LIFETIME)));
        assert_eq!(first.await.unwrap(), Answer::Accepted);
        assert_eq!(again.await.unwrap(), Answer::Duplicate);
        assert_eq!(other_team.await.unwrap(), Answer::Accepted);
        writer.close();
        task.await.unwrap();
        let batches = sink.batches();
        // The sink sees every row and decides; the writer maps its outcomes back in order.
        assert_eq!(
            batches,
            vec![vec![(TeamId(1), "F7".to_owned()), (TeamId(1), "F7".to_owned()), (TeamId(2), "F7".to_owned())]]
        );
        // Two captures, one first blood for the service.
        let mut kinds = Vec::new();
        while let Ok(e) = rx.try_recv() {
            kinds.push(matches!(e, GameEvent::FirstBlood { .. }));
        }
        assert_eq!(kinds, vec![false, true, false]);
    }

    #[tokio::test]
    async fn a_failed_commit_answers_err_and_later_writes_resume() {
        struct Failing(std::sync::atomic::AtomicBool);
        impl SubmissionSink for Failing {
            fn insert_batch<'a>(
                &'a self,
                batch: &'a [NewSubmission],
                _: bool,
            ) -> SinkFuture<'a, Vec<SubmissionOutcome>> {
                let fail = self.0.swap(false, std::sync::atomic::Ordering::SeqCst);
                Box::pin(async move {
                    if fail { Err(SubmissionError::Closed) } else { Ok(vec![SubmissionOutcome::New; batch.len()]) }
                })
            }
            fn verify_token<'a>(&'a self, _: &'a str) -> SinkFuture<'a, Option<TeamId>> {
                Box::pin(async { Ok(None) })
            }
            fn captured_services(&self) -> SinkFuture<'_, HashSet<ServiceId>> {
                Box::pin(async { Ok(HashSet::new()) })
            }
            fn submissions_planted_since(&self, _: Tick) -> SinkFuture<'_, Vec<NewSubmission>> {
                Box::pin(async { Ok(Vec::new()) })
            }
        }
        let writer = Arc::new(Writer::new([TeamId(1)], config()));
        let lost = writer.enqueue(row(1, 1)).await;
        let (events, _) = broadcast::channel(16);
        let task = tokio::spawn(writer.clone().run(
            Arc::new(Failing(std::sync::atomic::AtomicBool::new(true))),
            events,
            HashSet::new(),
            StoredCaptures::new(LIFETIME),
        ));
        assert_eq!(lost.await.unwrap(), Answer::Unavailable);
        assert_eq!(writer.enqueue(row(1, 1)).await.await.unwrap(), Answer::Accepted);
        writer.close();
        task.await.unwrap();
        // Once closed, nothing is queued any more.
        assert_eq!(writer.enqueue(row(1, 2)).await.await.unwrap(), Answer::Unavailable);
    }

    /// Holds every commit until the test releases it, and notes when each started.
    struct Gate {
        started: Mutex<Vec<tokio::time::Instant>>,
        expect_new: Mutex<Vec<bool>>,
        release: Semaphore,
        calls: Notify,
    }

    impl Gate {
        fn new() -> Gate {
            Gate {
                started: Mutex::new(Vec::new()),
                expect_new: Mutex::new(Vec::new()),
                release: Semaphore::new(0),
                calls: Notify::new(),
            }
        }

        /// Waits until `n` commits have started.
        async fn started(&self, n: usize) -> Vec<tokio::time::Instant> {
            loop {
                let notified = self.calls.notified();
                let started = self.started.lock().unwrap().clone();
                if started.len() >= n {
                    return started;
                }
                notified.await;
            }
        }
    }

    impl SubmissionSink for Gate {
        fn insert_batch<'a>(
            &'a self,
            batch: &'a [NewSubmission],
            expect_new: bool,
        ) -> SinkFuture<'a, Vec<SubmissionOutcome>> {
            Box::pin(async move {
                self.expect_new.lock().unwrap().push(expect_new);
                self.started.lock().unwrap().push(tokio::time::Instant::now());
                self.calls.notify_waiters();
                self.release.acquire().await.unwrap().forget();
                Ok(vec![SubmissionOutcome::New; batch.len()])
            })
        }
        fn verify_token<'a>(&'a self, _: &'a str) -> SinkFuture<'a, Option<TeamId>> {
            Box::pin(async { Ok(None) })
        }
        fn captured_services(&self) -> SinkFuture<'_, HashSet<ServiceId>> {
            Box::pin(async { Ok(HashSet::new()) })
        }
        fn submissions_planted_since(&self, _: Tick) -> SinkFuture<'_, Vec<NewSubmission>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    #[tokio::test]
    async fn two_batches_commit_at_once_when_allowed() {
        for in_flight in [1, 2] {
            let writer = Arc::new(Writer::new([TeamId(1)], WriterConfig { max_batch: 1, in_flight, ..config() }));
            let a = writer.enqueue(row(1, 1)).await;
            let b = writer.enqueue(row(1, 2)).await;
            let c = writer.enqueue(row(1, 3)).await;
            let gate = Arc::new(Gate::new());
            let (events, _) = broadcast::channel(16);
            let task =
                tokio::spawn(writer.clone().run(gate.clone(), events, HashSet::new(), StoredCaptures::new(LIFETIME)));
            gate.started(in_flight).await;
            // Let the writer start whatever else it would start before looking.
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            assert_eq!(gate.started.lock().unwrap().len(), in_flight, "commits started with {in_flight} allowed");
            gate.release.add_permits(3);
            for rx in [a, b, c] {
                assert_eq!(rx.await.unwrap(), Answer::Accepted);
            }
            writer.close();
            task.await.unwrap();
        }
    }

    // In paused time the linger passes at once instead of holding the test up.
    #[tokio::test(start_paused = true)]
    async fn lingers_after_an_idle_spell() {
        let linger = Duration::from_secs(60);
        let writer = Arc::new(Writer::new([TeamId(1)], WriterConfig { linger, ..config() }));
        let gate = Arc::new(Gate::new());
        gate.release.add_permits(1);
        let (events, _) = broadcast::channel(16);
        let task =
            tokio::spawn(writer.clone().run(gate.clone(), events, HashSet::new(), StoredCaptures::new(LIFETIME)));
        let enqueued = tokio::time::Instant::now();
        let first = writer.enqueue(row(1, 1)).await;
        assert_eq!(first.await.unwrap(), Answer::Accepted);
        let started = gate.started(1).await;
        assert!(started[0] - enqueued >= linger, "the first flag after idling waits for company");
        writer.close();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_linger_behind_a_commit() {
        // Were the writer to linger here, the test would time out long before the linger ends
        // (in paused time, at once).
        let config = WriterConfig { linger: Duration::from_secs(3600), max_batch: 2, ..config() };
        let writer = Arc::new(Writer::new([TeamId(1)], config));
        // A full batch goes out at once, lingering or not.
        let full = [writer.enqueue(row(1, 1)).await, writer.enqueue(row(1, 2)).await];
        let gate = Arc::new(Gate::new());
        let (events, _) = broadcast::channel(16);
        let task =
            tokio::spawn(writer.clone().run(gate.clone(), events, HashSet::new(), StoredCaptures::new(LIFETIME)));
        gate.started(1).await;
        // One flag arrives while that batch commits: it goes out as soon as the commit ends.
        let late = writer.enqueue(row(1, 3)).await;
        gate.release.add_permits(2);
        let answers = async {
            for rx in full {
                assert_eq!(rx.await.unwrap(), Answer::Accepted);
            }
            late.await.unwrap()
        };
        let late = tokio::time::timeout(Duration::from_secs(20), answers).await.expect("no linger behind a commit");
        assert_eq!(late, Answer::Accepted);
        writer.close();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_stored_capture_is_answered_without_the_database() {
        let writer = Arc::new(Writer::new([TeamId(1)], config()));
        let mut stored = StoredCaptures::new(LIFETIME);
        stored.insert(row(1, 7));
        let sink = Arc::new(Recording::default());
        let (events, _) = broadcast::channel(16);
        let task = tokio::spawn(writer.clone().run(sink.clone(), events, HashSet::new(), stored));
        // Stored before the server started.
        assert_eq!(writer.enqueue(row(1, 7)).await.await.unwrap(), Answer::Duplicate);
        // Stored by this server.
        assert_eq!(writer.enqueue(row(1, 8)).await.await.unwrap(), Answer::Accepted);
        assert_eq!(writer.enqueue(row(1, 8)).await.await.unwrap(), Answer::Duplicate);
        writer.close();
        task.await.unwrap();
        assert_eq!(sink.batches(), vec![vec![(TeamId(1), "F8".to_owned())]], "only the new flag reached the sink");
        assert_eq!(sink.0.lock().unwrap().expect_new, vec![true]);
    }

    #[tokio::test]
    async fn a_flag_being_committed_is_not_expected_new_in_the_next_batch() {
        let writer = Arc::new(Writer::new([TeamId(1)], WriterConfig { max_batch: 2, in_flight: 2, ..config() }));
        // One batch with a flag twice: that alone does not lower the expectation.
        let first = [writer.enqueue(row(1, 1)).await, writer.enqueue(row(1, 1)).await];
        let gate = Arc::new(Gate::new());
        let (events, _) = broadcast::channel(16);
        let task =
            tokio::spawn(writer.clone().run(gate.clone(), events, HashSet::new(), StoredCaptures::new(LIFETIME)));
        gate.started(1).await;
        // The same flag again while the first batch commits.
        let again = writer.enqueue(row(1, 1)).await;
        gate.started(2).await;
        gate.release.add_permits(2);
        for rx in first {
            rx.await.unwrap();
        }
        again.await.unwrap();
        writer.close();
        task.await.unwrap();
        assert_eq!(*gate.expect_new.lock().unwrap(), vec![true, false]);
    }

    #[test]
    fn captures_of_expired_flags_are_forgotten() {
        let mut stored = StoredCaptures::new(LIFETIME);
        for planted in [1, 2, 3] {
            let mut row = row(1, planted as usize);
            row.capture.planted = Tick(planted);
            stored.insert(row);
        }
        stored.forget_expired(Tick(5));
        assert_eq!(stored.len(), 3, "a flag planted in tick 1 is valid through tick 5");
        stored.forget_expired(Tick(6));
        assert_eq!(stored.len(), 2);
        let planted = |tick: u32, n: usize| {
            let mut row = row(1, n);
            row.capture.planted = Tick(tick);
            row
        };
        assert!(!stored.contains(&planted(1, 1)));
        assert!(stored.contains(&planted(2, 2)));
    }
}
