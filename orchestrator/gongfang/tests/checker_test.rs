//! `gongfang checker test` as a challenge author runs it: the built binary against the good
//! fixture and a live test service; its exit code follows the verdicts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Output;

use gongfang_test_programs::{KvService, components};

async fn gongfang(args: Vec<String>) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_gongfang")).args(args).output().await.expect("run gongfang")
}

fn args(target: SocketAddr, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["checker", "test", components::GOOD, "--target", &target.to_string()].iter().map(|s| s.to_string()).collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test]
async fn every_action_is_ok_against_a_working_service() {
    let service = KvService::start(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await.expect("service");
    let out = gongfang(args(service.addr(), &["--rounds", "2"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("service \"kv\": 1 flag store(s), with exploit"), "{stdout}");
    for action in ["check", "put [store 0]", "get [store 0]", "exploit [store 0]"] {
        assert_eq!(stdout.matches(&format!("{action:<18} ok")).count(), 2, "{action} twice ok:\n{stdout}");
    }
    assert!(stdout.contains("log:     planted under"), "private log is printed:\n{stdout}");
    assert!(stdout.contains("8 action(s): 8 ok"), "{stdout}");
    assert_eq!(service.len(), 4, "two check values and two flags stored");
}

#[tokio::test]
async fn a_broken_service_makes_the_command_fail() {
    let service = KvService::start(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await.expect("service");
    service.answer_garbage(true);
    let out = gongfang(args(service.addr(), &["--action", "check"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("mumble"), "{stdout}");
    assert!(stdout.contains("public:  storing a value does not work"), "{stdout}");
    assert!(stdout.contains("1 action(s): 1 mumble"), "{stdout}");
}
