//! Evidence images on a host name of their own (`--evidence-origin`), over real HTTP with the
//! real store: the workbench's image address redirects a judge to a short-lived signed address
//! on the evidence origin (here `localhost`, while the drill is `127.0.0.1`), which serves the
//! PNG sandboxed and nothing else; a forged, altered or expired address, or one asked on the
//! drill's own host name, gets nothing; the workbench's page may load images from there. In
//! headless Chromium the judge sees the image, loaded from the other origin.

mod common;

use anyhow::{Context as _, ensure};
use gongfang_reports::{EvidenceOrigin, Settings};
use gongfang_test_support::TestDb;
use gongfang_test_support::browser::{Browser, chromium_or_skip};
use gongfang_test_support::http;

use common::*;

gongfang_test_support::backend_tests!(
    setup = with_evidence_origin;
    images_come_from_their_own_origin_through_signed_links,
);

/// The red/blue drill with evidence served from `http://localhost:PORT`.
async fn with_evidence_origin(db: TestDb) -> App {
    spawn_at(
        db,
        |_| {},
        |state, addr| {
            let origin = EvidenceOrigin::parse(&format!("http://localhost:{}", addr.port())).unwrap();
            state.with_settings(Settings { evidence_origin: Some(origin), ..Settings::default() })
        },
    )
    .await
}

/// A real 2 × 2 PNG (a browser draws it).
const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x02\x08\x02\x00\x00\x00\xfd\xd4\x9a\x73\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63\xb8\xa7\xc9\x0f\x44\x0c\x10\x0a\x00\x21\xb2\x04\x59\x79\x62\x53\xf1\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// Files an attack report with a PNG and an SVG named like one; answers its id.
async fn file_with_images(app: &App) -> anyhow::Result<i64> {
    let report = serde_json::json!({
        "kind": "attack",
        "target_team": "ddb",
        "service": "opendata",
        "from": at(35),
        "to": at(45),
        "technique": "stored XSS in the dataset title",
        "description": "The title runs script in the steward's browser.",
        "evidence": "see the screenshot",
    })
    .to_string();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let (ct, body) = multipart(&[
        ("report", None, "application/json", report.as_bytes()),
        ("evidence", Some("shot.png"), "image/png", PNG),
        // Named like an image, but text: the platform takes it as text and never shows it.
        ("evidence", Some("logo.png"), "text/plain", svg),
    ]);
    let auth = team_auth(app, RED_FIRM);
    let filed = app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", &ct)], &body).await;
    ensure!(filed.status == 201, "{}", filed.text());
    filed.json()?["id"].as_i64().context("an id")
}

/// `url`'s path and query.
fn path_of(url: &str) -> &str {
    url.find("://").and_then(|i| url[i + 3..].find('/').map(|j| &url[i + 3 + j..])).unwrap_or(url)
}

async fn images_come_from_their_own_origin_through_signed_links(app: App) -> anyhow::Result<()> {
    let id = file_with_images(&app).await?;
    let judge = judge_auth(&app, ANA).await;
    let evidence_host = format!("localhost:{}", app.addr.port());
    let view = |file: i64| format!("/api/judge/reports/{id}/evidence/{file}/view");
    let report = app.request("GET", &format!("/api/judge/reports/{id}"), &[(judge.0, &judge.1)], b"").await.json()?;
    let png_id = report["report"]["evidence"][0]["id"].as_i64().context("the png")?;
    let svg_id = report["report"]["evidence"][1]["id"].as_i64().context("the svg")?;

    // The judge's address redirects to the evidence origin.
    let to = app.request("GET", &view(png_id), &[(judge.0, &judge.1)], b"").await;
    ensure!(to.status == 303 && to.header("cache-control") == Some("private, no-store"), "{}", to.text());
    let location = to.header("location").context("a Location")?.to_owned();
    ensure!(location.starts_with(&format!("http://{evidence_host}/evidence/{id}/{png_id}/")), "{location}");
    let signed = path_of(&location).to_owned();
    // Without a judge's session there is no redirect.
    let team = team_auth(&app, RED_FIRM);
    ensure!(app.request("GET", &view(png_id), &[(team.0, &team.1)], b"").await.status == 403);

    // On the evidence origin: the PNG, sandboxed, embeddable by the workbench's origin.
    let got = http::request(&evidence_host, "GET", &signed, &[], b"").await?;
    ensure!(got.status == 200 && got.body == PNG, "{} {}", got.status, got.text());
    ensure!(got.header("content-type") == Some("image/png"), "{:?}", got.header("content-type"));
    ensure!(got.header("content-security-policy") == Some("sandbox; default-src 'none'"));
    ensure!(got.header("cross-origin-resource-policy") == Some("cross-origin"));
    // The SVG named like an image is still an attachment there, never drawn.
    let svg_to = app.request("GET", &view(svg_id), &[(judge.0, &judge.1)], b"").await;
    let svg_signed = path_of(svg_to.header("location").context("a Location")?).to_owned();
    let svg = http::request(&evidence_host, "GET", &svg_signed, &[], b"").await?;
    ensure!(svg.status == 200 && svg.header("content-type") == Some("application/octet-stream"));
    ensure!(svg.header("content-disposition").is_some_and(|d| d.starts_with("attachment")));

    // The same address on the drill's own host name is nothing; so is any page or API on the
    // evidence origin, and an address with a changed file, expiry or signature.
    ensure!(app.request("GET", &signed, &[], b"").await.status == 404, "signed evidence on the drill's origin");
    for path in ["/judge", "/api/judge/queue", "/portal", &view(png_id)] {
        let r = http::request(&evidence_host, "GET", path, &[(judge.0, &judge.1)], b"").await?;
        ensure!(r.status == 404, "{path} on the evidence origin: {}", r.status);
    }
    let parts: Vec<&str> = signed.split('/').collect();
    let (file, expires, sig) = (parts[3], parts[4], parts[5]);
    let forged = [
        format!("/evidence/{id}/{svg_id}/{expires}/{sig}"),
        format!("/evidence/{id}/{file}/{}/{sig}", expires.parse::<i64>()? + 3600),
        format!("/evidence/{id}/{file}/{expires}/{}", "0".repeat(sig.len())),
        format!("/evidence/{id}/{file}/{expires}/zz"),
    ];
    for path in &forged {
        let r = http::request(&evidence_host, "GET", path, &[], b"").await?;
        ensure!(r.status == 404 && r.body.is_empty(), "{path}: {} {}", r.status, r.text());
    }
    app.set_now(at(60) + chrono::Duration::seconds(gongfang_reports::EVIDENCE_LINK_SECONDS + 1));
    let late = http::request(&evidence_host, "GET", &signed, &[], b"").await?;
    ensure!(late.status == 410 && late.code() == "link_expired", "{} {}", late.status, late.text());

    // The workbench may show images from the evidence origin, and from nowhere else.
    let page = app.request("GET", "/judge", &[], b"").await;
    let csp = page.header("content-security-policy").unwrap_or_default().to_owned();
    ensure!(csp.contains(&format!("img-src 'self' data: http://{evidence_host};")), "{csp}");
    let portal = app.request("GET", "/portal", &[], b"").await;
    ensure!(!portal.header("content-security-policy").unwrap_or_default().contains("localhost"));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workbench_shows_images_from_the_evidence_origin() -> anyhow::Result<()> {
    let Some(chromium) = chromium_or_skip()? else { return Ok(()) };
    let app = with_evidence_origin(TestDb::sqlite().await).await;
    let id = file_with_images(&app).await?;
    let mut browser = Browser::launch(&chromium).await?;
    let cdp = &mut browser.cdp;
    let outcome = async {
        open_as(cdp, &app, ANA, "en", id).await?;
        // The image is drawn, 2 × 2 (a broken or refused one has no width).
        let drawn = "(() => { const i = document.querySelector('img[data-inline]'); \
                     return i && i.complete && i.naturalWidth === 2 ? i.currentSrc : ''; })()";
        let src = cdp.wait_for("the image loaded", drawn).await?;
        shot(cdp, "workbench-evidence-origin-en").await?;
        anyhow::Ok(src)
    }
    .await;
    let problems = std::mem::take(&mut browser.cdp.problems);
    browser.close().await?;
    let src = outcome?;
    // The page asked its own origin, which only redirects to the evidence origin (above): the
    // bytes drawn came from there.
    let asked = format!("/api/judge/reports/{id}/evidence/1/view");
    ensure!(src.as_str().is_some_and(|s| s.ends_with(&asked)), "{src}");
    ensure!(problems.is_empty(), "the page reported problems: {problems:#?}");
    app.stop().await;
    Ok(())
}
