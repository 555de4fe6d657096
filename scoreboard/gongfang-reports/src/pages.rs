//! The team portal (`/portal`), the organisers' console (`/console`) and the judges'
//! workbench (`/judge`): plain HTML, CSS and
//! JavaScript compiled into the binary, with one message catalogue per language
//! (`/static/pages/i18n/en.json`, `zh-HK.json`, from `scoreboard/i18n/`, which the public
//! scoreboard's page speaks too). The pages draw everything with `textContent`
//! from the JSON API, under a strict content security policy.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ReportsError;
use crate::state::ReportsState;

/// Every page, script, style and catalogue, by the name it is served under.
const ASSETS: &[(&str, &str, &str)] = &[
    ("portal.html", "text/html; charset=utf-8", include_str!("../assets/portal.html")),
    ("console.html", "text/html; charset=utf-8", include_str!("../assets/console.html")),
    ("common.js", "text/javascript; charset=utf-8", include_str!("../assets/common.js")),
    ("portal.js", "text/javascript; charset=utf-8", include_str!("../assets/portal.js")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("../assets/console.js")),
    ("judge.html", "text/html; charset=utf-8", include_str!("../assets/judge.html")),
    ("judge.js", "text/javascript; charset=utf-8", include_str!("../assets/judge.js")),
    ("pages.css", "text/css; charset=utf-8", include_str!("../assets/pages.css")),
    ("en.json", "application/json", include_str!("../../i18n/en.json")),
    ("zh-HK.json", "application/json", include_str!("../../i18n/zh-HK.json")),
];

/// The languages the pages speak, by catalogue name; the first is the default.
pub const LANGUAGES: &[&str] = &["en", "zh-HK"];

/// The message catalogue of `language` (one of [`LANGUAGES`]), as JSON text.
pub fn catalogue(language: &str) -> Option<&'static str> {
    find(&format!("{language}.json")).map(|(_, body)| body)
}

/// Scripts, styles and calls only to this server; no inline script or style, no frames, and
/// forms post nowhere (the scripts send them).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn find(name: &str) -> Option<(&'static str, &'static str)> {
    ASSETS.iter().find(|(n, _, _)| *n == name).map(|(_, t, b)| (*t, *b))
}

fn asset(name: &str) -> Response {
    asset_under(name, CSP)
}

fn asset_under(name: &str, csp: &str) -> Response {
    let Some((content_type, body)) = find(name) else { return not_found(name) };
    let csp = HeaderValue::from_str(csp).unwrap_or(HeaderValue::from_static(CSP));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
        .into_response()
}

/// `GET /portal`.
pub(crate) async fn portal() -> Response {
    asset("portal.html")
}

/// `GET /console`.
pub(crate) async fn console() -> Response {
    asset("console.html")
}

/// `GET /judge`: the judges' workbench. Its images may come from the evidence origin too.
pub(crate) async fn judge(State(state): State<ReportsState>) -> Response {
    match &state.settings().evidence_origin {
        Some(o) => asset_under(
            "judge.html",
            &CSP.replace("img-src 'self' data:", &format!("img-src 'self' data: {}", o.origin())),
        ),
        None => asset("judge.html"),
    }
}

/// `GET /static/pages/{name}`: a script or a style.
pub(crate) async fn file(Path(name): Path<String>) -> Response {
    if name.ends_with(".js") || name.ends_with(".css") { asset(&name) } else { not_found(&name) }
}

/// `GET /static/pages/i18n/{name}`: a catalogue.
pub(crate) async fn catalogue_file(Path(name): Path<String>) -> Response {
    if name.ends_with(".json") { asset(&name) } else { not_found(&name) }
}

fn not_found(name: &str) -> Response {
    ReportsError::NotFound(format!("/static/pages/{name}")).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(language: &str) -> BTreeSet<String> {
        let text = catalogue(language).unwrap_or_else(|| panic!("no catalogue for {language}"));
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{language}.json is not a JSON object: {e}"));
        for (key, value) in &map {
            assert!(value.as_str().is_some_and(|v| !v.trim().is_empty()), "{language}.json: `{key}` is empty");
        }
        map.keys().cloned().collect()
    }

    #[test]
    fn every_key_is_in_every_language() {
        let english = keys("en");
        for language in LANGUAGES {
            let other = keys(language);
            let missing: Vec<_> = english.difference(&other).collect();
            let extra: Vec<_> = other.difference(&english).collect();
            assert!(missing.is_empty(), "{language}.json lacks {missing:?}");
            assert!(extra.is_empty(), "{language}.json has keys English lacks: {extra:?}");
        }
    }

    #[test]
    fn every_key_the_pages_use_is_in_the_catalogue() {
        let english = keys("en");
        let mut used = BTreeSet::new();
        // The public scoreboard's page speaks from the same catalogues.
        let board = [
            ("board index.html", "", include_str!("../../gongfang-web/assets/index.html")),
            ("board app.js", "", include_str!("../../gongfang-web/assets/app.js")),
        ];
        for (name, _, body) in ASSETS.iter().filter(|(n, _, _)| !n.ends_with(".json")).chain(&board) {
            // In pages: data-i18n="key" (and -placeholder, -label).
            for marker in ["data-i18n=\"", "data-i18n-placeholder=\"", "data-i18n-label=\""] {
                for piece in body.split(marker).skip(1) {
                    used.insert((piece.split('"').next().unwrap_or_default().to_owned(), *name));
                }
            }
            // In scripts: t('key'), where `t` is a whole name (not the end of `split`).
            for (at, _) in body.match_indices("t('") {
                let before = body[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let key = body[at + 3..].split('\'').next().unwrap_or_default();
                used.insert((key.to_owned(), *name));
            }
        }
        let missing: Vec<_> = used.iter().filter(|(k, _)| !english.contains(k)).collect();
        assert!(missing.is_empty(), "keys used by the pages but missing from en.json: {missing:?}");
        assert!(used.len() > 40, "the pages use only {} keys: is the marker search broken?", used.len());
    }

    #[test]
    fn the_chinese_catalogue_speaks_hong_kong_usage() {
        let text = catalogue("zh-HK").expect("zh-HK catalogue");
        // Taiwan's words for network, software, account, log in and cyber security (Hong Kong
        // says 網絡, 軟件, 帳戶, 登入, 網絡安全), written as code points so that this file holds none.
        for word in ["\u{7DB2}\u{8DEF}", "\u{8EDF}\u{9AD4}", "\u{5E33}\u{865F}", "\u{767B}\u{9304}", "\u{8CC7}\u{5B89}"]
        {
            assert!(!text.contains(word), "zh-HK.json uses `{word}`, which is not Hong Kong usage");
        }
        assert!(text.contains("登入"), "zh-HK.json should say 登入 for log in");
    }
}
