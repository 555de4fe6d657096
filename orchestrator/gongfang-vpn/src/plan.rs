//! The address plan: which tunnel address the gateway and each team's peers have in the VPN range.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::Error;

/// How many peers (configs) one team gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamPeers {
    pub team: String,
    pub peers: u32,
}

/// One team's share of the range: an aligned block, so one prefix matches every address of the
/// team (for firewall rules and for telling a submission's team by its source address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamAddresses {
    pub team: String,
    pub block: Ipv4Net,
    /// The address of peer 1, 2, … in order.
    pub peers: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPlan {
    pub range: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub teams: Vec<TeamAddresses>,
}

impl AddressPlan {
    /// Splits `range` into equal aligned blocks, each big enough for the team with the most
    /// peers (a power of two, at least one address), and gives them to the teams in the order
    /// given, skipping every block that holds the range's first or last address or the gateway.
    /// Peer `n` of a team has its block's `n`-th address. The same input always gives the same
    /// plan, and a team's addresses do not depend on how many peers the others have as long as
    /// the largest count stays the same.
    pub fn allocate(range: Ipv4Net, gateway: Ipv4Addr, teams: &[TeamPeers]) -> Result<AddressPlan, Error> {
        let range = range.trunc();
        if !range.contains(&gateway) || gateway == range.network() || gateway == range.broadcast() {
            return Err(Error::GatewayOutsideRange { gateway, range });
        }
        let Some(blocks) = blocks_for(range, gateway, teams) else {
            return Err(Error::RangeTooSmall {
                range,
                teams: teams.len(),
                peers_per_team: teams.iter().map(|t| t.peers).max().unwrap_or(1).max(1),
                suggestion: suggest(range, gateway, teams),
            });
        };
        let teams = teams
            .iter()
            .zip(blocks)
            .map(|(team, block)| TeamAddresses {
                team: team.team.clone(),
                block,
                peers: (0..team.peers).map(|n| Ipv4Addr::from(u32::from(block.network()) + n)).collect(),
            })
            .collect();
        Ok(AddressPlan { range, gateway, teams })
    }

    /// The team whose block holds `address`, if any: how a connection from the VPN is known
    /// to come from a team.
    pub fn team_of(&self, address: Ipv4Addr) -> Option<&str> {
        self.teams.iter().find(|t| t.block.contains(&address)).map(|t| t.team.as_str())
    }

    pub fn team(&self, team: &str) -> Option<&TeamAddresses> {
        self.teams.iter().find(|t| t.team == team)
    }
}

/// The first blocks that fit, one per team, or `None` when the range has too few. Only as many
/// blocks as there are teams are looked at (plus at most three reserved ones), however large
/// the range.
fn blocks_for(range: Ipv4Net, gateway: Ipv4Addr, teams: &[TeamPeers]) -> Option<Vec<Ipv4Net>> {
    let most = teams.iter().map(|t| t.peers).max().unwrap_or(1).max(1);
    let block_bits = most.checked_next_power_of_two().map_or(32, u32::trailing_zeros);
    let block_prefix = u8::try_from(32 - block_bits).ok().filter(|p| *p >= range.prefix_len())?;
    let reserved = [range.network(), range.broadcast(), gateway];
    let blocks: Vec<Ipv4Net> = range
        .subnets(block_prefix)
        .ok()?
        .filter(|b| !reserved.iter().any(|a| b.contains(a)))
        .take(teams.len())
        .collect();
    (blocks.len() == teams.len()).then_some(blocks)
}

/// The smallest range around `range` (same start, shorter prefix) that would fit, if any.
fn suggest(range: Ipv4Net, gateway: Ipv4Addr, teams: &[TeamPeers]) -> Option<Ipv4Net> {
    let mut wider = range.supernet()?;
    while blocks_for(wider, gateway, teams).is_none() {
        wider = wider.supernet()?;
    }
    Some(wider)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn teams(counts: &[u32]) -> Vec<TeamPeers> {
        counts.iter().enumerate().map(|(i, &peers)| TeamPeers { team: format!("team{}", i + 1), peers }).collect()
    }

    fn addr(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn teams_get_aligned_blocks_after_the_gateway() {
        let plan =
            AddressPlan::allocate("10.80.0.0/16".parse().unwrap(), addr("10.80.0.1"), &teams(&[3, 2, 4])).unwrap();
        let blocks: Vec<String> = plan.teams.iter().map(|t| t.block.to_string()).collect();
        assert_eq!(blocks, ["10.80.0.4/30", "10.80.0.8/30", "10.80.0.12/30"]);
        assert_eq!(plan.teams[0].peers, [addr("10.80.0.4"), addr("10.80.0.5"), addr("10.80.0.6")]);
        assert_eq!(plan.teams[1].peers, [addr("10.80.0.8"), addr("10.80.0.9")]);
        assert_eq!(plan.teams[2].peers.last(), Some(&addr("10.80.0.15")));
        assert_eq!(plan.team_of(addr("10.80.0.9")), Some("team2"));
        assert_eq!(plan.team_of(addr("10.80.0.7")), Some("team1"), "a spare address of a block is still the team's");
        assert_eq!(plan.team_of(addr("10.80.0.1")), None);
        assert_eq!(plan.team_of(addr("10.80.0.16")), None);
        assert_eq!(plan.team("team3").unwrap().peers.len(), 4);
    }

    #[test]
    fn the_same_input_gives_the_same_plan_and_the_gateway_is_never_a_peer() {
        let range: Ipv4Net = "10.80.0.0/24".parse().unwrap();
        let gateway = addr("10.80.0.9");
        let first = AddressPlan::allocate(range, gateway, &teams(&[2; 20])).unwrap();
        assert_eq!(first, AddressPlan::allocate(range, gateway, &teams(&[2; 20])).unwrap());
        let all: Vec<Ipv4Addr> = first.teams.iter().flat_map(|t| t.peers.clone()).collect();
        assert!(!all.contains(&gateway));
        assert!(!all.contains(&range.network()) && !all.contains(&range.broadcast()));
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        assert_eq!(first.teams[4].block.to_string(), "10.80.0.12/31", "the gateway's block 10.80.0.8/31 is skipped");
    }

    #[test]
    fn one_peer_per_team_uses_single_addresses() {
        let plan =
            AddressPlan::allocate("192.168.7.0/29".parse().unwrap(), addr("192.168.7.1"), &teams(&[1; 5])).unwrap();
        let peers: Vec<Ipv4Addr> = plan.teams.iter().map(|t| t.peers[0]).collect();
        assert_eq!(peers, ["192.168.7.2", "192.168.7.3", "192.168.7.4", "192.168.7.5", "192.168.7.6"].map(addr));
    }

    #[test]
    fn a_range_too_small_says_how_large_it_must_be() {
        let error =
            AddressPlan::allocate("10.80.0.0/28".parse().unwrap(), addr("10.80.0.1"), &teams(&[4; 4])).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("10.80.0.0/28"), "{text}");
        assert!(text.contains("4 teams"), "{text}");
        assert!(text.contains("10.80.0.0/27"), "{text}");
        // The suggestion really fits.
        AddressPlan::allocate("10.80.0.0/27".parse().unwrap(), addr("10.80.0.1"), &teams(&[4; 4])).unwrap();
    }

    #[test]
    fn a_large_range_is_planned_without_walking_all_of_it() {
        let plan = AddressPlan::allocate("10.0.0.0/8".parse().unwrap(), addr("10.0.0.1"), &teams(&[1; 3])).unwrap();
        assert_eq!(plan.teams[2].peers, [addr("10.0.0.4")]);
    }

    #[test]
    fn a_team_larger_than_the_range_is_refused() {
        let error =
            AddressPlan::allocate("10.80.0.0/29".parse().unwrap(), addr("10.80.0.1"), &teams(&[100])).unwrap_err();
        assert!(matches!(error, Error::RangeTooSmall { peers_per_team: 100, .. }), "{error}");
    }

    #[test]
    fn the_scenarios_capacity_check_agrees_with_the_plan() {
        // gongfang-core checks a scenario's `[vpn]` range without this crate: both must agree.
        for prefix in 22..=30u8 {
            let range: Ipv4Net = format!("10.80.0.0/{prefix}").parse().unwrap();
            let core_range = gongfang_core::scenario::Ipv4Net { addr: range.network(), prefix };
            for gateway in [addr("10.80.0.1"), addr("10.80.0.2"), addr("10.80.0.9"), addr("10.80.0.254")] {
                if !range.contains(&gateway) || gateway == range.broadcast() {
                    continue;
                }
                for peers in [1, 2, 3, 4, 5, 8, 33, 64] {
                    for count in [1, 2, 3, 7, 20, 70] {
                        let planned = AddressPlan::allocate(range, gateway, &teams(&vec![peers; count])).is_ok();
                        let reckoned = gongfang_core::scenario::vpn_range_fits(core_range, gateway, count, peers);
                        assert_eq!(planned, reckoned, "{range} gateway {gateway}, {count} teams of {peers}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_gateway_must_be_a_host_of_the_range() {
        for gateway in ["10.81.0.1", "10.80.0.0", "10.80.255.255"] {
            let error =
                AddressPlan::allocate("10.80.0.0/16".parse().unwrap(), addr(gateway), &teams(&[1])).unwrap_err();
            assert!(error.to_string().contains(gateway), "{error}");
        }
    }
}
