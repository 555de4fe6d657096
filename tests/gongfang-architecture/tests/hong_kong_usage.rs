//! The platform serves Hong Kong's government drills: no tracked file may carry Taiwan's words,
//! ministries or their slugs (the list, and what to write instead, is `NOT_HONG_KONG` in this
//! crate's library).

use std::path::{Path, PathBuf};
use std::process::Command;

use gongfang_architecture::not_hong_kong_usage;

/// Larger files are data (archives, images, dumps), not text anyone reads.
const MAX_TEXT_BYTES: u64 = 2 * 1024 * 1024;

/// The repository's root: this crate lives in `tests/gongfang-architecture`.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository's root")
}

/// Every text file git tracks (valid UTF-8, no NUL byte, at most 2 MB) is read, and each word
/// that is not Hong Kong usage is named with its place and what to write instead.
#[test]
fn tracked_text_speaks_hong_kong_usage() {
    let root = repository();
    let listed = Command::new("git").args(["ls-files", "-z"]).current_dir(&root).output().expect("git runs");
    assert!(listed.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&listed.stderr));
    let mut read = 0;
    let mut found = Vec::new();
    for path in listed.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path);
        let file = root.join(&*path);
        // A file deleted in the work tree but not yet in git has nothing to read.
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        if !meta.is_file() || meta.len() > MAX_TEXT_BYTES {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{path} cannot be read: {e}"));
        let Ok(text) = String::from_utf8(bytes) else { continue };
        if text.contains('\0') {
            continue;
        }
        read += 1;
        found.extend(not_hong_kong_usage(&text).into_iter().map(|f| format!("  {path}:{}: {f}", f.line)));
    }
    assert!(read > 100, "only {read} text files were read: does `git ls-files` see the repository?");
    assert!(
        found.is_empty(),
        "{} word(s) are not Hong Kong usage; the platform serves Hong Kong's drills, so write the Hong Kong word \
         or a Hong Kong body instead:\n{}",
        found.len(),
        found.join("\n")
    );
}
