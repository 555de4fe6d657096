//! `gongfang team pack --scenario S --out DIR --web URL`: a credential pack per team for the
//! organisers to hand over: a fresh team token, the team's WireGuard configs and shell keys
//! (fresh keys; the drill's gateway takes them) when the drill has a VPN, and a one-page how-to
//! in English and Hong Kong Chinese that says how to use each. Issuing a pack replaces what the
//! team had before; every pack is audited (never its secrets).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use gongfang_core::scenario::{Scenario, Team};
use serde_json::json;

use crate::migrate::DatabaseArgs;
use crate::scenario_file;

#[derive(Debug, clap::Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The drill's scenario; its teams are loaded into the database.
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// The folder the packs go in, one folder per team (made, readable by its owner only).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Where teams reach the drill's web (portal, scoreboard, `PUT /flags`), e.g.
    /// https://drill.example.hk.
    #[arg(long, value_name = "URL")]
    pub web: String,
    /// Where teams submit flags over TCP (the FAUST protocol), e.g. drill.example.hk:31337;
    /// left out of the how-to when not given.
    #[arg(long, value_name = "HOST:PORT")]
    pub submission: Option<String>,
    /// Only these teams (by slug; repeat the option); every team without it.
    #[arg(long = "team", value_name = "SLUG")]
    pub teams: Vec<String>,
    /// Who is doing this, for the audit log (default: the `USER` environment variable).
    #[arg(long)]
    pub actor: Option<String>,
}

pub fn run(args: PackArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(pack(args))
}

async fn pack(args: PackArgs) -> anyhow::Result<ExitCode> {
    let web = args.web.trim().trim_end_matches('/').to_owned();
    if !(web.starts_with("https://") || web.starts_with("http://")) || web.len() > 200 {
        bail!("--web `{}` is not a web address; write it like https://drill.example.hk", args.web);
    }
    let scenario = scenario_file::load(&args.scenario)?;
    let teams: Vec<&Team> = if args.teams.is_empty() {
        scenario.teams.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for slug in &args.teams {
            let Some(team) = scenario.teams.iter().find(|t| t.slug == *slug) else {
                let known: Vec<&str> = scenario.teams.iter().map(|t| t.slug.as_str()).collect();
                bail!("no team `{slug}` in the scenario; its teams are: {}", known.join(", "));
            };
            chosen.push(team);
        }
        chosen
    };
    for team in &teams {
        let dir = args.out.join(&team.slug);
        if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
            bail!("{} already holds a pack; move it away or choose another --out", dir.display());
        }
    }
    let actor = args
        .actor
        .clone()
        .filter(|a| !a.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    let store = args.db.open().await?;
    store.sync_scenario(&scenario).await?;
    crate::vpn::make_private_dir(&args.out)?;

    for team in &teams {
        let dir = args.out.join(&team.slug);
        crate::vpn::make_private_dir(&dir)?;
        let issued = store.issue_token(&team.slug).await?;
        crate::vpn::write_private(&dir.join("token.txt"), format!("{}\n", issued.token.expose()).as_bytes())
            .with_context(|| format!("writing {}", dir.join("token.txt").display()))?;
        if scenario.vpn.is_some() {
            let config = crate::vpn::ConfigArgs {
                common: crate::vpn::Common {
                    db: DatabaseArgs { database_url: args.db.database_url.clone() },
                    scenario: args.scenario.clone(),
                    actor: Some(actor.clone()),
                },
                team: team.slug.clone(),
                out: dir.clone(),
                rotate: true,
            };
            crate::vpn::config(config).await?;
        }
        let howto = how_to(&scenario, team, &dir, &web, args.submission.as_deref(), issued.token.expose())?;
        crate::vpn::write_private(&dir.join("how-to.html"), howto.as_bytes())
            .with_context(|| format!("writing {}", dir.join("how-to.html").display()))?;
        store
            .append_audit(
                Utc::now(),
                &actor,
                "team.pack",
                &json!({ "team": team.slug, "vpn": scenario.vpn.is_some(), "web": web }),
            )
            .await?;
        println!("{}: pack written to {}", team.slug, dir.display());
    }
    store.close().await?;
    eprintln!(
        "each team's earlier token{} no longer works; the packs hold secrets: hand each folder to its team only",
        if scenario.vpn.is_some() { ", configs and shell keys" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `text` for HTML: the names come from the scenario, which organisers type.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The files of `dir` whose names end in `ending`, sorted.
fn files(dir: &Path, ending: &str) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(ending))
        .collect();
    names.sort();
    Ok(names)
}

/// The one-page how-to of `team`'s pack, in English and Hong Kong Chinese side by side.
fn how_to(
    scenario: &Scenario,
    team: &Team,
    dir: &Path,
    web: &str,
    submission: Option<&str>,
    token: &str,
) -> anyhow::Result<String> {
    let drill = &scenario.drill.name;
    let mut steps = String::new();
    let mut step = |en: String, zh: String| {
        let _ = writeln!(steps, "<li><p lang=\"en\">{en}</p><p lang=\"zh-HK\">{zh}</p></li>");
    };
    let web = escape(web);
    step(
        format!(
            "Your team token is below. It identifies your team everywhere: keep it secret. Log in to your team \
             portal at <code>{web}/portal</code> with it to see your services, submit flags and file reports."
        ),
        format!(
            "下方是你隊的隊伍權杖，用於所有服務的身份識別，請妥善保密。以此權杖登入隊伍專頁 <code>{web}/portal</code>，即可查看服務狀況、遞交旗幟及提交報告。"
        ),
    );
    if let Some(vpn) = &scenario.vpn {
        let configs = files(dir, ".conf")?;
        let keys = files(dir, ".ssh")?;
        let list = |names: &[String]| {
            names.iter().map(|n| format!("<code>{}</code>", escape(n))).collect::<Vec<_>>().join(", ")
        };
        step(
            format!(
                "Join the drill's network with WireGuard: one config per machine ({}); on Linux \
                 <code>sudo wg-quick up ./{}</code>. Each config works on one machine at a time.",
                list(&configs),
                escape(configs.first().map_or("", String::as_str))
            ),
            format!(
                "以 WireGuard 連接演練網絡：每部電腦使用一個設定檔（{}）；Linux 可執行 <code>sudo wg-quick up ./{}</code>。每個設定檔同一時間只可在一部電腦使用。",
                list(&configs),
                escape(configs.first().map_or("", String::as_str))
            ),
        );
        let position = scenario.teams.iter().position(|t| t.slug == team.slug);
        if team.role.defends()
            && let Some(port) = position.and_then(|p| vpn.shell_port_of(p))
        {
            let key = escape(keys.first().map_or("", String::as_str));
            step(
                format!(
                    "Open a shell in your own services over the VPN: <code>ssh -i {key} -p {port} SERVICE@{}</code> \
                     (SERVICE is the service's short name; each config has its own key: {}).",
                    vpn.gateway,
                    list(&keys)
                ),
                format!(
                    "經 VPN 進入你隊服務的命令列：<code>ssh -i {key} -p {port} 服務簡稱@{}</code>（每個設定檔各有其密碼匙：{}）。",
                    vpn.gateway,
                    list(&keys)
                ),
            );
        }
    }
    if team.role.attacks() {
        let tcp = submission.map(|s| {
            let s = escape(s);
            (
                format!(" or one per line over TCP: <code>nc {}</code>", s.replacen(':', " ", 1)),
                format!("，或經 TCP 每行一個：<code>nc {}</code>", s.replacen(':', " ", 1)),
            )
        });
        let (tcp_en, tcp_zh) = tcp.unwrap_or_default();
        step(
            format!(
                "Submit captured flags in the portal, with <code>PUT {web}/flags</code> (header \
                 <code>X-Team-Token</code>, a JSON list of flags){tcp_en}. Targets and flag ids: \
                 <code>{web}/api/attack-info</code>."
            ),
            format!(
                "在專頁遞交取得的旗幟，或使用 <code>PUT {web}/flags</code>（標頭 <code>X-Team-Token</code>，內容為旗幟的 JSON 列表）{tcp_zh}。攻擊目標及旗幟編號：<code>{web}/api/attack-info</code>。"
            ),
        );
    }
    step(
        format!("The scoreboard and the organisers' announcements: <code>{web}/</code>."),
        format!("計分板及主辦單位公告：<code>{web}/</code>。"),
    );
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{drill_en} · {team_en}</title>
<style>
@page {{ size: A4; margin: 14mm; }}
body {{ font-family: "Noto Sans CJK TC", "Noto Sans", sans-serif; font-size: 10.5pt; line-height: 1.4; color: #111; }}
h1 {{ font-size: 16pt; margin: 0 0 2mm; }}
h2 {{ font-size: 12pt; margin: 0 0 5mm; font-weight: normal; }}
.token {{ font: 13pt monospace; border: 1px solid #111; padding: 3mm; margin: 0 0 5mm; word-break: break-all; }}
ol {{ padding-left: 6mm; }}
li {{ margin-bottom: 3mm; }}
li p {{ margin: 0; }}
li p[lang="zh-HK"] {{ color: #333; }}
code {{ font-family: monospace; font-size: 9.5pt; word-break: break-all; }}
footer {{ margin-top: 6mm; font-size: 9pt; color: #333; }}
</style>
</head>
<body>
<h1>{drill_en} · <span lang="zh-HK">{drill_zh}</span></h1>
<h2>{team_en} · <span lang="zh-HK">{team_zh}</span> (<code>{slug}</code>, #{id})</h2>
<p class="token"><span lang="en">Team token</span> · <span lang="zh-HK">隊伍權杖</span>: {token}</p>
<ol>
{steps}</ol>
<footer><p lang="en">Keep this page and the files beside it within your team. A lost token or config: ask the organisers for a new one; the old one then stops working.</p>
<p lang="zh-HK">請只在隊內保存本頁及隨附檔案。如遺失權杖或設定檔，請向主辦單位申請新的；舊的隨即失效。</p></footer>
</body>
</html>
"#,
        drill_en = escape(&drill.en),
        drill_zh = escape(&drill.zh),
        team_en = escape(&team.name.en),
        team_zh = escape(&team.name.zh),
        slug = escape(&team.slug),
        id = team.id.0,
        token = escape(token),
    );
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_html() {
        assert_eq!(
            escape(r#"<b>"Kowloon" & 'East'</b>"#),
            "&lt;b&gt;&quot;Kowloon&quot; &amp; &#39;East&#39;&lt;/b&gt;"
        );
    }
}
