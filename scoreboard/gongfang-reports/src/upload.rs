//! Reading a filing: a JSON report, or multipart/form-data with a `report` part and
//! `evidence` files. Sizes are enforced while the body streams in (a declared length over the
//! limit is refused before a byte is read), and each file's content type must be on the
//! allow-list and match the file's first bytes.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use gongfang_core::report::ReportDraft;
use gongfang_store::reports::NewEvidence;

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

/// Reads a filing request into the report and its evidence files.
pub(crate) async fn read_filing(
    state: &ReportsState,
    req: Request,
) -> Result<(ReportDraft, Vec<NewEvidence>), ReportsError> {
    let ct = media_type(req.headers());
    match ct.as_str() {
        "application/json" => {
            let (parts, body) = req.into_parts();
            let draft = json_body(&parts.headers, body, state.settings().max_json_body).await?;
            Ok((draft, Vec::new()))
        }
        "multipart/form-data" => {
            if declared_length(req.headers()).is_some_and(|n| n > filing_limit(state)) {
                return Err(too_large(state));
            }
            let multipart = Multipart::from_request(req, &())
                .await
                .map_err(|e| ReportsError::BadRequest(format!("not a readable multipart body: {e}")))?;
            read_multipart(state, multipart).await
        }
        "" => Err(ReportsError::UnsupportedMediaType("none".into())),
        _ => Err(ReportsError::UnsupportedMediaType(ct)),
    }
}

fn multipart_error(state: &ReportsState, e: axum::extract::multipart::MultipartError) -> ReportsError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large(state)
    } else {
        ReportsError::BadRequest(format!("the multipart body is broken: {}", e.body_text()))
    }
}

async fn read_multipart(
    state: &ReportsState,
    mut multipart: Multipart,
) -> Result<(ReportDraft, Vec<NewEvidence>), ReportsError> {
    let evidence_limit = state.scenario().reports.max_evidence_bytes;
    let settings = state.settings();
    let mut draft: Option<ReportDraft> = None;
    let mut files = Vec::new();
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
                if files.len() == settings.max_files {
                    return Err(ReportsError::BadRequest(format!(
                        "more than {} evidence files; put them in one zip archive",
                        settings.max_files
                    )));
                }
                let file_name = clean_file_name(field.file_name(), files.len());
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
                let mut data = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(state, e))? {
                    total += chunk.len() as u64;
                    if total > evidence_limit {
                        return Err(too_large(state));
                    }
                    data.extend_from_slice(&chunk);
                }
                if !looks_like(&content_type, &data) {
                    return Err(ReportsError::EvidenceMismatch { file: file_name, content_type });
                }
                files.push(NewEvidence { file_name, content_type, data });
            }
            other => {
                return Err(ReportsError::BadRequest(format!(
                    "unknown part `{other}`; send one `report` part (the JSON) and any number of `evidence` files"
                )));
            }
        }
    }
    let draft = draft.ok_or_else(|| {
        ReportsError::BadRequest("no `report` part; send the report JSON in a part named `report`".into())
    })?;
    Ok((draft, files))
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
    fn file_names_lose_their_folders() {
        assert_eq!(clean_file_name(Some("../../etc/passwd"), 0), "passwd");
        assert_eq!(clean_file_name(Some("C:\\logs\\fw.txt"), 0), "fw.txt");
        assert_eq!(clean_file_name(None, 2), "evidence-3");
        assert_eq!(clean_file_name(Some("dir/"), 0), "evidence-1");
    }
}
