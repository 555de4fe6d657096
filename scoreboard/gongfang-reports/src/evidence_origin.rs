//! Evidence images on a host name of their own. With [`Settings::evidence_origin`] the
//! workbench's image address answers a logged-in judge with a redirect to a short-lived signed
//! address on that origin, which serves the image (by its bytes, under a CSP sandbox) and
//! nothing else. A file a browser misread there runs in an origin that holds no session and
//! reaches none of the workbench's pages or APIs, and the drill's own host names serve no
//! signed evidence.
//!
//! [`Settings::evidence_origin`]: crate::Settings::evidence_origin

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::api::parse_id;
use crate::error::ReportsError;
use crate::state::ReportsState;

/// How long a signed evidence address works: long enough for the image to load, short enough
/// that a copied address is soon useless.
pub const LINK_SECONDS: i64 = 300;

/// Where evidence images are served from: a scheme and a host name (with a port when not the
/// scheme's own), such as `https://evidence.drill.example`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceOrigin {
    origin: String,
    /// The `Host` header requests to it carry, lowercase.
    host: String,
}

impl EvidenceOrigin {
    /// Reads `http://host[:port]` or `https://host[:port]`, without a path.
    pub fn parse(text: &str) -> Result<EvidenceOrigin, String> {
        let text = text.trim().trim_end_matches('/');
        let Some((scheme, host)) = text.split_once("://") else {
            return Err(format!("`{text}` is not an origin; write it like https://evidence.drill.example"));
        };
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{text}`: the evidence origin is http:// or https://, not {scheme}://"));
        }
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
        if host.is_empty() || !host.chars().all(valid) {
            return Err(format!("`{text}`: give a host name and an optional port only, no path, user or query"));
        }
        Ok(EvidenceOrigin {
            origin: format!("{scheme}://{}", host.to_ascii_lowercase()),
            host: host.to_ascii_lowercase(),
        })
    }

    /// `scheme://host[:port]`, as a page's `img-src` names it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn serves(&self, headers: &HeaderMap) -> bool {
        headers.get(header::HOST).and_then(|h| h.to_str().ok()).is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
    }
}

type HmacSha256 = Hmac<Sha256>;

fn signature(key: &[u8; 32], report: i64, evidence: i64, expires: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("evidence/{report}/{evidence}/{expires}").as_bytes());
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed address of one evidence file on the evidence origin, working until `expires`
/// (seconds since the epoch).
pub(crate) fn signed_url(state: &ReportsState, origin: &EvidenceOrigin, report: i64, evidence: i64) -> String {
    let expires = state.now().timestamp() + LINK_SECONDS;
    let sig = hex(&signature(state.evidence_key(), report, evidence, expires).finalize().into_bytes());
    format!("{}/evidence/{report}/{evidence}/{expires}/{sig}", origin.origin)
}

/// `GET /evidence/{report}/{file}/{expires}/{signature}` on the evidence origin: the image, if
/// the address is one this server signed and has not expired. On any other host name, or
/// without an evidence origin, there is no such page.
pub(crate) async fn serve(
    State(state): State<ReportsState>,
    Path((report, evidence, expires, sig)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ReportsError> {
    let Some(origin) = state.settings().evidence_origin.as_ref().filter(|o| o.serves(&headers)) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let (id, file) = (parse_id(&report, "report")?, parse_id(&evidence, "evidence")?);
    let expires: i64 =
        expires.parse().map_err(|_| ReportsError::BadRequest("the link's expiry is not a number".into()))?;
    let given = (0..sig.len())
        .step_by(2)
        .map(|i| sig.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<Vec<u8>>>();
    let genuine = given.is_some_and(|g| signature(state.evidence_key(), id, file, expires).verify_slice(&g).is_ok());
    if !genuine {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    if state.now().timestamp() > expires {
        return Err(ReportsError::LinkExpired);
    }
    tracing::debug!(origin = origin.origin(), report = id, evidence = file, "evidence served on its own origin");
    crate::workbench::image(&state, id, file, "cross-origin").await
}

/// On the evidence origin only the signed evidence addresses answer among these routes: the
/// portal, the console, the workbench and their APIs are not found there, so none of them ever
/// runs on that origin (the public scoreboard, which holds no session, is served on any name).
pub(crate) async fn only_evidence(State(state): State<ReportsState>, req: Request, next: Next) -> Response {
    let on_evidence = state.settings().evidence_origin.as_ref().is_some_and(|o| o.serves(req.headers()));
    if on_evidence && !req.uri().path().starts_with("/evidence/") {
        let mut response = StatusCode::NOT_FOUND.into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::EvidenceOrigin;

    #[test]
    fn origins_are_a_scheme_and_a_host() {
        let o = EvidenceOrigin::parse("https://Evidence.Drill.example/").unwrap();
        assert_eq!(o.origin(), "https://evidence.drill.example");
        assert_eq!(EvidenceOrigin::parse("http://localhost:8080").unwrap().origin(), "http://localhost:8080");
        for bad in ["evidence.drill.example", "ftp://x", "https://x/path", "https://user@x", "https://"] {
            assert!(EvidenceOrigin::parse(bad).is_err(), "{bad} was taken");
        }
    }
}
