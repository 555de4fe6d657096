//! Host firewall rules that bridge networks alone do not give: team containers may not open
//! connections to the host itself (the platform's ports, the engine's API) nor through it to
//! anywhere else. Replies to connections the host or the teams' gateway opened still pass.
//!
//! Two chains per drill, named after its tag: `GF-IN-<tag>` hooked first into `INPUT`, and
//! `GF-FW-<tag>` hooked first into Docker's `DOCKER-USER` (which `FORWARD` consults before
//! Docker's own rules). Both are loaded in one `iptables-restore` batch.
//!
//! The same rules are written for IPv6 with `ip6tables-restore`. Team networks have no IPv6
//! addresses, but the kernel still gives every bridge and container interface a link-local
//! one, through which a container could reach a host service listening on `::`. Docker (20.10,
//! without its experimental `ip6tables` setting) makes no `DOCKER-USER` chain for IPv6 and
//! installs no IPv6 rules of its own, so there the forward chain is hooked first into `FORWARD`.
//! A host without IPv6 (no `ip6tables`, or a kernel without it) gets the IPv4 rules alone.
//!
//! The `INPUT` rules also close the host's DNS port to team containers: their only resolver is
//! the engine's embedded one inside the container (see [`crate::hardening::NO_UPSTREAM_DNS`]).

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tracing::{info, warn};

use crate::plan::drill_tag;
use crate::{Error, Result};

/// One of the two address families, with its tools and its ICMP rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    fn restore_tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables-restore",
            Family::V6 => "ip6tables-restore",
        }
    }

    fn reject_with(self) -> &'static str {
        match self {
            Family::V4 => "icmp-port-unreachable",
            Family::V6 => "icmp6-port-unreachable",
        }
    }
}

/// The chain Docker has every forwarded packet go through before its own rules.
const DOCKER_USER: &str = "DOCKER-USER";

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

    /// The IPv4 `iptables-restore` batch for these bridge interfaces (pure, for review and tests).
    pub fn ruleset<'a>(&self, bridges: impl IntoIterator<Item = &'a str>) -> String {
        self.ruleset_for(Family::V4, bridges)
    }

    /// The `iptables-restore` (or `ip6tables-restore`) batch for these bridge interfaces: the
    /// same rules in both families, only the ICMP rejection differs.
    pub fn ruleset_for<'a>(&self, family: Family, bridges: impl IntoIterator<Item = &'a str>) -> String {
        let (input, fwd) = (self.input_chain(), self.forward_chain());
        let reject = family.reject_with();
        let mut r = format!("*filter\n-F {input}\n-F {fwd}\n");
        for b in bridges {
            // Replies to connections the host opened (the checkers, the organisers' tools).
            // Anything a container opens to the host is refused, its DNS port included.
            r.push_str(&format!("-A {input} -i {b} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"));
            r.push_str(&format!("-A {input} -i {b} -j REJECT --reject-with {reject}\n"));
            // Within one bridge Docker's own rules decide (a private network's app and its
            // database talk; a game network has inter-container traffic off).
            r.push_str(&format!("-A {fwd} -i {b} -o {b} -j RETURN\n"));
            r.push_str(&format!("-A {fwd} -i {b} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n"));
            r.push_str(&format!("-A {fwd} -i {b} -j REJECT --reject-with {reject}\n"));
        }
        r.push_str("COMMIT\n");
        r
    }

    /// Installs (or replaces) the drill's rules for these bridges, IPv4 and, where the host
    /// has it, IPv6.
    pub async fn apply<'a>(&self, bridges: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let bridges: Vec<&str> = bridges.into_iter().collect();
        self.apply_family(Family::V4, bridges.iter().copied()).await?;
        if ipv6_available().await {
            self.apply_family(Family::V6, bridges.iter().copied()).await?;
        } else {
            warn!("no working ip6tables on this host: IPv6 rules not installed");
        }
        info!(input = self.input_chain(), forward = self.forward_chain(), "firewall rules installed");
        Ok(())
    }

    async fn apply_family<'a>(&self, family: Family, bridges: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let rules = self.ruleset_for(family, bridges);
        let forward_parent = forward_parent(family).await?;
        for (chain, parent) in [(self.input_chain(), "INPUT"), (self.forward_chain(), forward_parent)] {
            if !iptables(family, &["-w", "-n", "-L", &chain]).await?.0 {
                run(family, &["-w", "-N", &chain]).await?;
            }
            if !iptables(family, &["-w", "-C", parent, "-j", &chain]).await?.0 {
                run(family, &["-w", "-I", parent, "1", "-j", &chain]).await?;
            }
        }
        restore(family, &rules).await
    }

    /// Removes the drill's chains and the jumps to them, in both families; absent ones are fine.
    pub async fn remove(&self) -> Result<()> {
        self.remove_family(Family::V4).await?;
        if ipv6_available().await {
            self.remove_family(Family::V6).await?;
        }
        Ok(())
    }

    async fn remove_family(&self, family: Family) -> Result<()> {
        for (chain, parent) in
            [(self.input_chain(), "INPUT"), (self.forward_chain(), DOCKER_USER), (self.forward_chain(), "FORWARD")]
        {
            while iptables(family, &["-w", "-D", parent, "-j", &chain]).await?.0 {}
        }
        for chain in [self.input_chain(), self.forward_chain()] {
            if iptables(family, &["-w", "-n", "-L", &chain]).await?.0 {
                run(family, &["-w", "-F", &chain]).await?;
                run(family, &["-w", "-X", &chain]).await?;
            }
        }
        Ok(())
    }

    /// Whether the drill's IPv4 or IPv6 chains exist.
    pub async fn installed(&self) -> Result<bool> {
        Ok(self.installed_family(Family::V4).await?
            || (ipv6_available().await && self.installed_family(Family::V6).await?))
    }

    /// Whether the drill's chains of one family exist.
    pub async fn installed_family(&self, family: Family) -> Result<bool> {
        Ok(iptables(family, &["-w", "-n", "-L", &self.input_chain()]).await?.0
            || iptables(family, &["-w", "-n", "-L", &self.forward_chain()]).await?.0)
    }

    /// The chain the forward chain of `family` is hooked into on this host.
    pub async fn forward_parent(family: Family) -> Result<&'static str> {
        forward_parent(family).await
    }

    /// The rules of one family as the host lists them (`-S`), for checks and diagnostics.
    pub async fn listed(&self, family: Family) -> Result<String> {
        let mut out = String::new();
        for chain in [self.input_chain(), self.forward_chain()] {
            let (ok, text) = iptables(family, &["-w", "-S", &chain]).await?;
            if ok {
                out.push_str(&text);
            }
        }
        Ok(out)
    }

    /// Packets the drill's IPv4 rules have rejected so far: (to the host, forwarded elsewhere).
    pub async fn rejected(&self) -> Result<(u64, u64)> {
        let mut out = [0u64; 2];
        for (slot, chain) in [self.input_chain(), self.forward_chain()].iter().enumerate() {
            let (ok, text) = iptables(Family::V4, &["-w", "-n", "-v", "-x", "-L", chain]).await?;
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

/// Whether `ip6tables` runs and can read the filter table here.
pub async fn ipv6_available() -> bool {
    matches!(iptables(Family::V6, &["-w", "-n", "-L", "INPUT"]).await, Ok((true, _)))
}

/// `DOCKER-USER` where the engine made it for `family`, else `FORWARD` itself.
async fn forward_parent(family: Family) -> Result<&'static str> {
    Ok(if iptables(family, &["-w", "-n", "-L", DOCKER_USER]).await?.0 { DOCKER_USER } else { "FORWARD" })
}

async fn iptables(family: Family, args: &[&str]) -> Result<(bool, String)> {
    let tool = family.tool();
    let out = Command::new(tool).args(args).stdin(Stdio::null()).output().await.map_err(|e| Error::Firewall {
        command: format!("{tool} {}", args.join(" ")),
        message: format!("{e} (is {tool} installed?)"),
    })?;
    let text =
        if out.status.success() { String::from_utf8_lossy(&out.stdout) } else { String::from_utf8_lossy(&out.stderr) };
    Ok((out.status.success(), text.into_owned()))
}

async fn run(family: Family, args: &[&str]) -> Result<()> {
    match iptables(family, args).await? {
        (true, _) => Ok(()),
        (false, message) => Err(Error::Firewall {
            command: format!("{} {}", family.tool(), args.join(" ")),
            message: message.trim().to_owned(),
        }),
    }
}

async fn restore(family: Family, rules: &str) -> Result<()> {
    let command = format!("{} -w --noflush", family.restore_tool());
    let err = |message: String| Error::Firewall { command: command.clone(), message };
    let mut child = Command::new(family.restore_tool())
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

    #[test]
    fn ipv6_rules_equal_the_ipv4_ones() {
        let fw = Firewall::new("drill");
        let bridges = ["gfaaaaaat1", "gfaaaaaat2", "gfaaaaaap17"];
        let v4 = fw.ruleset_for(Family::V4, bridges);
        let v6 = fw.ruleset_for(Family::V6, bridges);
        assert_eq!(fw.ruleset(bridges), v4);
        assert!(v4.contains("icmp-port-unreachable") && !v4.contains("icmp6"));
        assert_eq!(v6.matches("--reject-with icmp6-port-unreachable").count(), 6, "{v6}");
        // Rule for rule the same, once the rejection is named in each family's words.
        assert_eq!(v6.replace("icmp6-port-unreachable", "icmp-port-unreachable"), v4);
        assert_eq!(v6.lines().count(), v4.lines().count());
        // Every bridge is closed towards the host (its DNS port included) and elsewhere.
        for b in bridges {
            assert!(v6.contains(&format!("-A {} -i {b} -j REJECT", fw.input_chain())), "{v6}");
            assert!(v6.contains(&format!("-A {} -i {b} -j REJECT", fw.forward_chain())), "{v6}");
        }
    }
}
