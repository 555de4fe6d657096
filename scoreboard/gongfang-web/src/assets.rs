//! The page and its script and style, compiled into the binary: no build chain, no CDN; and
//! the message catalogues (`scoreboard/i18n/`, one per language, shared with the team portal
//! and the organisers' console) the page switches language with.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");
const CATALOGUES: &[(&str, &str)] =
    &[("en.json", include_str!("../../i18n/en.json")), ("zh-HK.json", include_str!("../../i18n/zh-HK.json"))];

/// Everything the page needs comes from this server. The socket is same-origin too, and
/// `'self'` covers `ws:`/`wss:` to this host in every current browser (CSP level 3), so the
/// page may open no socket to any other host.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidate on every load, so a new binary's page is picked up at once.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
        .into_response()
}

/// `GET /`.
pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /static/app.js`.
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /static/app.css`.
pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /static/i18n/{name}`: the catalogue of a language (`en.json`, `zh-HK.json`).
pub(crate) async fn catalogue(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match CATALOGUES.iter().find(|(n, _)| *n == name) {
        Some((_, body)) => asset("application/json", body),
        None => crate::error::WebError::NotFound(format!("/static/i18n/{name}")).into_response(),
    }
}
