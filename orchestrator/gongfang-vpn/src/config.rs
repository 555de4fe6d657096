//! A team peer's `wg-quick` config: its key and address, and the gateway as its only peer,
//! routing the game networks and the gateway's address through the tunnel and nothing else.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use gongfang_core::Secret;
use ipnet::Ipv4Net;

use crate::Error;
use crate::keys::{PresharedKey, PrivateKey, PublicKey};

/// The keep-alive a team's peer sends every this many seconds, so the path through a NAT in
/// front of the team stays open and the gateway can reach the peer between its requests.
pub const KEEPALIVE_SECONDS: u16 = 25;

/// Everything one peer's config holds.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// A comment line at the top (e.g. the drill, team and peer number); no secrets.
    pub title: String,
    pub private_key: PrivateKey,
    /// The peer's tunnel address, from the [`AddressPlan`](crate::AddressPlan).
    pub address: Ipv4Addr,
    pub gateway_public_key: PublicKey,
    pub preshared_key: Option<PresharedKey>,
    /// Where the team reaches the gateway: `host:port`, a name or an address.
    pub endpoint: String,
    /// The networks of the teams' services.
    pub game_networks: Vec<Ipv4Net>,
    /// The platform's address inside the tunnel (submission, web, portal).
    pub gateway_address: Ipv4Addr,
    pub keepalive_seconds: Option<u16>,
}

impl PeerConfig {
    /// The routes the tunnel carries: the game networks (each once, in order) and the gateway's
    /// own address as a /32.
    pub fn allowed_ips(&self) -> Vec<Ipv4Net> {
        let mut out: Vec<Ipv4Net> = Vec::new();
        let gateway = Ipv4Net::from(self.gateway_address);
        for net in self.game_networks.iter().map(Ipv4Net::trunc).chain([gateway]) {
            if !out.contains(&net) {
                out.push(net);
            }
        }
        out
    }

    /// The file's text, as `wg-quick up` reads it. It holds the private key, so it comes out
    /// as a [`Secret`]: write it to a file only its owner can read. No `DNS` line: the team's
    /// name resolution is left alone.
    pub fn render(&self) -> Result<Secret<String>, Error> {
        let allowed = self.allowed_ips();
        if let Some(net) = allowed.iter().find(|n| n.prefix_len() == 0) {
            return Err(Error::Config(format!(
                "game network {net} would send all of the team's traffic through the tunnel: list only the game networks"
            )));
        }
        if let Some(ip) = self.endpoint_ip()
            && let Some(net) = allowed.iter().find(|n| n.contains(&ip))
        {
            return Err(Error::Config(format!(
                "the endpoint {} lies inside {net}, which the tunnel carries: the tunnel could not reach its own gateway; \
                 give the gateway a public address outside the game networks",
                self.endpoint
            )));
        }
        if self.endpoint.trim().is_empty() || self.endpoint.contains(char::is_whitespace) {
            return Err(Error::Config(format!("endpoint {:?} is not host:port", self.endpoint)));
        }
        if self.title.contains('\n') {
            return Err(Error::Config("a config's title must be one line".to_owned()));
        }
        let mut text = String::new();
        let routes = allowed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        // Writing to a String cannot fail.
        let _ = writeln!(text, "# {}", self.title);
        let _ = writeln!(text, "[Interface]");
        let _ = writeln!(text, "PrivateKey = {}", self.private_key.to_base64().expose());
        let _ = writeln!(text, "Address = {}/32", self.address);
        let _ = writeln!(text);
        let _ = writeln!(text, "[Peer]");
        let _ = writeln!(text, "PublicKey = {}", self.gateway_public_key);
        if let Some(psk) = &self.preshared_key {
            let _ = writeln!(text, "PresharedKey = {}", psk.to_base64().expose());
        }
        let _ = writeln!(text, "Endpoint = {}", self.endpoint);
        let _ = writeln!(text, "AllowedIPs = {routes}");
        if let Some(seconds) = self.keepalive_seconds {
            let _ = writeln!(text, "PersistentKeepalive = {seconds}");
        }
        Ok(Secret::new(text))
    }

    fn endpoint_ip(&self) -> Option<Ipv4Addr> {
        let (host, _) = self.endpoint.rsplit_once(':')?;
        host.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PeerConfig {
        PeerConfig {
            title: "drill demo, team team1, peer 1".to_owned(),
            private_key: PrivateKey::from_bytes([1; 32]),
            address: "10.80.0.4".parse().unwrap(),
            gateway_public_key: PrivateKey::from_bytes([2; 32]).public_key(),
            preshared_key: Some(PresharedKey::from_bytes([3; 32])),
            endpoint: "203.0.113.7:51820".to_owned(),
            game_networks: vec!["10.60.0.0/16".parse().unwrap(), "10.61.1.9/24".parse().unwrap()],
            gateway_address: "10.80.0.1".parse().unwrap(),
            keepalive_seconds: Some(KEEPALIVE_SECONDS),
        }
    }

    #[test]
    fn renders_the_wg_quick_file() {
        let config = config();
        let text = config.render().unwrap();
        let expected = format!(
            "# drill demo, team team1, peer 1\n\
             [Interface]\n\
             PrivateKey = AAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAUE=\n\
             Address = 10.80.0.4/32\n\
             \n\
             [Peer]\n\
             PublicKey = {}\n\
             PresharedKey = AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n\
             Endpoint = 203.0.113.7:51820\n\
             AllowedIPs = 10.60.0.0/16, 10.61.1.0/24, 10.80.0.1/32\n\
             PersistentKeepalive = 25\n",
            config.gateway_public_key
        );
        assert_eq!(text.expose(), &expected);
        assert!(!text.expose().contains("DNS"));
        assert!(!text.expose().contains("0.0.0.0/0"));
    }

    #[test]
    fn without_a_preshared_key_or_keepalive_those_lines_are_left_out() {
        let mut config = config();
        config.preshared_key = None;
        config.keepalive_seconds = None;
        let text = config.render().unwrap();
        assert!(!text.expose().contains("PresharedKey"));
        assert!(!text.expose().contains("PersistentKeepalive"));
    }

    #[test]
    fn a_default_route_is_refused() {
        let mut config = config();
        config.game_networks.push("0.0.0.0/0".parse().unwrap());
        let error = config.render().unwrap_err();
        assert!(error.to_string().contains("all of the team's traffic"), "{error}");
    }

    #[test]
    fn an_endpoint_inside_the_tunnel_is_refused() {
        let mut config = config();
        config.endpoint = "10.60.3.4:51820".to_owned();
        let error = config.render().unwrap_err();
        assert!(error.to_string().contains("10.60.0.0/16"), "{error}");
    }

    #[test]
    fn the_gateway_is_routed_once_even_inside_a_game_network() {
        let mut config = config();
        config.game_networks = vec!["10.80.0.1/32".parse().unwrap(), "10.60.0.0/16".parse().unwrap()];
        let routes: Vec<String> = config.allowed_ips().iter().map(ToString::to_string).collect();
        assert_eq!(routes, ["10.80.0.1/32", "10.60.0.0/16"]);
    }
}
