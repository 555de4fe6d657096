//! The `[vpn]` table: where teams reach the drill's WireGuard gateway, the tunnel addresses it
//! hands out, how many configs each team gets, and whether checkers look like attackers.

use std::net::Ipv4Addr;

use super::{Tab, Walker};
use crate::scenario::model::{
    DEFAULT_SHELL_PORT, DEFAULT_VPN_PORT, Ipv4Net, ReportRules, Team, VpnRules, is_red_blue, vpn_range_fits,
    vpn_range_that_fits,
};

pub(super) const VPN_KEYS: &[&str] = &["listen", "range", "gateway", "peers_per_team", "anonymise", "shell_port"];
/// Most configs one team may have: a team's players, not a fleet.
const MAX_PEERS_PER_TEAM: u32 = 64;
/// Longest prefix of a VPN range: a /30 holds the gateway and one peer.
const LONGEST_RANGE_PREFIX: u8 = 30;

impl Walker<'_, '_> {
    /// Reads `[vpn]`. `teams` are the teams read so far and `all_teams` how many `[[team]]`
    /// entries there are (each gets a block of the range); `reports` decides, with the teams'
    /// roles, whether `anonymise` is on by default.
    pub(super) fn vpn(
        &mut self,
        t: &Tab<'_, '_>,
        teams: &[Team],
        all_teams: usize,
        reports: Option<&ReportRules>,
    ) -> Option<VpnRules> {
        self.unknown_keys(t, VPN_KEYS, "keys");
        let listen = self.vpn_listen(t);
        let range = self.vpn_range(t);
        let gateway = range.and_then(|r| self.vpn_gateway(t, r));
        let peers = self.int(t, "peers_per_team", Some(4), 1..=MAX_PEERS_PER_TEAM);
        let red_blue = reports.map(|r| is_red_blue(teams, r));
        let anonymise = self.boolean(t, "anonymise", !red_blue.unwrap_or(false));
        let shell_port = self.int(t, "shell_port", Some(u32::from(DEFAULT_SHELL_PORT)), 1..=65_535);
        if let Some(first) = shell_port
            && u64::from(first) + all_teams as u64 > 65_536
        {
            self.c.error(
                &t.get("shell_port").map_or(t.at.clone(), |v| v.span()),
                format!(
                    "shell_port {first} leaves no port for the last of {all_teams} teams (each team gets the next port)"
                ),
                Some(format!("use a lower port, at most {}", 65_536usize.saturating_sub(all_teams))),
            );
        }

        if let Some(range) = range {
            for team in teams {
                if team.network.overlaps(range) {
                    self.c.error(
                        &t.get("range").expect("read").span(),
                        format!("the VPN range {range} overlaps team `{}`'s network {}", team.slug, team.network),
                        Some("pick a range apart from every team's network, e.g. \"10.80.0.0/16\"".into()),
                    );
                }
            }
        }
        if let (Some(range), Some(gateway), Some(peers)) = (range, gateway, peers)
            && !vpn_range_fits(range, gateway, all_teams, peers)
        {
            let help = match vpn_range_that_fits(range, gateway, all_teams, peers) {
                Some(wider) => format!("use a larger range, e.g. range = \"{wider}\", or fewer peers_per_team"),
                None => "use fewer peers_per_team".to_owned(),
            };
            self.c.error(
                &t.get("range").expect("read").span(),
                format!(
                    "the VPN range {range} is too small for {all_teams} teams of {peers} peer(s) each \
                     (each team gets an aligned block, the gateway's block and the range's first and last are kept out)"
                ),
                Some(help),
            );
        }
        if let (Some((host, _)), Some(range)) = (&listen, range)
            && let Ok(ip) = host.parse::<Ipv4Addr>()
        {
            let inside = teams
                .iter()
                .map(|team| (team.network, format!("team `{}`'s network", team.slug)))
                .chain([(range, "the VPN range".to_owned())])
                .find(|(net, _)| net.contains(ip));
            if let Some((net, what)) = inside {
                self.c.error(
                    &t.get("listen").expect("read").span(),
                    format!("`listen` {ip} lies inside {what} {net}, which the tunnel carries"),
                    Some("give the host's public address, the one teams reach it at from outside".into()),
                );
            }
        }
        let (listen_host, listen_port) = listen?;
        Some(VpnRules {
            listen_host,
            listen_port,
            range: range?,
            gateway: gateway?,
            peers_per_team: peers?,
            anonymise: anonymise?,
            shell_port: u16::try_from(shell_port?).ok()?,
        })
    }

    /// `listen = "host:port"` or `"host"`: an IPv4 address or a host name teams can resolve.
    fn vpn_listen(&mut self, t: &Tab<'_, '_>) -> Option<(String, u16)> {
        let key = "listen";
        let s = self.string(t, key, true, "listen = \"203.0.113.7:51820\"")??;
        let (host, port) = match s.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().ok().filter(|p| *p > 0)),
            None => (s.as_str(), Some(DEFAULT_VPN_PORT)),
        };
        let at = t.get(key).expect("read").span();
        let Some(port) = port else {
            self.c.error(
                &at,
                format!("`{key}` \"{s}\" has no valid port"),
                Some(format!("write host:port with a port from 1 to 65535, e.g. \"{host}:{DEFAULT_VPN_PORT}\"")),
            );
            return None;
        };
        let name_like = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
            });
        match host.parse::<Ipv4Addr>() {
            Ok(ip) if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() => {
                self.c.error(
                    &at,
                    format!("`{key}` {ip} is not an address teams can reach"),
                    Some("give the address (or host name) teams reach this host at, e.g. \"203.0.113.7:51820\"".into()),
                );
                None
            }
            Ok(_) => Some((host.to_owned(), port)),
            Err(_) if name_like && !host.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                Some((host.to_owned(), port))
            }
            Err(_) => {
                self.c.error(
                    &at,
                    format!("`{key}` \"{s}\" is not an IPv4 address or host name with an optional port"),
                    Some("write it as \"203.0.113.7:51820\" or \"vpn.example.org\"".into()),
                );
                None
            }
        }
    }

    fn vpn_range(&mut self, t: &Tab<'_, '_>) -> Option<Ipv4Net> {
        let key = "range";
        let s = self.string(t, key, true, "range = \"10.80.0.0/16\"")??;
        let at = t.get(key).expect("read").span();
        match Ipv4Net::parse(&s) {
            Ok(n) if n.prefix <= LONGEST_RANGE_PREFIX => Some(n),
            Ok(_) => {
                self.c.error(
                    &at,
                    format!("the VPN range {s} is too small"),
                    Some("use a /30 or larger; a /16 such as \"10.80.0.0/16\" leaves room to grow".into()),
                );
                None
            }
            Err(why) => {
                self.c.error(
                    &at,
                    format!("`{key}` is not valid: {why}"),
                    Some("write it in CIDR notation, e.g. \"10.80.0.0/16\"".into()),
                );
                None
            }
        }
    }

    /// `gateway`: a host of the range; by default its first usable address.
    fn vpn_gateway(&mut self, t: &Tab<'_, '_>, range: Ipv4Net) -> Option<Ipv4Addr> {
        let first = range.host(1).expect("a /30 or larger has a first host");
        let key = "gateway";
        let Some(s) = self.string(t, key, false, &format!("gateway = \"{first}\""))? else { return Some(first) };
        let at = t.get(key).expect("read").span();
        let Ok(ip) = s.parse::<Ipv4Addr>() else {
            self.c.error(
                &at,
                format!("`{key}` \"{s}\" is not an IPv4 address"),
                Some(format!("write the gateway's tunnel address, e.g. \"{first}\"")),
            );
            return None;
        };
        let size = 1u64 << (32 - u32::from(range.prefix));
        let last = range.host(u32::try_from(size - 1).unwrap_or(u32::MAX));
        if !range.contains(ip) || ip == range.network() || Some(ip) == last {
            self.c.error(
                &at,
                format!("the gateway's address {ip} is not a host of the VPN range {range}"),
                Some(format!("pick an address inside the range, neither its first nor its last, e.g. \"{first}\"")),
            );
            return None;
        }
        Some(ip)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::path::Path;

    use crate::scenario::{AssumeEverythingExists, Ipv4Net, parse, vpn_range_fits};

    const MINIMAL: &str = include_str!("../../../tests/scenarios/valid_minimal.toml");

    use super::super::parsed;

    fn net(s: &str) -> Ipv4Net {
        Ipv4Net::parse(s).unwrap()
    }

    #[test]
    fn no_table_means_no_vpn_and_defaults_fill_the_rest() {
        assert_eq!(parsed("").unwrap().vpn, None);
        let vpn = parsed("[vpn]\nlisten = \"203.0.113.7\"\nrange = \"10.80.0.0/16\"\n").unwrap().vpn.unwrap();
        assert_eq!(vpn.endpoint(), "203.0.113.7:51820");
        assert_eq!(vpn.range, net("10.80.0.0/16"));
        assert_eq!(vpn.gateway, Ipv4Addr::new(10, 80, 0, 1));
        assert_eq!(vpn.peers_per_team, 4);
        assert!(vpn.anonymise, "a symmetric drill hides the checker among the attackers");
    }

    #[test]
    fn every_key_can_be_set() {
        let vpn = parsed(
            "[vpn]\nlisten = \"vpn.example.org:443\"\nrange = \"10.80.0.0/24\"\ngateway = \"10.80.0.254\"\n\
             peers_per_team = 64\nanonymise = false\n",
        )
        .unwrap()
        .vpn
        .unwrap();
        assert_eq!((vpn.listen_host.as_str(), vpn.listen_port), ("vpn.example.org", 443));
        assert_eq!(vpn.gateway, Ipv4Addr::new(10, 80, 0, 254));
        assert_eq!(vpn.peers_per_team, 64);
        assert!(!vpn.anonymise);
    }

    #[test]
    fn each_team_gets_the_next_shell_port_and_the_last_must_fit() {
        let vpn = parsed("[vpn]\nlisten = \"203.0.113.7\"\nrange = \"10.80.0.0/16\"\n").unwrap().vpn.unwrap();
        assert_eq!((vpn.shell_port_of(0), vpn.shell_port_of(1)), (Some(2201), Some(2202)));
        let vpn = parsed("[vpn]\nlisten = \"203.0.113.7\"\nrange = \"10.80.0.0/16\"\nshell_port = 65534\n")
            .unwrap()
            .vpn
            .unwrap();
        assert_eq!((vpn.shell_port_of(1), vpn.shell_port_of(2)), (Some(65535), None));
        let error =
            parsed("[vpn]\nlisten = \"203.0.113.7\"\nrange = \"10.80.0.0/16\"\nshell_port = 65535\n").unwrap_err();
        assert!(error.contains("leaves no port for the last of 2 teams") && error.contains("at most 65534"), "{error}");
    }

    #[test]
    fn code_and_data_are_folders_inside_the_container_apart_from_each_other() {
        let with =
            |keys: &str| parse(&format!("{MINIMAL}\n{keys}"), Path::new("scenario.toml"), &AssumeEverythingExists);
        let s = with("code = \"/srv/notes\"\ndata = \"/var/lib/notes\"\n").unwrap();
        let volumes: Vec<(&str, &str)> = s.services[0].volumes().collect();
        assert_eq!(volumes, [("code", "/srv/notes"), ("data", "/var/lib/notes")]);
        assert_eq!(with("").unwrap().services[0].volumes().count(), 0);
        for (keys, expected) in [
            ("code = \"srv/notes\"\n", "must be a folder inside the container"),
            ("data = \"/var/../etc\"\n", "must be a folder inside the container"),
            ("code = \"/\"\n", "must be a folder inside the container"),
            ("code = \"/srv\"\ndata = \"/srv/data\"\n", "overlap"),
            ("patch_mode = \"submit\"\ncode = \"/srv/notes\"\n", "`code` is for patch_mode = \"vulnbox\""),
        ] {
            let error = with(keys).unwrap_err().to_string();
            assert!(error.contains(expected), "{keys}: {error}");
        }
    }

    #[test]
    fn a_red_blue_drill_does_not_anonymise_by_default() {
        let red_blue = MINIMAL
            .replace("name = \"Alpha\"", "name = \"Alpha\"\nrole = \"attacker\"")
            .replace("name = \"Bravo\"", "name = \"Bravo\"\nrole = \"defender\"");
        let src = format!("{red_blue}\n[vpn]\nlisten = \"203.0.113.7\"\nrange = \"10.80.0.0/16\"\n");
        let s = parse(&src, Path::new("scenario.toml"), &AssumeEverythingExists).unwrap();
        assert!(s.is_red_blue());
        assert!(!s.vpn.unwrap().anonymise);
        let by_reports =
            parsed("[reports]\nscoring = \"red-blue\"\n[vpn]\nlisten = \"203.0.113.7\"\nrange = \"10.80.0.0/16\"\n");
        assert!(!by_reports.unwrap().vpn.unwrap().anonymise);
        let forced = format!("{src}anonymise = true\n");
        assert!(parse(&forced, Path::new("scenario.toml"), &AssumeEverythingExists).unwrap().vpn.unwrap().anonymise);
    }

    #[test]
    fn a_range_too_small_names_one_that_fits() {
        // Two teams of 64 peers: blocks of 64; a /25 has two, and the gateway's is kept out.
        let e = parsed("[vpn]\nlisten = \"203.0.113.7\"\nrange = \"10.80.0.0/25\"\npeers_per_team = 64\n").unwrap_err();
        assert!(e.contains("the VPN range 10.80.0.0/25 is too small for 2 teams of 64 peer(s) each"), "{e}");
        assert!(e.contains("range = \"10.80.0.0/24\""), "{e}");
        parsed("[vpn]\nlisten = \"203.0.113.7\"\nrange = \"10.80.0.0/24\"\npeers_per_team = 64\n").unwrap();
    }

    #[test]
    fn capacity_counts_the_reserved_blocks() {
        let gw = Ipv4Addr::new(10, 80, 0, 1);
        // A /29 of single addresses: 8, less the first, last and gateway.
        assert!(vpn_range_fits(net("10.80.0.0/29"), gw, 5, 1));
        assert!(!vpn_range_fits(net("10.80.0.0/29"), gw, 6, 1));
        // Blocks of 4 in a /28: 4 blocks, the first holds the network and the gateway, the last the broadcast.
        assert!(vpn_range_fits(net("10.80.0.0/28"), gw, 2, 3));
        assert!(!vpn_range_fits(net("10.80.0.0/28"), gw, 3, 4));
        // A gateway in the middle costs one more block.
        assert!(!vpn_range_fits(net("10.80.0.0/28"), Ipv4Addr::new(10, 80, 0, 5), 2, 4));
        assert!(!vpn_range_fits(net("10.80.0.0/30"), gw, 1, 4), "a block larger than the range");
    }

    #[test]
    fn bad_values_are_named_with_a_hint() {
        let base = "[vpn]\nlisten = \"203.0.113.7\"\n";
        let e = parsed(&format!("{base}range = \"10.80.0.1/16\"\n")).unwrap_err();
        assert!(e.contains("host bits"), "{e}");
        let e = parsed(&format!("{base}range = \"10.80.0.0/31\"\n")).unwrap_err();
        assert!(e.contains("too small") && e.contains("/30 or larger"), "{e}");
        let e = parsed(&format!("{base}range = \"10.60.0.0/16\"\n")).unwrap_err();
        assert!(e.contains("overlaps team `alpha`'s network 10.60.1.0/24"), "{e}");
        let e = parsed(&format!("{base}range = \"10.80.0.0/16\"\ngateway = \"10.81.0.1\"\n")).unwrap_err();
        assert!(e.contains("10.81.0.1 is not a host of the VPN range 10.80.0.0/16"), "{e}");
        let e = parsed(&format!("{base}range = \"10.80.0.0/16\"\ngateway = \"10.80.255.255\"\n")).unwrap_err();
        assert!(e.contains("not a host"), "{e}");
        let e = parsed(&format!("{base}range = \"10.80.0.0/16\"\npeers_per_team = 65\n")).unwrap_err();
        assert!(e.contains("`peers_per_team` must be between 1 and 64"), "{e}");
        let e = parsed(&format!("{base}range = \"10.80.0.0/16\"\nanonymise = \"yes\"\n")).unwrap_err();
        assert!(e.contains("anonymise"), "{e}");
        let e = parsed("[vpn]\nrange = \"10.80.0.0/16\"\n").unwrap_err();
        assert!(e.contains("missing key `listen` in [vpn]"), "{e}");
        for listen in ["0.0.0.0:51820", "203.0.113.7:0", "203.0.113.7:port", "bad host", "10.80.3.4", "10.60.1.9:51820"]
        {
            let e = parsed(&format!("[vpn]\nlisten = \"{listen}\"\nrange = \"10.80.0.0/16\"\n")).unwrap_err();
            assert!(e.contains("listen") || e.contains("lies inside"), "{listen}: {e}");
        }
        let e = parsed("[vpn]\nlisten = \"10.60.1.9\"\nrange = \"10.80.0.0/16\"\n").unwrap_err();
        assert!(e.contains("inside team `alpha`'s network 10.60.1.0/24"), "{e}");
        let e = parsed(&format!("{base}range = \"10.80.0.0/16\"\nport = 1\n")).unwrap_err();
        assert!(e.contains("unknown key `port` in [vpn]"), "{e}");
    }
}
