//! Container logs for the judges on the real Docker engine: a service's own container and its
//! sidecar write known lines to stdout and stderr at known moments (through a tiny static
//! program in a `FROM scratch` image built here), and [`ServiceLogs::window`] must return
//! exactly the lines of the asked team and service in the asked window, oldest first, at most
//! `limit`. Everything made here carries `gongfang.test=logs` and is removed at the end.
//! Skips with a message where no engine exists; `GONGFANG_REQUIRE_DOCKER=1` makes that a failure.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use chrono::{DateTime, Utc};
use common::{drill, engine};
use futures::StreamExt;
use gongfang_docker::{Backend, Error, LogLine, LogStream, MAX_LINE_BYTES, Runtime, ServiceLogs, labels};

const TEST_LABEL: &str = "gongfang.test";
const TEST_VALUE: &str = "logs";

/// The program in the test image: runs its arguments as steps, `out:TEXT` and `err:TEXT`
/// (one line to stdout or stderr), `long:N` (one stdout line of N digits `0123456789…`) and
/// `sleep:MS`, then exits. Steps are 30 ms apart so every line gets its own timestamp.
const WRITER: &str = r#"
use std::io::Write;
fn main() {
    for step in std::env::args().skip(1) {
        let (op, arg) = step.split_once(':').unwrap_or((step.as_str(), ""));
        match op {
            "out" => std::io::stdout().write_all(format!("{arg}\n").as_bytes()).unwrap(),
            "err" => std::io::stderr().write_all(format!("{arg}\n").as_bytes()).unwrap(),
            "long" => {
                let n: usize = arg.parse().unwrap();
                let line: String = (0..n).map(|i| char::from(b'0' + (i % 10) as u8)).chain(['\n']).collect();
                std::io::stdout().write_all(line.as_bytes()).unwrap();
            }
            "sleep" => std::thread::sleep(std::time::Duration::from_millis(arg.parse().unwrap())),
            _ => {
                eprintln!("unknown step {step}");
                std::process::exit(2);
            }
        }
        std::io::stdout().flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
}
"#;

/// Builds the writer statically (musl, else static glibc) into `dir` with a `FROM scratch`
/// Dockerfile beside it.
fn writer_context(dir: &Path) {
    std::fs::write(dir.join("writer.rs"), WRITER).unwrap();
    let out = dir.join("writer");
    let build = |extra: &[&str]| {
        std::process::Command::new("rustc")
            .args(["--edition", "2021", "-O"])
            .args(extra)
            .arg("-o")
            .arg(&out)
            .arg(dir.join("writer.rs"))
            .status()
            .is_ok_and(|s| s.success())
    };
    let built = build(&["--target", "x86_64-unknown-linux-musl"]) || build(&["-C", "target-feature=+crt-static"]);
    assert!(built, "cannot build the static log writer");
    std::fs::remove_file(dir.join("writer.rs")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY writer /writer\nUSER 65534:65534\nENTRYPOINT [\"/writer\"]\n",
    )
    .unwrap();
}

/// Removes this run's containers and image when dropped, also when the test panicked.
struct Cleanup {
    drill: String,
    image: String,
}

impl Cleanup {
    fn filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_owned(),
            vec![format!("{TEST_LABEL}={TEST_VALUE}"), format!("{}={}", labels::DRILL, self.drill)],
        )])
    }

    /// Removes everything; returns how many containers were left afterwards.
    async fn run(&self, d: &Docker) -> usize {
        let list =
            || d.list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&self.filters()).build()));
        for c in list().await.unwrap_or_default() {
            if let Some(id) = c.id {
                let _ = d
                    .remove_container(&id, Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build()))
                    .await;
            }
        }
        let _ = d.remove_image(&self.image, Some(RemoveImageOptionsBuilder::new().force(true).build()), None).await;
        list().await.map(|l| l.len()).unwrap_or(usize::MAX)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async { self.run(&Docker::connect_with_defaults().unwrap()).await })
            })
            .join()
        });
    }
}

/// Runs one labelled container of `team`'s `service` to its end.
async fn run_writer(
    d: &Docker,
    image: &str,
    drill: &str,
    (team, service, component): (&str, &str, &str),
    steps: &[&str],
) {
    let name = format!("gf-{drill}-{team}-{service}-{component}");
    let labels = HashMap::from([
        (TEST_LABEL.to_owned(), TEST_VALUE.to_owned()),
        (labels::DRILL.to_owned(), drill.to_owned()),
        (labels::TEAM.to_owned(), team.to_owned()),
        (labels::SERVICE.to_owned(), service.to_owned()),
        (labels::COMPONENT.to_owned(), component.to_owned()),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(steps.iter().map(|s| (*s).to_owned()).collect()),
        labels: Some(labels),
        host_config: Some(HostConfig { network_mode: Some("none".into()), ..Default::default() }),
        ..Default::default()
    };
    d.create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body).await.unwrap();
    d.start_container(&name, None).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(60), d.wait_container(&name, None).next())
        .await
        .expect("the writer ends within a minute");
    assert_eq!(end.unwrap().unwrap().status_code, 0, "{name} failed");
}

fn digits(n: usize) -> String {
    (0..n).map(|i| char::from(b'0' + (i % 10) as u8)).collect()
}

/// `(component, stream, text)` of each line, for exact comparisons.
fn shown(lines: &[LogLine]) -> Vec<(String, LogStream, String)> {
    lines.iter().map(|l| (l.component.clone(), l.stream, l.text.clone())).collect()
}

fn line(component: &str, stream: LogStream, text: &str) -> (String, LogStream, String) {
    (component.to_owned(), stream, text.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_of_one_services_logs_oldest_first_and_bounded() {
    let Some(engine) = engine(Backend::Docker) else { return };
    let d = engine.docker().clone();
    let drill = drill("logs");
    let image = format!("gongfang-test/logs-writer:{}", std::process::id());
    let cleanup = Cleanup { drill: drill.clone(), image: image.clone() };

    let ctx = tempfile::tempdir().unwrap();
    writer_context(ctx.path());
    engine
        .build_image(&image, ctx.path(), HashMap::from([(TEST_LABEL.to_owned(), TEST_VALUE.to_owned())]))
        .await
        .unwrap();

    let before = Utc::now();
    // The sidecar writes first, so its lines are the oldest although the service's own
    // container comes first in the listing: the merge must go by time.
    run_writer(&d, &image, &drill, ("alpha", "web", "db"), &["out:db ready", "err:db: slow query"]).await;
    run_writer(
        &d,
        &image,
        &drill,
        ("alpha", "web", "main"),
        &[
            "out:main one",
            "err:main two",
            "sleep:1200",
            "out:main three",
            "err:main four 攻防",
            "long:40000",
            "sleep:1200",
            "out:main six",
        ],
    )
    .await;
    // Other services and teams of the drill, which must never show up.
    run_writer(&d, &image, &drill, ("alpha", "api", "main"), &["out:alpha api"]).await;
    run_writer(&d, &image, &drill, ("bravo", "web", "main"), &["err:bravo web"]).await;
    let after = Utc::now();

    let logs = ServiceLogs::new(&engine, drill.clone());
    let wide = (before - chrono::Duration::seconds(60), after + chrono::Duration::seconds(60));

    // Everything, from stopped containers too, with the 40 000-byte line (stored by the engine
    // in 16 KiB parts) joined again up to the bound, and marked as cut.
    let all = logs.window("alpha", "web", wide.0, wide.1, 100).await.unwrap();
    let long = digits(MAX_LINE_BYTES);
    assert_eq!(
        shown(&all),
        vec![
            line("db", LogStream::Stdout, "db ready"),
            line("db", LogStream::Stderr, "db: slow query"),
            line("main", LogStream::Stdout, "main one"),
            line("main", LogStream::Stderr, "main two"),
            line("main", LogStream::Stdout, "main three"),
            line("main", LogStream::Stderr, "main four 攻防"),
            line("main", LogStream::Stdout, &long),
            line("main", LogStream::Stdout, "main six"),
        ]
    );
    assert!(
        all.windows(2).all(|w| w[0].at < w[1].at),
        "strictly oldest first: {:?}",
        all.iter().map(|l| l.at).collect::<Vec<_>>()
    );
    assert!(all.iter().all(|l| before <= l.at && l.at <= after), "timestamps are the engine's, within the run");
    assert_eq!(
        all.iter().filter(|l| l.truncated).map(|l| l.text.len()).collect::<Vec<_>>(),
        vec![MAX_LINE_BYTES],
        "only the 40 000-byte line is cut"
    );
    // Nothing was rotated away: every window is within what the engine keeps.
    assert_eq!(logs.retention("alpha", "web", wide.0).await.unwrap(), None);
    let at = |text: &str| all.iter().find(|l| l.text == text).unwrap().at;
    assert!(at("main three") - at("main two") >= chrono::Duration::milliseconds(1200));

    // An exact window, finer than the engine's whole seconds: both ends included...
    let middle = logs.window("alpha", "web", at("main three"), at(&long), 100).await.unwrap();
    assert_eq!(
        shown(&middle),
        vec![
            line("main", LogStream::Stdout, "main three"),
            line("main", LogStream::Stderr, "main four 攻防"),
            line("main", LogStream::Stdout, &long)
        ]
    );
    // ...and a nanosecond less on each side leaves them out.
    let inner = logs
        .window(
            "alpha",
            "web",
            at("main three") + chrono::Duration::nanoseconds(1),
            at(&long) - chrono::Duration::nanoseconds(1),
            100,
        )
        .await
        .unwrap();
    assert_eq!(shown(&inner), vec![line("main", LogStream::Stderr, "main four 攻防")]);
    let tail: Vec<DateTime<Utc>> =
        logs.window("alpha", "web", at("main three"), wide.1, 100).await.unwrap().iter().map(|l| l.at).collect();
    assert_eq!(tail, vec![at("main three"), at("main four 攻防"), at(&long), at("main six")]);

    // The limit keeps the oldest lines, across containers.
    let first = logs.window("alpha", "web", wide.0, wide.1, 3).await.unwrap();
    assert_eq!(
        shown(&first),
        vec![
            line("db", LogStream::Stdout, "db ready"),
            line("db", LogStream::Stderr, "db: slow query"),
            line("main", LogStream::Stdout, "main one")
        ]
    );
    let one = logs.window("alpha", "web", at("main three"), wide.1, 1).await.unwrap();
    assert_eq!(shown(&one), vec![line("main", LogStream::Stdout, "main three")]);

    // Other teams and services are apart; a window before anything was written is empty.
    assert_eq!(
        shown(&logs.window("bravo", "web", wide.0, wide.1, 100).await.unwrap()),
        vec![line("main", LogStream::Stderr, "bravo web")]
    );
    assert_eq!(
        shown(&logs.window("alpha", "api", wide.0, wide.1, 100).await.unwrap()),
        vec![line("main", LogStream::Stdout, "alpha api")]
    );
    assert_eq!(logs.window("alpha", "web", wide.0, before, 100).await.unwrap(), vec![]);

    // No lines without asking: an inverted window, a zero limit.
    assert_eq!(logs.window("alpha", "web", wide.1, wide.0, 100).await.unwrap(), vec![]);
    assert_eq!(logs.window("alpha", "web", wide.0, wide.1, 0).await.unwrap(), vec![]);

    // A service the team does not run, and another drill, are named in the error.
    let missing = logs.window("alpha", "mail", wide.0, wide.1, 100).await.unwrap_err();
    assert!(matches!(&missing, Error::NotFound(name) if name == &format!("gf-{drill}-alpha-mail")), "{missing}");
    assert!(missing.to_string().contains("alpha-mail"), "{missing}");
    let other = ServiceLogs::new(&engine, format!("{drill}-other"));
    assert!(matches!(other.window("alpha", "web", wide.0, wide.1, 100).await, Err(Error::NotFound(_))));

    assert_eq!(cleanup.run(&d).await, 0, "every container of the test is removed");
    assert!(d.inspect_image(&image).await.is_err(), "the test image is removed");
}
