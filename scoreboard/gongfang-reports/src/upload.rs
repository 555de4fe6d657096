//! Reading a filing: a JSON report, or multipart/form-data with a `report` part and
//! `evidence` files. Sizes are enforced while the body streams in (a declared length over the
//! limit is refused before a byte is read), and each file's content type must be on the
//! allow-list and match the file's bytes.
//!
//! Evidence is streamed into the store as it arrives: hashed (SHA-256) and checked on the way,
//! and written one chunk (at most [`EVIDENCE_CHUNK`] bytes) per short transaction, so a file is
//! never held in memory whole, and never twice. Each team has a budget of evidence bytes over
//! the drill and may upload only a few filings at once ([`Uploads`]); a filing that fails or is
//! cut off has what it wrote deleted ([`Staged`]).

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use bytes::{Buf, Bytes};
use gongfang_core::TeamId;
use gongfang_core::report::ReportDraft;
use gongfang_store::Store;
use gongfang_store::reports::{EVIDENCE_CHUNK, StagedEvidence};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::error::ReportsError;
use crate::state::ReportsState;

/// Longest evidence file name kept.
const MAX_FILE_NAME: usize = 200;

/// The request's media type, lowercase, without parameters (`""` when absent).
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

/// The most bytes a filing request may have.
pub(crate) fn filing_limit(state: &ReportsState) -> u64 {
    state.scenario().reports.max_evidence_bytes + state.settings().multipart_overhead
}

fn too_large(state: &ReportsState) -> ReportsError {
    ReportsError::TooLarge { limit: filing_limit(state), evidence_limit: state.scenario().reports.max_evidence_bytes }
}

/// Reads a JSON body of at most `max` bytes into `T`.
pub(crate) async fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: axum::body::Body,
    max: usize,
) -> Result<T, ReportsError> {
    let ct = media_type(headers);
    if ct != "application/json" {
        return Err(ReportsError::UnsupportedMediaType(if ct.is_empty() { "none".into() } else { ct }));
    }
    let json_too_large = || ReportsError::TooLarge { limit: max as u64, evidence_limit: 0 };
    if declared_length(headers).is_some_and(|n| n > max as u64) {
        return Err(json_too_large());
    }
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| json_too_large())?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ReportsError::BadRequest(format!("the body is not the JSON expected: {e}")))
}

/// Every team's uploads in progress: a semaphore of `max_concurrent_uploads` permits and the
/// bytes its uploads have written so far, which count against its evidence budget before
/// they are filed.
#[derive(Debug, Default)]
pub(crate) struct Uploads {
    teams: Mutex<HashMap<TeamId, Arc<TeamUploads>>>,
}

#[derive(Debug)]
struct TeamUploads {
    permits: Arc<Semaphore>,
    in_flight: AtomicU64,
    /// Whether what an earlier run of the server left unfiled (cut off by a crash or a
    /// restart) has been deleted.
    swept: AtomicBool,
    /// Held while that is done: an upload starting meanwhile waits for it, rather than
    /// finding every slot taken.
    sweeping: tokio::sync::Mutex<()>,
}

impl Uploads {
    /// A slot for one more upload of `team`, or `None` when it already has `max` in progress.
    /// The team's first upload since the server started first deletes the team's unfiled
    /// uploads, with every slot of the team held, so no upload in progress can be among them.
    pub(crate) async fn try_start(
        &self,
        store: &Store,
        team: TeamId,
        max: u32,
    ) -> Result<Option<UploadSlot>, ReportsError> {
        let uploads = {
            let mut teams = self.teams.lock().unwrap_or_else(|p| p.into_inner());
            teams
                .entry(team)
                .or_insert_with(|| {
                    Arc::new(TeamUploads {
                        permits: Arc::new(Semaphore::new(usize::try_from(max).unwrap_or(1))),
                        in_flight: AtomicU64::new(0),
                        swept: AtomicBool::new(false),
                        sweeping: tokio::sync::Mutex::new(()),
                    })
                })
                .clone()
        };
        if !uploads.swept.load(Ordering::SeqCst) {
            let _sweeping = uploads.sweeping.lock().await;
            // With uploads of this run in progress, the sweep waits for a moment without any.
            if !uploads.swept.load(Ordering::SeqCst)
                && let Ok(all) = uploads.permits.clone().try_acquire_many_owned(max)
            {
                let gone = store.discard_unfiled_evidence(team).await?;
                if gone > 0 {
                    tracing::info!(%team, uploads = gone, "deleted evidence uploads left unfiled by an earlier run");
                }
                uploads.swept.store(true, Ordering::SeqCst);
                drop(all);
            }
        }
        let Ok(permit) = uploads.permits.clone().try_acquire_owned() else { return Ok(None) };
        Ok(Some(UploadSlot { uploads, _permit: permit, counted: 0 }))
    }
}

/// One upload in progress; dropping it frees the slot and uncounts its bytes.
#[derive(Debug)]
pub(crate) struct UploadSlot {
    uploads: Arc<TeamUploads>,
    _permit: OwnedSemaphorePermit,
    counted: u64,
}

impl UploadSlot {
    /// Counts `n` more bytes; returns what all the team's uploads in progress hold now.
    fn add(&mut self, n: u64) -> u64 {
        self.counted += n;
        self.uploads.in_flight.fetch_add(n, Ordering::SeqCst) + n
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        self.uploads.in_flight.fetch_sub(self.counted, Ordering::SeqCst);
    }
}

/// Evidence a filing has written to the store. Unless [`Staged::filed`] is called, dropping it
/// deletes the uploads, whether the filing was refused, failed or cut off by the client.
#[derive(Debug)]
pub(crate) struct Staged {
    store: Store,
    files: Vec<StagedEvidence>,
    /// The upload being written, not yet in `files`.
    open: Option<i64>,
    filed: bool,
}

impl Staged {
    pub(crate) fn new(store: Store) -> Staged {
        Staged { store, files: Vec::new(), open: None, filed: false }
    }

    pub(crate) fn files(&self) -> &[StagedEvidence] {
        &self.files
    }

    /// The evidence is now part of a filed report: keep it.
    pub(crate) fn filed(mut self) {
        self.filed = true;
    }

    /// Deletes what the filing wrote, now.
    pub(crate) async fn discard(mut self) {
        self.filed = true;
        let uploads: Vec<i64> = self.files.iter().map(|f| f.upload).chain(self.open).collect();
        if let Err(e) = self.store.discard_evidence_uploads(&uploads).await {
            tracing::warn!(error = %e, "could not delete the evidence of a filing that was not filed");
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.filed {
            return;
        }
        let uploads: Vec<i64> = self.files.iter().map(|f| f.upload).chain(self.open).collect();
        if uploads.is_empty() {
            return;
        }
        let store = self.store.clone();
        // Drop cannot wait; the deletion runs on its own. A filing that did commit keeps its
        // evidence: the store deletes only uploads no report holds.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.discard_evidence_uploads(&uploads).await {
                    tracing::warn!(error = %e, "could not delete the evidence of a filing that was not filed");
                }
            });
        }
    }
}

/// What a filing may still store: the team's evidence budget and its uploads in progress.
#[derive(Debug)]
pub(crate) struct Budget {
    pub team: TeamId,
    /// Evidence bytes the team may store over the drill.
    pub limit: u64,
    /// Evidence bytes of the team's filed reports.
    pub filed: u64,
}

/// Reads a filing request into the report; evidence files are written to the store as they
/// arrive and listed in `staged`.
pub(crate) async fn read_filing(
    state: &ReportsState,
    budget: &Budget,
    req: Request,
    staged: &mut Staged,
) -> Result<ReportDraft, ReportsError> {
    let ct = media_type(req.headers());
    match ct.as_str() {
        "application/json" => {
            let (parts, body) = req.into_parts();
            json_body(&parts.headers, body, state.settings().max_json_body).await
        }
        "multipart/form-data" => {
            if declared_length(req.headers()).is_some_and(|n| n > filing_limit(state)) {
                return Err(too_large(state));
            }
            let max = state.scenario().reports.max_concurrent_uploads;
            let slot = state
                .inner
                .uploads
                .try_start(state.store(), budget.team, max)
                .await?
                .ok_or(ReportsError::TooManyUploads { limit: max, retry_after_secs: UPLOAD_RETRY_SECS })?;
            let multipart = Multipart::from_request(req, &())
                .await
                .map_err(|e| ReportsError::BadRequest(format!("not a readable multipart body: {e}")))?;
            read_multipart(state, budget, slot, multipart, staged).await
        }
        "" => Err(ReportsError::UnsupportedMediaType("none".into())),
        _ => Err(ReportsError::UnsupportedMediaType(ct)),
    }
}

/// How long a team told to wait for its other uploads is asked to wait.
const UPLOAD_RETRY_SECS: u64 = 5;

fn multipart_error(state: &ReportsState, e: axum::extract::multipart::MultipartError) -> ReportsError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large(state)
    } else {
        ReportsError::BadRequest(format!("the multipart body is broken: {}", e.body_text()))
    }
}

async fn read_multipart(
    state: &ReportsState,
    budget: &Budget,
    mut slot: UploadSlot,
    mut multipart: Multipart,
    staged: &mut Staged,
) -> Result<ReportDraft, ReportsError> {
    let evidence_limit = state.scenario().reports.max_evidence_bytes;
    let settings = state.settings();
    let mut draft: Option<ReportDraft> = None;
    let mut total: u64 = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(state, e))? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "report" => {
                if draft.is_some() {
                    return Err(ReportsError::BadRequest("more than one `report` part; send the report once".into()));
                }
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(state, e))? {
                    if text.len() + chunk.len() > settings.max_json_body {
                        return Err(ReportsError::TooLarge { limit: settings.max_json_body as u64, evidence_limit });
                    }
                    text.extend_from_slice(&chunk);
                }
                draft =
                    Some(serde_json::from_slice(&text).map_err(|e| {
                        ReportsError::BadRequest(format!("the `report` part is not the report JSON: {e}"))
                    })?);
            }
            "evidence" => {
                if staged.files.len() == settings.max_files {
                    return Err(ReportsError::BadRequest(format!(
                        "more than {} evidence files; put them in one zip archive",
                        settings.max_files
                    )));
                }
                let file_name = clean_file_name(field.file_name(), staged.files.len());
                let content_type = field
                    .content_type()
                    .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
                    .unwrap_or_default();
                if !settings.evidence_types.contains(&content_type) {
                    return Err(ReportsError::EvidenceType {
                        file: file_name,
                        content_type: if content_type.is_empty() { "none".into() } else { content_type },
                        allowed: settings.evidence_types.join(", "),
                    });
                }
                let store = state.store();
                let upload = store.begin_evidence_upload(budget.team, state.now()).await?;
                staged.open = Some(upload);
                let mut writer = ChunkWriter::new(store, upload);
                let mut sniffer = Sniffer::new(&content_type);
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(state, e))? {
                    total += chunk.len() as u64;
                    if total > evidence_limit {
                        return Err(too_large(state));
                    }
                    let in_flight = slot.add(chunk.len() as u64);
                    if budget.filed + in_flight > budget.limit {
                        return Err(ReportsError::EvidenceBudget {
                            limit: budget.limit,
                            left: budget.limit.saturating_sub(budget.filed + in_flight - slot.counted),
                        });
                    }
                    if !sniffer.feed(&chunk).await {
                        return Err(ReportsError::EvidenceMismatch { file: file_name, content_type });
                    }
                    writer.push(&chunk).await?;
                }
                if !sniffer.finish().await {
                    return Err(ReportsError::EvidenceMismatch { file: file_name, content_type });
                }
                let (size, sha256) = writer.finish().await?;
                staged.open = None;
                staged.files.push(StagedEvidence { upload, file_name, content_type, size, sha256 });
            }
            other => {
                return Err(ReportsError::BadRequest(format!(
                    "unknown part `{other}`; send one `report` part (the JSON) and any number of `evidence` files"
                )));
            }
        }
    }
    draft.ok_or_else(|| {
        ReportsError::BadRequest("no `report` part; send the report JSON in a part named `report`".into())
    })
}

/// Writes one evidence file to the store as it streams in: a buffer of at most one chunk,
/// handed to the store (moved, not copied) whenever it is full.
struct ChunkWriter<'a> {
    store: &'a Store,
    upload: i64,
    seq: u32,
    buf: Vec<u8>,
    hash: Sha256,
    size: u64,
}

impl<'a> ChunkWriter<'a> {
    fn new(store: &'a Store, upload: i64) -> ChunkWriter<'a> {
        ChunkWriter { store, upload, seq: 0, buf: Vec::new(), hash: Sha256::new(), size: 0 }
    }

    async fn push(&mut self, mut data: &[u8]) -> Result<(), ReportsError> {
        self.hash.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = EVIDENCE_CHUNK - self.buf.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = later;
            if self.buf.len() == EVIDENCE_CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ReportsError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buf);
        self.store.write_evidence_chunk(self.upload, self.seq, chunk).await?;
        self.seq += 1;
        Ok(())
    }

    /// Writes what is left; the file's size and hex SHA-256.
    async fn finish(mut self) -> Result<(u64, String), ReportsError> {
        self.flush().await?;
        let digest = self.hash.finalize();
        Ok((self.size, digest.iter().map(|b| format!("{b:02x}")).collect()))
    }
}

/// Whether a file's bytes are of its stated content type, checked as they stream in: a
/// binary type by its first bytes, text by its encoding, JSON by parsing it on a blocking
/// thread that reads the chunks as they come.
struct Sniffer {
    content_type: String,
    head: Vec<u8>,
    utf8: Option<Utf8Check>,
    json: Option<JsonCheck>,
}

/// Bytes enough for every signature [`looks_like`] knows.
const HEAD: usize = 16;

impl Sniffer {
    fn new(content_type: &str) -> Sniffer {
        Sniffer {
            content_type: content_type.to_owned(),
            head: Vec::with_capacity(HEAD),
            utf8: matches!(content_type, "text/plain" | "text/csv").then(Utf8Check::default),
            json: (content_type == "application/json").then(JsonCheck::start),
        }
    }

    fn is_binary(&self) -> bool {
        self.utf8.is_none() && self.json.is_none()
    }

    /// `false` as soon as the bytes cannot be of the type.
    async fn feed(&mut self, chunk: &Bytes) -> bool {
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            if self.head.len() == HEAD && self.is_binary() && !looks_like(&self.content_type, &self.head) {
                return false;
            }
        }
        if let Some(utf8) = &mut self.utf8
            && !utf8.feed(chunk)
        {
            return false;
        }
        if let Some(json) = &mut self.json {
            json.feed(chunk.clone()).await;
        }
        true
    }

    async fn finish(self) -> bool {
        match (self.utf8, self.json) {
            (Some(utf8), _) => utf8.finish(),
            (None, Some(json)) => json.finish().await,
            (None, None) => looks_like(&self.content_type, &self.head),
        }
    }
}

/// UTF-8 validation across chunk boundaries: a character cut by a boundary is carried over.
#[derive(Debug, Default)]
struct Utf8Check {
    carry: Vec<u8>,
    bad: bool,
}

impl Utf8Check {
    fn feed(&mut self, mut data: &[u8]) -> bool {
        while !self.carry.is_empty() && !self.bad {
            let Some((&b, rest)) = data.split_first() else { return true };
            self.carry.push(b);
            data = rest;
            match std::str::from_utf8(&self.carry) {
                Ok(_) => self.carry.clear(),
                Err(e) if e.error_len().is_none() => {}
                Err(_) => self.bad = true,
            }
        }
        if self.bad {
            return false;
        }
        match std::str::from_utf8(data) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => self.carry.extend_from_slice(&data[e.valid_up_to()..]),
            Err(_) => self.bad = true,
        }
        !self.bad
    }

    fn finish(self) -> bool {
        !self.bad && self.carry.is_empty()
    }
}

/// A JSON parse over chunks as they arrive, on a blocking thread; chunks are shared with the
/// writer (reference-counted), not copied.
struct JsonCheck {
    chunks: Option<mpsc::Sender<Bytes>>,
    verdict: tokio::task::JoinHandle<bool>,
}

impl JsonCheck {
    fn start() -> JsonCheck {
        let (tx, rx) = mpsc::channel::<Bytes>(2);
        let verdict = tokio::task::spawn_blocking(move || {
            let mut de = serde_json::Deserializer::from_reader(ChannelReader { rx, current: Bytes::new() });
            serde::Deserialize::deserialize(&mut de).map(|_: serde::de::IgnoredAny| ()).is_ok() && de.end().is_ok()
        });
        JsonCheck { chunks: Some(tx), verdict }
    }

    async fn feed(&mut self, chunk: Bytes) {
        if let Some(tx) = &self.chunks
            && tx.send(chunk).await.is_err()
        {
            // The parser has stopped: the verdict is known, and said at the end.
            self.chunks = None;
        }
    }

    async fn finish(mut self) -> bool {
        self.chunks = None;
        (&mut self.verdict).await.unwrap_or(false)
    }
}

impl Drop for JsonCheck {
    fn drop(&mut self) {
        // Closing the channel ends the parser at its next read.
        self.chunks = None;
    }
}

struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// The uploaded name without any folder, or `evidence-N` when there is none.
fn clean_file_name(name: Option<&str>, index: usize) -> String {
    let base = name.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("").trim();
    let clean: String = base.chars().filter(|c| !c.is_control()).take(MAX_FILE_NAME).collect();
    if clean.is_empty() || clean == "." || clean == ".." { format!("evidence-{}", index + 1) } else { clean }
}

/// Whether `data` is plausibly of `content_type`, by its first bytes (or, for text, its
/// encoding). Types without a known signature pass.
pub(crate) fn looks_like(content_type: &str, data: &[u8]) -> bool {
    let starts = |sig: &[u8]| data.starts_with(sig);
    match content_type {
        "image/png" => starts(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => starts(&[0xFF, 0xD8, 0xFF]),
        "image/gif" => starts(b"GIF87a") || starts(b"GIF89a"),
        "image/webp" => data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP",
        "application/pdf" => starts(b"%PDF-"),
        "application/zip" => starts(b"PK\x03\x04") || starts(b"PK\x05\x06"),
        "application/gzip" => starts(&[0x1F, 0x8B]),
        "application/vnd.tcpdump.pcap" => {
            [[0xD4, 0xC3, 0xB2, 0xA1], [0xA1, 0xB2, 0xC3, 0xD4], [0x4D, 0x3C, 0xB2, 0xA1], [0xA1, 0xB2, 0x3C, 0x4D]]
                .iter()
                .any(|m| starts(m))
        }
        "application/x-pcapng" => starts(&[0x0A, 0x0D, 0x0D, 0x0A]),
        "text/plain" | "text/csv" => std::str::from_utf8(data).is_ok(),
        "application/json" => serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert!(looks_like("image/png", b"\x89PNG\r\n\x1a\nrest"));
        assert!(!looks_like("image/png", b"GIF89a"));
        assert!(looks_like("application/pdf", b"%PDF-1.7"));
        assert!(!looks_like("text/plain", &[0xFF, 0xFE, 0x00]));
        assert!(looks_like("application/json", br#"{"a": 1}"#));
        assert!(!looks_like("application/json", b"{nope"));
    }

    #[test]
    fn utf8_is_checked_across_chunk_boundaries() {
        let text = "網絡安全 report".as_bytes();
        for cut in 0..text.len() {
            let mut check = Utf8Check::default();
            assert!(check.feed(&text[..cut]) && check.feed(&text[cut..]), "cut at {cut}");
            assert!(check.finish(), "cut at {cut}");
        }
        let mut check = Utf8Check::default();
        assert!(check.feed(&text[..1]));
        assert!(!check.finish(), "a character cut off at the end is not text");
        let mut check = Utf8Check::default();
        assert!(check.feed(&text[..1]));
        assert!(!check.feed(&[0x41]), "a broken character across a boundary is refused");
    }

    #[tokio::test]
    async fn json_is_parsed_as_it_streams() {
        let mut ok = JsonCheck::start();
        for part in [&b"{\"a\": [1, "[..], b"2, 3], \"b\"", b": \"x\"}  "] {
            ok.feed(Bytes::from_static(part)).await;
        }
        assert!(ok.finish().await);
        let mut bad = JsonCheck::start();
        bad.feed(Bytes::from_static(b"{\"a\": ")).await;
        assert!(!bad.finish().await, "cut-off JSON is refused");
        let mut trailing = JsonCheck::start();
        trailing.feed(Bytes::from_static(b"{} {}")).await;
        assert!(!trailing.finish().await, "two documents are not one JSON file");
    }

    #[test]
    fn file_names_lose_their_folders() {
        assert_eq!(clean_file_name(Some("../../etc/passwd"), 0), "passwd");
        assert_eq!(clean_file_name(Some("C:\\logs\\fw.txt"), 0), "fw.txt");
        assert_eq!(clean_file_name(None, 2), "evidence-3");
        assert_eq!(clean_file_name(Some("dir/"), 0), "evidence-1");
    }
}
