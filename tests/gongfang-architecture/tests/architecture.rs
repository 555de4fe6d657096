//! The map checks itself: the workspace's dependencies keep to `ARCHITECTURE.md`'s boundaries,
//! and every Rust file in the repository says what it is for.

use std::path::{Path, PathBuf};
use std::process::Command;

use gongfang_architecture::{Workspace, files_without_purpose};

/// The repository's root: this crate lives in `tests/gongfang-architecture`.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository's root")
}

/// Every crate depends only on what `ARCHITECTURE.md` allows it (see the rules in this
/// crate's library), and the teams' command pulls in no server crate at all.
#[test]
fn dependencies_keep_to_the_map() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(repository().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let workspace = Workspace::from_metadata(&metadata).expect("cargo metadata has packages and a graph");
    let broken = workspace.violations();
    assert!(
        broken.is_empty(),
        "the workspace breaks ARCHITECTURE.md's boundaries ({} found):\n{}",
        broken.len(),
        broken.iter().map(|v| format!("  - {v}")).collect::<Vec<_>>().join("\n")
    );
}

/// Every `.rs` file, guests and challenges included, starts with a `//!` line saying what it
/// is for (blank lines before it are allowed; nothing else is).
#[test]
fn every_rust_file_says_what_it_is_for() {
    let missing = files_without_purpose(&repository()).expect("the repository is readable");
    assert!(
        missing.is_empty(),
        "{} Rust file(s) do not start with a `//!` line saying what they are for:\n{}",
        missing.len(),
        missing.iter().map(|p| format!("  - {}", p.display())).collect::<Vec<_>>().join("\n")
    );
}
