//! A headless Chromium driven over the Chrome DevTools Protocol, for the tests of the pages:
//! launch it, open a page, evaluate script in it, wait until the page shows something, write
//! a screenshot. Exceptions and error-level console lines of the page are collected, so a test
//! can insist there were none.
//!
//! Without Chromium a test is skipped with a notice ([`chromium_or_skip`]), unless
//! `GONGFANG_REQUIRE_BROWSER=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// The flags CI runs Chromium with; the debugging port and profile are added per run.
pub const CHROMIUM_FLAGS: [&str; 4] =
    ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

/// How long one DevTools call, or one wait for the page, may take.
pub const WAIT: Duration = Duration::from_secs(20);

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Set by the portal's and the console's script on `<body>` once the page has loaded its
/// catalogue and asked who is logged in: a script to wait for.
pub const PAGE_READY: &str = "document.body?.dataset.ready === 'true'";

/// A script that sets the form field with id `id` to `value` as typing would (an `input`
/// event follows).
pub fn fill(id: &str, value: &str) -> String {
    format!(
        "(() => {{ const e = document.getElementById({id}); e.value = {value}; \
         e.dispatchEvent(new Event('input', {{ bubbles: true }})); return true; }})()",
        id = serde_json::json!(id),
        value = serde_json::json!(value)
    )
}

/// A script that submits the form with id `form` as its submit button would.
pub fn submit(form: &str) -> String {
    format!("document.getElementById({}).requestSubmit() || true", serde_json::json!(form))
}

/// A script that clicks the first element `selector` finds.
pub fn click(selector: &str) -> String {
    format!("document.querySelector({}).click() || true", serde_json::json!(selector))
}

/// Chromium, or `None` after saying the test is skipped; an error when it is required.
pub fn chromium_or_skip() -> Result<Option<PathBuf>> {
    if let Some(chromium) = find_chromium() {
        return Ok(Some(chromium));
    }
    if std::env::var("GONGFANG_REQUIRE_BROWSER").as_deref() == Ok("1") {
        bail!("GONGFANG_REQUIRE_BROWSER=1 but no `chromium` on PATH; install it: apt-get install chromium");
    }
    eprintln!("SKIPPED browser test: no `chromium` on PATH (apt-get install chromium to run it)");
    Ok(None)
}

/// A headless Chromium, killed when dropped.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    profile: tempfile::TempDir,
    pub cdp: Cdp,
}

impl Browser {
    pub async fn launch(binary: &Path) -> Result<Browser> {
        let profile = tempfile::tempdir()?;
        let log = std::fs::File::create(profile.path().join("chromium.log"))?;
        let child = Command::new(binary)
            .args(CHROMIUM_FLAGS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        // Chromium writes the port it picked and the browser's websocket path to this file.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + WAIT;
        let endpoint = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next())
                    && !port.is_empty()
                    && path.starts_with('/')
                {
                    break format!("ws://127.0.0.1:{}{path}", port.trim());
                }
            }
            if tokio::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(profile.path().join("chromium.log")).unwrap_or_default();
                bail!("Chromium wrote no DevToolsActivePort within {WAIT:?}; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (socket, _) = tokio::time::timeout(WAIT, connect_async(&endpoint)).await??;
        Ok(Browser { child, profile, cdp: Cdp { socket, next_id: 0, session: None, problems: Vec::new() } })
    }

    pub async fn close(mut self) -> Result<()> {
        self.cdp.session = None;
        // The browser may drop the socket before it answers; either way it is going.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.cdp.call("Browser.close", json!({}))).await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            self.child.kill().await?;
        }
        drop(self.profile);
        Ok(())
    }
}

/// A Chrome DevTools Protocol client over one websocket, with flattened sessions.
#[derive(Debug)]
pub struct Cdp {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// The page's session, once attached; commands go to the browser without one.
    pub session: Option<String>,
    /// Exceptions and error-level log entries the page produced.
    pub problems: Vec<String>,
}

impl Cdp {
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            command["sessionId"] = json!(session);
        }
        self.socket.send(Message::Text(command.to_string().into())).await?;
        tokio::time::timeout(WAIT, async {
            loop {
                let message = self.socket.next().await.context("DevTools socket closed")??;
                let Message::Text(text) = message else { continue };
                let value: Value = serde_json::from_str(&text)?;
                if value["id"] == id {
                    if let Some(error) = value.get("error") {
                        bail!("{method} failed: {error}");
                    }
                    return Ok(value["result"].clone());
                }
                self.note_event(&value);
            }
        })
        .await
        .with_context(|| format!("{method} got no answer"))?
    }

    fn note_event(&mut self, value: &Value) {
        match value["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                self.problems.push(format!("exception: {}", value["params"]["exceptionDetails"]));
            }
            Some("Log.entryAdded") if value["params"]["entry"]["level"] == "error" => {
                let entry = &value["params"]["entry"];
                self.problems.push(format!("log: {} ({})", entry["text"], entry["url"].as_str().unwrap_or("")));
            }
            _ => {}
        }
    }

    /// Evaluates `expression` in the page (awaiting it if it is a promise) and returns its
    /// value as JSON.
    pub async fn eval(&mut self, expression: &str) -> Result<Value> {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            bail!("`{expression}` threw: {details}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Evaluates `expression` until it yields something truthy, for at most [`WAIT`]; its value.
    pub async fn wait_for(&mut self, what: &str, expression: &str) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = self.eval(expression).await?;
            if !(value.is_null() || value == false || value == "" || value == 0) {
                return Ok(value);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("timed out after {WAIT:?} waiting for {what} (`{expression}`)");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a page in a new target, 1280 × 900, attaches to it with its exceptions and
    /// console errors reported, and makes it the page later calls go to. Returns its session,
    /// to come back to it later (`cdp.session = Some(…)`).
    pub async fn open_page(&mut self) -> Result<String> {
        self.open_in(None).await
    }

    /// [`Cdp::open_page`] in a browser context of its own: its own cookies and storage, as a
    /// second person's browser.
    pub async fn open_isolated_page(&mut self) -> Result<String> {
        self.session = None;
        let context = self.call("Target.createBrowserContext", json!({})).await?;
        let id = context["browserContextId"].as_str().context("no browser context id")?.to_owned();
        self.open_in(Some(id)).await
    }

    async fn open_in(&mut self, context: Option<String>) -> Result<String> {
        self.session = None;
        let mut params = json!({ "url": "about:blank" });
        if let Some(context) = context {
            params["browserContextId"] = json!(context);
        }
        let target = self.call("Target.createTarget", params).await?;
        let attached =
            self.call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true })).await?;
        let session = attached["sessionId"].as_str().context("no session id")?.to_owned();
        self.session = Some(session.clone());
        self.call("Runtime.enable", json!({})).await?;
        self.call("Log.enable", json!({})).await?;
        self.call("Page.enable", json!({})).await?;
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await?;
        Ok(session)
    }

    pub async fn navigate(&mut self, url: &str) -> Result<()> {
        self.call("Page.navigate", json!({ "url": url })).await?;
        Ok(())
    }

    /// Writes a PNG of the whole page to `file` (its folder is made) and returns its path.
    pub async fn screenshot(&mut self, file: &Path) -> Result<PathBuf> {
        let shot =
            self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await?;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().context("no image data")?)?;
        ensure!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG");
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, &png)?;
        Ok(file.to_owned())
    }
}

/// The workspace's `target/` folder, where screenshots go.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}
