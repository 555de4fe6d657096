//! Host firewall rules that bridge networks alone do not give: team containers may not open
//! connections to the host itself (the platform's ports, the engine's API) nor through it to
//! anywhere else. Replies to connections the host or the teams' gateway opened still pass.
//!
//! Two chains per drill, named after its tag: `GF-IN-<tag>` hooked first into `INPUT`, and
//! `GF-FW-<tag>` hooked first into Docker's `DOCKER-USER` (which `FORWARD` consults before
//! Docker's own rules). Both are loaded in one `iptables-restore` batch.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tracing::info;

use crate::plan::drill_tag;
use crate::{Error, Result};

const IPTABLES: &str = "iptables";

/// The host rules of one drill.
#[derive(Debug, Clone)]
pub struct Firewall {
    tag: String,
}

impl Firewall {
    pub fn new(drill: &str) -> Self {
        Firewall { tag: drill_tag(drill) }
    }

    pub fn input_chain(&self) -> String {
        format!("GF-IN-{}", self.tag)
    }

    pub fn forward_chain(&self) -> String {
        format!("GF-FW-{}", self.tag)
    }

    /// The `iptables-restore` batch for these bridge interfaces (pure, for review and tests).
    pub fn ruleset<'a>(&self, bridges: impl IntoIterator<Item = &'a str>) -> String {
        let (input, fwd) = (self.input_chain(), self.forward_chain());
        let mut r = format!("*filter\n-F {input}\n-F {fwd}\n");
        for b in bridges {
            r.push_str(&format!("-A {input} -i {b} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"));
            r.push_str(&format!("-A {input} -i {b} -j REJECT --reject-with icmp-port-unreachable\n"));
            // Within one bridge Docker's own rules decide (a private network's app and its
            // database talk; a game network has inter-container traffic off).
            r.push_str(&format!("-A {fwd} -i {b} -o {b} -j RETURN\n"));
            r.push_str(&format!("-A {fwd} -i {b} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n"));
            r.push_str(&format!("-A {fwd} -i {b} -j REJECT --reject-with icmp-port-unreachable\n"));
        }
        r.push_str("COMMIT\n");
        r
    }

    /// Installs (or replaces) the drill's rules for these bridges.
    pub async fn apply<'a>(&self, bridges: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let rules = self.ruleset(bridges);
        for (chain, parent) in [(self.input_chain(), "INPUT"), (self.forward_chain(), "DOCKER-USER")] {
            if !iptables(&["-w", "-n", "-L", &chain]).await?.0 {
                run(&["-w", "-N", &chain]).await?;
            }
            if !iptables(&["-w", "-C", parent, "-j", &chain]).await?.0 {
                run(&["-w", "-I", parent, "1", "-j", &chain]).await?;
            }
        }
        restore(&rules).await?;
        info!(input = self.input_chain(), forward = self.forward_chain(), "firewall rules installed");
        Ok(())
    }

    /// Removes the drill's chains and the jumps to them; absent ones are fine.
    pub async fn remove(&self) -> Result<()> {
        for (chain, parent) in [(self.input_chain(), "INPUT"), (self.forward_chain(), "DOCKER-USER")] {
            while iptables(&["-w", "-D", parent, "-j", &chain]).await?.0 {}
            if iptables(&["-w", "-n", "-L", &chain]).await?.0 {
                run(&["-w", "-F", &chain]).await?;
                run(&["-w", "-X", &chain]).await?;
            }
        }
        Ok(())
    }

    /// Whether the drill's chains exist.
    pub async fn installed(&self) -> Result<bool> {
        Ok(iptables(&["-w", "-n", "-L", &self.input_chain()]).await?.0
            || iptables(&["-w", "-n", "-L", &self.forward_chain()]).await?.0)
    }

    /// Packets the drill's rules have rejected so far: (to the host, forwarded elsewhere).
    pub async fn rejected(&self) -> Result<(u64, u64)> {
        let mut out = [0u64; 2];
        for (slot, chain) in [self.input_chain(), self.forward_chain()].iter().enumerate() {
            let (ok, text) = iptables(&["-w", "-n", "-v", "-x", "-L", chain]).await?;
            if ok {
                out[slot] = text
                    .lines()
                    .filter(|l| l.contains("REJECT"))
                    .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
                    .sum();
            }
        }
        Ok((out[0], out[1]))
    }
}

async fn iptables(args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new(IPTABLES).args(args).stdin(Stdio::null()).output().await.map_err(|e| Error::Firewall {
        command: format!("{IPTABLES} {}", args.join(" ")),
        message: format!("{e} (is iptables installed?)"),
    })?;
    let text =
        if out.status.success() { String::from_utf8_lossy(&out.stdout) } else { String::from_utf8_lossy(&out.stderr) };
    Ok((out.status.success(), text.into_owned()))
}

async fn run(args: &[&str]) -> Result<()> {
    match iptables(args).await? {
        (true, _) => Ok(()),
        (false, message) => Err(Error::Firewall {
            command: format!("{IPTABLES} {}", args.join(" ")),
            message: message.trim().to_owned(),
        }),
    }
}

async fn restore(rules: &str) -> Result<()> {
    let command = "iptables-restore -w --noflush";
    let err = |message: String| Error::Firewall { command: command.to_owned(), message };
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(rules.as_bytes()).await.map_err(|e| err(e.to_string()))?;
    drop(stdin);
    let out = child.wait_with_output().await.map_err(|e| err(e.to_string()))?;
    if out.status.success() { Ok(()) } else { Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_names_every_bridge_and_fits_chain_names() {
        let fw = Firewall::new("a-drill-with-a-rather-long-slug-x");
        assert!(fw.input_chain().len() <= 28 && fw.forward_chain().len() <= 28);
        let r = fw.ruleset(["gfaaaaaat1", "gfaaaaaap17"]);
        assert!(r.starts_with("*filter\n") && r.ends_with("COMMIT\n"));
        assert_eq!(r.matches("-i gfaaaaaat1 ").count(), 5);
        assert_eq!(r.matches("-i gfaaaaaap17 ").count(), 5);
        assert!(r.contains(&format!("-A {} -i gfaaaaaat1 -j REJECT", fw.forward_chain())));
    }
}
