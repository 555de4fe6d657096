//! Writes a team's after-action report (`gongfang report after-action`): the reports crate's
//! page as an HTML file, or printed to PDF by headless Chromium (the binary named by
//! `GONGFANG_CHROMIUM`, else `chromium`, `chromium-browser` or `google-chrome` on the `PATH`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use gongfang_reports::after_action::{AfterAction, Lang};

/// Longest a PDF may take to print.
const PRINT_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes `report` in `lang` to `out`, a new file: PDF when its name ends in `.pdf`, else HTML.
pub fn write(report: &AfterAction, lang: Lang, out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{} already exists; move it away or choose another --out", out.display());
    }
    let html = report.html(lang);
    if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")) {
        let scratch = Scratch::new()?;
        let page = scratch.0.join("report.html");
        std::fs::write(&page, &html)?;
        print_pdf(&page, out, &scratch.0)
    } else {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .with_context(|| format!("cannot write {}", out.display()))?;
        file.write_all(html.as_bytes())?;
        file.sync_all()?;
        Ok(())
    }
}

/// Prints the HTML file `page` to the new PDF file `pdf` with headless Chromium (A4, no
/// header or footer).
pub fn print_to_pdf(page: &Path, pdf: &Path) -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    print_pdf(page, pdf, &scratch.0)
}

/// A folder of its own for a print's page and Chromium's profile, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("gongfang-print-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Chromium to print with, if this machine has one.
pub fn chromium() -> Option<PathBuf> {
    if let Some(named) = std::env::var_os("GONGFANG_CHROMIUM") {
        return Some(PathBuf::from(named));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Prints `page` to `pdf` (new), Chromium writing into `scratch` first.
fn print_pdf(page: &Path, pdf: &Path, scratch: &Path) -> anyhow::Result<()> {
    let printed = scratch.join("printed.pdf");
    let Some(chromium) = chromium() else {
        bail!(
            "printing a PDF needs Chromium (apt-get install chromium, or name it in GONGFANG_CHROMIUM); \
             or ask for HTML with an --out ending in .html and print it from a browser"
        );
    };
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", scratch.join("profile").display()))
        .arg(format!("--print-to-pdf={}", printed.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", chromium.display()))?;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > PRINT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not print the PDF within {PRINT_TIMEOUT:?}", chromium.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() || !printed.is_file() {
        bail!(
            "{} printed no PDF ({status}); print the HTML form (--out ….html) from a browser instead",
            chromium.display()
        );
    }
    // Into place only when whole, and never over a file that appeared meanwhile.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(pdf)
        .with_context(|| format!("cannot write {}", pdf.display()))?;
    std::io::copy(&mut std::fs::File::open(&printed)?, &mut out)?;
    out.sync_all()?;
    Ok(())
}
