//! `gongfang team import` as organisers run it before a drill: three hundred teams from a
//! spreadsheet into a scenario that `gongfang validate` then accepts, and a file with mistakes
//! that changes nothing and names every mistake with its line.

use std::process::{Command, Output};

const SCENARIO: &str = r#"# The drill of the test, written by hand.
[drill]
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
"#;

fn gongfang(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gongfang"))
        .args(args)
        .env("GONGFANG_TEST_SECRET", "x".repeat(32))
        .env("GONGFANG_LOG", "warn")
        .output()
        .expect("run gongfang")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn three_hundred_teams_come_in_from_a_csv_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.wasm"), b"\0asm").unwrap();
    let scenario = dir.path().join("drill.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let mut csv = String::from("slug,name,name_zh,role\n");
    csv.push_str("kowloon-city,\"Kowloon City District Office, IT Unit\",\"九龍城民政事務處，資訊科技組\",defender\n");
    for n in 1..300 {
        csv.push_str(&format!("blue-{n:03},Blue Team {n},藍隊 {n},both\n"));
    }
    let file = dir.path().join("teams.csv");
    std::fs::write(&file, csv).unwrap();

    let out =
        gongfang(&["team".as_ref(), "import".as_ref(), file.as_os_str(), "--into".as_ref(), scenario.as_os_str()]);
    assert!(out.status.success(), "import failed: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("300 teams added"), "{}", text(&out.stdout));
    let grown = std::fs::read_to_string(&scenario).unwrap();
    assert!(grown.starts_with(SCENARIO), "the scenario's own text, comments included, is kept");
    assert!(
        grown.contains(
            "id = 3\nslug = \"kowloon-city\"\nname = \"Kowloon City District Office, IT Unit\"\n\
             name_zh = \"九龍城民政事務處，資訊科技組\"\nrole = \"defender\"\nnetwork = \"10.60.3.0/24\""
        ),
        "the first imported team: {}",
        &grown[SCENARIO.len()..SCENARIO.len() + 300]
    );
    // Past 10.60.255.0/24 the networks go on in 10.61.
    assert!(
        grown.contains("slug = \"blue-299\"") && grown.contains("network = \"10.61.45.0/24\""),
        "the last networks"
    );

    let out = gongfang(&["validate".as_ref(), scenario.as_os_str()]);
    assert!(out.status.success(), "the grown scenario is valid: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("302 teams"), "{}", text(&out.stdout));
}

#[test]
fn a_file_with_mistakes_changes_nothing_and_names_each_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.wasm"), b"\0asm").unwrap();
    let scenario = dir.path().join("drill.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let file = dir.path().join("teams.csv");
    std::fs::write(
        &file,
        "slug,name,role,network\nalpha,Again,both,\nnew-one,New,judge,\nnew-two,,both,\nnew-three,Three,both,10.60.2.0/24\n",
    )
    .unwrap();
    let out =
        gongfang(&["team".as_ref(), "import".as_ref(), file.as_os_str(), "--into".as_ref(), scenario.as_os_str()]);
    assert!(!out.status.success(), "a bad file is refused");
    let stderr = text(&out.stderr);
    for (line, says) in [(3, "not one of"), (4, "no name")] {
        assert!(stderr.contains(&format!("line {line}:")) && stderr.contains(says), "line {line}: {stderr}");
    }
    assert_eq!(std::fs::read_to_string(&scenario).unwrap(), SCENARIO, "nothing was written");

    // With the rows fixed, the clashes with the scenario's own teams are named.
    std::fs::write(&file, "slug,name,role,network\nalpha,Again,both,\nnew-three,Three,both,10.60.2.0/24\n").unwrap();
    let out =
        gongfang(&["team".as_ref(), "import".as_ref(), file.as_os_str(), "--into".as_ref(), scenario.as_os_str()]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 2: slug `alpha` is taken"), "{stderr}");
    assert!(stderr.contains("line 3: network 10.60.2.0/24 overlaps"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&scenario).unwrap(), SCENARIO, "nothing was written");
}
