//! A drill's export (`gongfang export`), read from its store by [`build`] (the reports crate's,
//! which the after-action reports share), written as one JSON document, as CSV files in a
//! folder, or as CTFtime's scoreboard feed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gongfang_core::export::Export;
pub use gongfang_reports::export::build;

/// The forms `gongfang export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document (`docs/export.schema.json`).
    Json,
    /// A folder of CSV files, one per table.
    Csv,
    /// CTFtime's scoreboard feed: the final standings only.
    Ctftime,
}

/// Writes `export` in `format` at `out`: a new file (JSON, CTFtime), or a new or empty folder
/// (CSV). Refuses to replace anything. The paths written, in order.
pub fn write(export: &Export, format: Format, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    match format {
        Format::Json => {
            let mut bytes = serde_json::to_vec_pretty(export)?;
            bytes.push(b'\n');
            new_file(out, &bytes)?;
            Ok(vec![out.to_owned()])
        }
        Format::Ctftime => {
            let mut bytes = serde_json::to_vec_pretty(&export.ctftime())?;
            bytes.push(b'\n');
            new_file(out, &bytes)?;
            Ok(vec![out.to_owned()])
        }
        Format::Csv => {
            if out.read_dir().is_ok_and(|mut d| d.next().is_some()) {
                bail!(
                    "{} is a folder that is not empty; choose a new or empty folder for the CSV files",
                    out.display()
                );
            }
            if out.is_file() {
                bail!("{} is a file; CSV exports are a folder of files: choose a new folder", out.display());
            }
            std::fs::create_dir_all(out).with_context(|| format!("cannot make the folder {}", out.display()))?;
            let mut written = Vec::new();
            for (name, contents) in export.csv_files() {
                let path = out.join(name);
                new_file(&path, contents.as_bytes())?;
                written.push(path);
            }
            Ok(written)
        }
    }
}

fn new_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            anyhow::anyhow!("{} already exists; move it away or choose another --out", path.display())
        }
        _ => anyhow::Error::new(e).context(format!("cannot write {}", path.display())),
    })?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
