//! Rules that span entries rather than one table: duplicate team ids and slugs, overlapping
//! team networks, duplicate service slugs, and a mix of roles that can play.

use std::collections::HashMap;
use std::ops::Range;

use super::Walker;
use crate::ids::TeamId;
use crate::scenario::model::*;

impl Walker<'_, '_> {
    /// Checks that span teams or services: duplicates, overlaps, the mix of roles.
    pub(super) fn cross_checks(
        &mut self,
        teams: &[(Option<Team>, Range<usize>)],
        services: &[(Option<Service>, Range<usize>)],
    ) {
        let mut ids: HashMap<TeamId, usize> = HashMap::new();
        let mut slugs: HashMap<&str, usize> = HashMap::new();
        let mut nets: Vec<(Ipv4Net, usize)> = Vec::new();
        for (team, at) in teams {
            let Some(team) = team else { continue };
            if let Some(first) = ids.insert(team.id, at.start) {
                let line = self.c.line_of(first);
                self.c.error(
                    at,
                    format!("duplicate team id {}", team.id),
                    Some(format!("team id {} is already used on line {line}; give each team its own id", team.id)),
                );
            }
            if let Some(first) = slugs.insert(&team.slug, at.start) {
                let line = self.c.line_of(first);
                self.c.error(
                    at,
                    format!("duplicate team slug `{}`", team.slug),
                    Some(format!("`{}` is already used on line {line}; slugs must be unique", team.slug)),
                );
            }
            if let Some((other, first)) = nets.iter().find(|(n, _)| n.overlaps(team.network)) {
                let line = self.c.line_of(*first);
                self.c.error(
                    at,
                    format!("team `{}`'s network {} overlaps {} (line {line})", team.slug, team.network, other),
                    Some("give every team its own, non-overlapping network, e.g. 10.60.<id>.0/24".into()),
                );
            }
            nets.push((team.network, at.start));
        }
        let mut service_slugs: HashMap<&str, usize> = HashMap::new();
        for (service, at) in services {
            let Some(service) = service else { continue };
            if let Some(first) = service_slugs.insert(&service.slug, at.start) {
                let line = self.c.line_of(first);
                self.c.error(
                    at,
                    format!("duplicate service slug `{}`", service.slug),
                    Some(format!("`{}` is already used on line {line}; slugs must be unique", service.slug)),
                );
            }
        }
        if services.len() > usize::from(u8::MAX) {
            self.c.error(&services[255].1, "more than 255 services", Some("split the drill".into()));
        }
        let known: Vec<&Team> = teams.iter().filter_map(|(t, _)| t.as_ref()).collect();
        if !known.is_empty() && known.len() == teams.len() {
            let at = teams[0].1.clone();
            if !known.iter().any(|t| t.role.defends()) {
                self.c.error(
                    &at,
                    "no team defends: every team's role is `attacker`",
                    Some("give at least one team role = \"defender\" or \"both\"".into()),
                );
            }
            if !known.iter().any(|t| t.role.attacks() && !t.nop) {
                self.c.error(
                    &at,
                    "no team attacks: every team is a defender or the NOP team",
                    Some("give at least one team role = \"attacker\" or \"both\"".into()),
                );
            }
        }
    }
}
