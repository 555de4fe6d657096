//! A team's credential pack, for the organisers to hand over: a fresh team token, the team's
//! WireGuard configs and shell keys (fresh keys, taken by the running gateway) when the drill
//! has a VPN, and a one-page how-to in English and Hong Kong Chinese that says how to use each.
//! The console downloads one as a `.tar.gz` (`POST /api/admin/teams/pack`); `gongfang team
//! pack` writes the same files into a folder per team before the drill. Issuing a pack
//! replaces what the team had before.

use std::fmt::Write as _;
use std::io::Write as _;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gongfang_core::scenario::{Scenario, Team};
use serde::Deserialize;
use serde_json::json;

use crate::admin;
use crate::error::ReportsError;
use crate::state::ReportsState;
use crate::vpn_access::{SecretFile, VpnRefusal};

/// The names of the files a pack holds beside its token and how-to.
#[derive(Debug, Default)]
pub struct PackFiles {
    /// `TEAM-N.conf`, by peer.
    pub configs: Vec<String>,
    /// `TEAM-N.ssh`, by peer.
    pub shell_keys: Vec<String>,
}

/// The longest web or submission address a how-to takes.
const MAX_ADDRESS: usize = 200;

/// `web` as the how-to writes it (no trailing `/`), or why it is no web address.
pub fn web_address(web: &str) -> Result<String, String> {
    let trimmed = web.trim().trim_end_matches('/');
    let scheme = trimmed.starts_with("https://") || trimmed.starts_with("http://");
    if !scheme || trimmed.len() > MAX_ADDRESS || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{web}` is not a web address; write it like https://drill.example.hk"));
    }
    Ok(trimmed.to_owned())
}

/// `host:port` of the TCP flag submission as the how-to writes it, or why it is not one.
pub fn submission_address(submission: &str) -> Result<String, String> {
    let trimmed = submission.trim();
    let valid = trimmed.len() <= MAX_ADDRESS
        && trimmed.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && port.parse::<u16>().is_ok_and(|p| p > 0)
                && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        });
    if !valid {
        return Err(format!("`{submission}` is not a host and port; write it like drill.example.hk:31337"));
    }
    Ok(trimmed.to_owned())
}

/// `text` for HTML (text or an attribute's value): the names come from the scenario, which
/// organisers type, and the after-action report's from teams' reports.
pub(crate) fn escape(text: &str) -> String {
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

/// The one-page how-to of `team`'s pack, in English and Hong Kong Chinese side by side:
/// its token, then how to join the network with `files`, open shells, submit flags and find
/// the board. `submission` is the TCP submission's `host:port`, left out when `None`.
pub fn how_to(
    scenario: &Scenario,
    team: &Team,
    files: &PackFiles,
    web: &str,
    submission: Option<&str>,
    token: &str,
) -> String {
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
        let list = |names: &[String]| {
            names.iter().map(|n| format!("<code>{}</code>", escape(n))).collect::<Vec<_>>().join(", ")
        };
        let first_config = escape(files.configs.first().map_or("", String::as_str));
        step(
            format!(
                "Join the drill's network with WireGuard: one config per machine ({}); on Linux \
                 <code>sudo wg-quick up ./{first_config}</code>. Each config works on one machine at a time.",
                list(&files.configs),
            ),
            format!(
                "以 WireGuard 連接演練網絡：每部電腦使用一個設定檔（{}）；Linux 可執行 <code>sudo wg-quick up ./{first_config}</code>。每個設定檔同一時間只可在一部電腦使用。",
                list(&files.configs),
            ),
        );
        let position = scenario.teams.iter().position(|t| t.slug == team.slug);
        if team.role.defends()
            && let Some(port) = position.and_then(|p| vpn.shell_port_of(p))
        {
            let key = escape(files.shell_keys.first().map_or("", String::as_str));
            step(
                format!(
                    "Open a shell in your own services over the VPN: <code>ssh -i {key} -p {port} SERVICE@{}</code> \
                     (SERVICE is the service's short name; each config has its own key: {}).",
                    vpn.gateway,
                    list(&files.shell_keys)
                ),
                format!(
                    "經 VPN 進入你隊服務的命令列：<code>ssh -i {key} -p {port} 服務簡稱@{}</code>（每個設定檔各有其密碼匙：{}）。",
                    vpn.gateway,
                    list(&files.shell_keys)
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
    format!(
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
    )
}

/// `files` (name, content) in a gzipped tar archive, in a folder named `folder` that only its
/// owner may open, each file readable by its owner only.
pub fn archive(folder: &str, files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gzip);
    let mtime = 0;
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o700);
    dir.set_size(0);
    dir.set_mtime(mtime);
    tar.append_data(&mut dir, format!("{folder}/"), std::io::empty())?;
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o600);
        header.set_size(content.len() as u64);
        header.set_mtime(mtime);
        tar.append_data(&mut header, format!("{folder}/{name}"), content.as_slice())?;
    }
    let mut gzip = tar.into_inner()?;
    gzip.flush()?;
    gzip.finish()
}

/// Which team gets a pack, and the addresses its how-to gives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackBody {
    team: String,
    /// Where teams reach the drill's web, e.g. https://drill.example.hk.
    web: String,
    /// Where teams submit flags over TCP, e.g. drill.example.hk:31337; left out when absent.
    #[serde(default)]
    submission: Option<String>,
}

/// `POST /api/admin/teams/pack`: a team's credential pack as a download
/// (`application/gzip`, `attachment; filename="TEAM-pack.tar.gz"`, never cached). Each of the
/// team's VPN peers gets new keys and a new shell key on the running gateway, then the team a
/// new token: everything the team had before stops working (its portal sessions end). Audited
/// under the organiser (`team.pack`), without any secret.
pub(crate) async fn pack(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ReportsError> {
    let account = admin::organiser(&state, &headers).await?;
    let PackBody { team, web, submission } = crate::upload::json_body(&headers, body, admin::MAX_BODY).await?;
    let team = admin::team_of_drill(&state, &team)?;
    let web = web_address(&web).map_err(ReportsError::BadRequest)?;
    let submission = submission
        .filter(|s| !s.trim().is_empty())
        .map(|s| submission_address(&s))
        .transpose()
        .map_err(ReportsError::BadRequest)?;

    let mut files = Vec::new();
    let mut names = PackFiles::default();
    if let Some(vpn) = &state.scenario().vpn {
        // Every peer the team may have: those it was issued, and those it never was (a team
        // added during the drill) up to the scenario's number per team.
        let mut peers: std::collections::BTreeSet<u32> = (1..=vpn.peers_per_team).collect();
        peers.extend(state.store().vpn_peers_of(team.id).await?.iter().map(|p| p.peer));
        for (done, &peer) in peers.iter().enumerate() {
            let fresh = state.vpn_access().reissue(team, peer, true).await.map_err(|refusal| {
                let changed = if done == 0 {
                    "nothing changed".to_owned()
                } else {
                    format!("peers 1 to {done} already have new keys and their old configs no longer work")
                };
                let why = match refusal {
                    VpnRefusal::UnknownPeer(n) => format!("peer {n} is gone"),
                    VpnRefusal::NoVpn => "the drill has no VPN".to_owned(),
                    VpnRefusal::Failed(why) => why,
                };
                ReportsError::PackFailed(format!(
                    "peer {peer} of team {} did not get new keys ({why}); {changed}: make the pack again once this is fixed",
                    team.slug
                ))
            })?;
            let mut add = |file: SecretFile, list: &mut Vec<String>| {
                list.push(file.file_name.clone());
                files.push((file.file_name, file.text.into_inner().into_bytes()));
            };
            add(fresh.config, &mut names.configs);
            if let Some(key) = fresh.shell_key {
                add(key, &mut names.shell_keys);
            }
        }
    }
    let issued = state.store().issue_token(&team.slug).await?;
    let page = how_to(state.scenario(), team, &names, &web, submission.as_deref(), issued.token.expose());
    files.push(("token.txt".to_owned(), format!("{}\n", issued.token.expose()).into_bytes()));
    files.push(("how-to.html".to_owned(), page.into_bytes()));
    let archive = archive(&team.slug, &files).map_err(|e| {
        ReportsError::PackFailed(format!(
            "its files could not be packed ({e}); the team's token and keys were already replaced: make it again"
        ))
    })?;

    // The team's old token and keys are gone by now: the organiser gets the pack even if the
    // audit log cannot be written, or the team would be left with nothing that works.
    let detail = json!({ "team": team.slug, "vpn": !names.configs.is_empty(), "web": web });
    if let Err(error) = state.store().append_audit(state.now(), &account.actor(), "team.pack", &detail).await {
        tracing::error!(team = %team.slug, %error, "a team's credential pack was not audited");
    }
    Ok(attachment(archive, "application/gzip", &format!("{}-pack.tar.gz", team.slug)))
}

/// `body` as a download called `file_name` that no cache keeps: it holds secrets.
pub(crate) fn attachment(body: impl IntoResponse, content_type: &'static str, file_name: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
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

    #[test]
    fn addresses_are_checked() {
        assert_eq!(web_address(" https://drill.example.hk/ ").unwrap(), "https://drill.example.hk");
        assert!(web_address("drill.example.hk").unwrap_err().contains("https://drill.example.hk"));
        assert!(web_address("https://a b").is_err());
        assert_eq!(submission_address("10.80.0.1:31337").unwrap(), "10.80.0.1:31337");
        assert!(submission_address("10.80.0.1").is_err());
        assert!(submission_address("host:0").is_err());
        assert!(submission_address("<script>:80").is_err());
    }

    #[test]
    fn an_archive_holds_private_files_in_one_folder() {
        let packed = archive("ddb", &[("token.txt".to_owned(), b"secret\n".to_vec())]).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(packed.as_slice()));
        let entries: Vec<(String, u32, Vec<u8>)> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut content = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut content).unwrap();
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap(), content)
            })
            .collect();
        assert_eq!(
            entries,
            [("ddb/".to_owned(), 0o700, Vec::new()), ("ddb/token.txt".to_owned(), 0o600, b"secret\n".to_vec())]
        );
    }
}
