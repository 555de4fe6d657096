//! `gongfang validate` as an organiser runs it: exit codes and every located error printed.

use std::process::Command;

fn gongfang() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gongfang"))
}

#[test]
fn broken_file_prints_every_error_with_location_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drill.toml");
    std::fs::write(
        &file,
        r#"[drill]
slug = "t"
name = "Test"
duration = "1h"
tik = "60s"
secret = "0123456789abcdef0123"

[[team]]
id = 1
slug = "alpha"
name = "Alpha"
network = "10.60.1.0/24"

[[team]]
id = 2
slug = "alpha"
name = "Alpha again"
network = "10.60.1.0/25"

[[service]]
slug = "notes"
name = "Notes"
image = "notes:latest"
ports = [8080]
checker = "notes.wasm"
"#,
    )
    .unwrap();
    let out = gongfang().arg("validate").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let shown = file.display().to_string();
    assert!(stderr.contains(&format!("{shown}:5:1: error: unknown key `tik` in [drill]")), "{stderr}");
    assert!(stderr.contains("did you mean `tick`?"), "{stderr}");
    assert!(stderr.contains(&format!("{shown}:14:1: error: duplicate team slug `alpha`")), "{stderr}");
    assert!(stderr.contains("overlaps 10.60.1.0/24"), "{stderr}");
    // The checker really is missing on disk: validation looked.
    assert!(stderr.contains(&format!("{shown}:25:11: error: checker file `notes.wasm` does not exist")), "{stderr}");
    // Not a demo, so the inline secret is refused: whoever reads the file could mint flags.
    assert!(stderr.contains(&format!("{shown}:6:10: error: an inline `secret` is for demos only")), "{stderr}");
    assert!(stderr.contains("5 problems"), "{stderr}");
}

#[test]
fn valid_file_exits_0_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.wasm"), b"\0asm").unwrap();
    let file = dir.path().join("drill.toml");
    std::fs::write(
        &file,
        r#"[drill]
slug = "t"
name = "Test"
name_zh = "測試"
duration = "1h"
secret_env = "GONGFANG_TEST_SECRET"

[[team]]
id = 1
slug = "alpha"
name = "Alpha"
network = "10.60.1.0/24"

[[team]]
id = 2
slug = "bravo"
name = "Bravo"
role = "defender"
network = "10.60.2.0/24"

[[service]]
slug = "notes"
name = "Notes"
image = "notes:latest"
ports = [8080]
checker = "notes.wasm"
"#,
    )
    .unwrap();
    let out = gongfang().arg("validate").arg(&file).env("GONGFANG_TEST_SECRET", "x".repeat(32)).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok — \"Test\" (測試), 2 teams (2 defending), 1 services"), "{stdout}");

    // The same file without the variable names what is missing.
    let out = gongfang().arg("validate").arg(&file).env_remove("GONGFANG_TEST_SECRET").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("environment variable GONGFANG_TEST_SECRET is not set"));
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let out = gongfang().args(["validate", "no/such/drill.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("cannot read scenario no/such/drill.toml"));
}
