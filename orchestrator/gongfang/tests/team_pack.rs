//! `gongfang team pack` as organisers run it before a drill with a VPN: one folder per team
//! with a token that works, fresh WireGuard configs and shell keys, and a bilingual how-to that
//! prints on one A4 page (headless Chromium prints it, as it prints after-action reports;
//! `pdfinfo` counts the pages). A second pack into the same folder is refused, and the audit
//! log never holds a secret.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use gongfang_store::Store;

fn gongfang(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gongfang"))
        .args(args)
        .env("GONGFANG_DATABASE_URL", url)
        .env("USER", "olga")
        .env("GONGFANG_LOG", "warn")
        .output()
        .expect("run gongfang")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scenario(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("notes.wasm"), b"").unwrap();
    let file = dir.join("scenario.toml");
    std::fs::write(
        &file,
        "[drill]\nslug = \"packs\"\nname = \"Harbour Drill\"\nname_zh = \"海港演練\"\nduration = \"1h\"\ndemo = true\n\
         secret = \"0123456789abcdef\"\n\n\
         [[team]]\nid = 1\nslug = \"kowloon-cyber\"\nname = \"Kowloon <Cyber> & Data Unit\"\nname_zh = \"九龍網絡安全組\"\n\
         network = \"10.60.1.0/24\"\n\n\
         [[team]]\nid = 2\nslug = \"harbour-data\"\nname = \"Harbour Data Office\"\nname_zh = \"海港數據辦公室\"\n\
         role = \"defender\"\nnetwork = \"10.60.2.0/24\"\n\n\
         [[team]]\nid = 3\nslug = \"red-lion\"\nname = \"Red Lion\"\nname_zh = \"紅獅隊\"\nrole = \"attacker\"\n\
         network = \"10.60.3.0/24\"\n\n\
         [[service]]\nslug = \"notes\"\nname = \"Notes\"\nimage = \"notes:latest\"\nports = [8080]\nchecker = \"notes.wasm\"\n\n\
         [vpn]\nlisten = \"127.0.0.1:51899\"\nrange = \"10.80.0.0/16\"\npeers_per_team = 2\n",
    )
    .unwrap();
    file
}

#[test]
fn every_team_gets_a_pack_that_works_and_a_how_to_on_one_page() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    let scenario = scenario(dir.path());
    let out = dir.path().join("packs");
    let args = [
        "team",
        "pack",
        "--scenario",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--web",
        "https://drill.example.hk/",
        "--submission",
        "drill.example.hk:31337",
    ];
    let run = gongfang(&url, &args);
    assert!(run.status.success(), "pack failed: {}\n{}", text(&run.stdout), text(&run.stderr));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(Store::connect(&url)).unwrap();
    for (slug, id) in [("kowloon-cyber", 1), ("harbour-data", 2), ("red-lion", 3)] {
        let pack = out.join(slug);
        let token = std::fs::read_to_string(pack.join("token.txt")).unwrap().trim().to_owned();
        let team = runtime.block_on(store.verify_token(&token)).unwrap();
        assert_eq!(team.map(|t| t.0), Some(id), "{slug}'s token is its own and works");
        for file in ["token.txt", &format!("{slug}-1.conf"), &format!("{slug}-2.conf"), &format!("{slug}-1.ssh")] {
            let mode = std::fs::metadata(pack.join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{slug}/{file} is readable by its owner only");
        }
        let howto = std::fs::read_to_string(pack.join("how-to.html")).unwrap();
        assert!(howto.contains(&token), "the how-to shows the token");
        assert!(howto.contains("https://drill.example.hk/portal"), "and the portal's address");
        assert!(howto.contains(&format!("sudo wg-quick up ./{slug}-1.conf")), "and the VPN");
        assert!(howto.contains("海港演練"), "in Chinese too");
        let attacks = slug != "harbour-data";
        assert_eq!(howto.contains("nc drill.example.hk 31337"), attacks, "{slug}: flag submission only for attackers");
        assert_eq!(howto.contains("ssh -i kowloon-cyber-1.ssh"), slug == "kowloon-cyber", "shells for defenders");
    }
    let howto = std::fs::read_to_string(out.join("kowloon-cyber").join("how-to.html")).unwrap();
    assert!(howto.contains("Kowloon &lt;Cyber&gt; &amp; Data Unit"), "names are escaped");
    let audit = runtime.block_on(store.list_audit(None, 50)).unwrap();
    let packs = audit.iter().filter(|a| a.action == "team.pack").count();
    assert_eq!(packs, 3, "each pack is audited");
    for slug in ["kowloon-cyber", "harbour-data", "red-lion"] {
        let token = std::fs::read_to_string(out.join(slug).join("token.txt")).unwrap();
        assert!(!audit.iter().any(|a| a.detail.to_string().contains(token.trim())), "no token in the audit log");
    }

    // A second pack into the same folder overwrites nothing.
    let again = gongfang(&url, &args);
    assert!(!again.status.success() && text(&again.stderr).contains("already holds a pack"), "{}", text(&again.stderr));

    // The how-to prints on one A4 page.
    let Some(_) = gongfang_test_support::browser::chromium_or_skip().unwrap() else { return };
    let pdf = dir.path().join("how-to.pdf");
    gongfang::after_action::print_to_pdf(&out.join("kowloon-cyber").join("how-to.html"), &pdf).unwrap();
    let info = Command::new("pdfinfo").arg(&pdf).output().expect("pdfinfo (apt-get install poppler-utils)");
    let pages = text(&info.stdout).lines().find_map(|l| l.strip_prefix("Pages:").map(|p| p.trim().to_owned()));
    assert_eq!(pages.as_deref(), Some("1"), "the how-to is one page: {}", text(&info.stdout));
}
