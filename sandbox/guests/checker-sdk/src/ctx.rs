//! The action's context as the checker sees it: where the target is and which tick it is.

use std::net::IpAddr;

use crate::bindings::gongfang::checker::types as wit;
use crate::random::Rng;

/// Where the target service is, and which team and tick this action is for.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The target team's service address.
    pub address: IpAddr,
    /// The service's ports; the only ports the sandbox lets the checker connect to.
    pub ports: Vec<u16>,
    /// The target team's number.
    pub team: u16,
    /// The game tick.
    pub tick: u32,
    /// A per-action seed; [`Ctx::rng`] derives random data from it.
    pub seed: u64,
}

impl Ctx {
    pub(crate) fn from_wit(ctx: wit::Ctx) -> Ctx {
        // The host always passes an address it parsed itself; failing here is a platform bug,
        // so it must end as `checker-error`, not as a verdict against the team.
        let address = ctx
            .address
            .parse()
            .unwrap_or_else(|_| panic!("host passed an invalid target address {:?}", ctx.address));
        Ctx { address, ports: ctx.ports, team: ctx.team, tick: ctx.tick, seed: ctx.seed }
    }

    /// The service's first port: most services have exactly one.
    pub fn port(&self) -> u16 {
        *self.ports.first().expect("the scenario gives every service at least one port")
    }

    /// A random generator seeded from this action's seed, so a replayed action sends the
    /// same data. Different `stream`s give independent sequences from the same seed.
    pub fn rng(&self, stream: u64) -> Rng {
        Rng::new(self.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}
