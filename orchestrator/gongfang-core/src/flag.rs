//! Flags: `PREFIX{…}` strings that prove themselves.
//!
//! A flag's body is 32 characters of URL-safe base64 over 24 bytes:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | tick (big-endian u32) |
//! | 4..6 | team (big-endian u16) |
//! | 6 | service |
//! | 7 | flag store |
//! | 8..12 | nonce |
//! | 12..24 | tag: HMAC-SHA256 of bytes 0..12, truncated to 96 bits |
//!
//! The key is derived from the scenario's secret and the drill (its slug and [`DrillId`], made
//! at random when the drill's database is created), so a submission is validated with no
//! database lookup, minting is deterministic (a restarted engine re-mints the same flag), and
//! a rehearsal with the same scenario and secret never mints the real drill's flags.
//! The nonce is itself derived from the key and the fields, so flags of neighbouring ticks
//! share no visible structure beyond their fields.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ids::{ServiceId, StoreIdx, TeamId, Tick};

type HmacSha256 = Hmac<Sha256>;

const PAYLOAD_LEN: usize = 12;
const TAG_LEN: usize = 12;
const RAW_LEN: usize = PAYLOAD_LEN + TAG_LEN;
/// Length of the base64 body between the braces.
pub const BODY_LEN: usize = 32;

/// What a valid flag says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlagInfo {
    /// The tick the flag was planted in.
    pub tick: Tick,
    /// The team whose service holds it.
    pub team: TeamId,
    /// The service holding it.
    pub service: ServiceId,
    /// The flag store within the service.
    pub store: StoreIdx,
}

impl FlagInfo {
    /// Whether the flag can no longer be submitted at `now`: a flag planted in tick `t` is
    /// valid in ticks `t ..= t + lifetime - 1`.
    pub fn is_expired(&self, now: Tick, lifetime: u32) -> bool {
        u64::from(now.0) >= u64::from(self.tick.0) + u64::from(lifetime)
    }
}

/// Why a string is not a valid flag. The messages are safe to show to a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// The string does not have the flag's shape.
    #[error("not a flag: expected {{prefix}}{{32 base64url characters}}")]
    Malformed,
    /// The shape is right but the authentication tag does not match.
    #[error("not a flag of this drill: the authentication tag does not match")]
    BadTag,
}

/// A drill's identity: random bytes made once when its database is created, never changed.
/// Not secret; it keeps two drills that share a scenario and secret (a rehearsal and the real
/// drill) from sharing flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DrillId([u8; 16]);

impl DrillId {
    /// The length of an id, in bytes.
    pub const LEN: usize = 16;

    pub fn from_bytes(bytes: [u8; 16]) -> DrillId {
        DrillId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// Mints and checks flags under one drill's key and prefix.
#[derive(Clone)]
pub struct FlagCodec {
    prefix: String,
    mac: HmacSha256,
}

impl std::fmt::Debug for FlagCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("FlagCodec").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl FlagCodec {
    /// The codec of one drill: flags `prefix{…}` authenticated under a key derived from the
    /// scenario's `secret`, the drill's `slug` and its `drill` id. Every part of the platform
    /// that mints, checks or seeds from flags builds its codec here, so they agree.
    pub fn for_drill(prefix: &str, secret: &[u8], slug: &str, drill: DrillId) -> FlagCodec {
        // A flag-only key, so the scenario secret can serve other purposes safely. The slug is
        // length-prefixed so no two (slug, id) pairs feed the same bytes.
        let mut kdf = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        kdf.update(b"gongfang flag key v2\0");
        kdf.update(&(slug.len() as u64).to_be_bytes());
        kdf.update(slug.as_bytes());
        kdf.update(drill.as_bytes());
        let key = kdf.finalize().into_bytes();
        let mac = <HmacSha256 as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
        FlagCodec { prefix: prefix.to_owned(), mac }
    }

    /// The flag prefix (e.g. `GONGFANG`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The flag for `info`; the same inputs always give the same flag.
    pub fn mint(&self, info: FlagInfo) -> String {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[0..4].copy_from_slice(&info.tick.0.to_be_bytes());
        payload[4..6].copy_from_slice(&info.team.0.to_be_bytes());
        payload[6] = info.service.0;
        payload[7] = info.store.0;
        let nonce = self.tag(&[b"nonce", &payload[..8]].concat());
        payload[8..12].copy_from_slice(&nonce[..4]);
        let tag = self.tag(&payload);

        let mut raw = [0u8; RAW_LEN];
        raw[..PAYLOAD_LEN].copy_from_slice(&payload);
        raw[PAYLOAD_LEN..].copy_from_slice(&tag[..TAG_LEN]);
        let mut out = String::with_capacity(self.prefix.len() + BODY_LEN + 2);
        out.push_str(&self.prefix);
        out.push('{');
        URL_SAFE_NO_PAD.encode_string(raw, &mut out);
        out.push('}');
        out
    }

    /// Checks a submitted flag and says what it is; no lookup, constant-time tag comparison.
    pub fn parse(&self, flag: &str) -> Result<FlagInfo, FlagError> {
        let body = flag
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('{'))
            .and_then(|rest| rest.strip_suffix('}'))
            .ok_or(FlagError::Malformed)?;
        if body.len() != BODY_LEN {
            return Err(FlagError::Malformed);
        }
        let mut raw = [0u8; RAW_LEN];
        let n = URL_SAFE_NO_PAD.decode_slice(body, &mut raw).map_err(|_| FlagError::Malformed)?;
        if n != RAW_LEN {
            return Err(FlagError::Malformed);
        }
        let (payload, tag) = raw.split_at(PAYLOAD_LEN);
        let expected = self.tag(payload);
        if !bool::from(expected[..TAG_LEN].ct_eq(tag)) {
            return Err(FlagError::BadTag);
        }
        // Base64 has slack bits in its last character; re-encoding rejects altered slack.
        if URL_SAFE_NO_PAD.encode(raw) != body {
            return Err(FlagError::Malformed);
        }
        Ok(FlagInfo {
            tick: Tick(u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])),
            team: TeamId(u16::from_be_bytes([payload[4], payload[5]])),
            service: ServiceId(payload[6]),
            store: StoreIdx(payload[7]),
        })
    }

    /// A number derived from the secret and `label`, unpredictable to anyone without the
    /// secret: seeds for checker schedules and checker data, so teams cannot foresee them.
    pub fn derive_seed(&self, label: &[u8]) -> u64 {
        let tag = self.tag(&[b"seed:", label].concat());
        u64::from_be_bytes(tag[..8].try_into().expect("8 bytes"))
    }

    fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    const SECRET: &[u8] = b"a test secret that is long enough";
    const DRILL: DrillId = DrillId([7; 16]);

    fn codec() -> FlagCodec {
        FlagCodec::for_drill("GONGFANG", SECRET, "drill-2026", DRILL)
    }

    fn info() -> FlagInfo {
        FlagInfo { tick: Tick(42), team: TeamId(7), service: ServiceId(2), store: StoreIdx(1) }
    }

    #[test]
    fn round_trip() {
        let c = codec();
        let flag = c.mint(info());
        assert!(flag.starts_with("GONGFANG{") && flag.ends_with('}'));
        assert_eq!(flag.len(), "GONGFANG{}".len() + BODY_LEN);
        assert_eq!(c.parse(&flag), Ok(info()));
    }

    #[test]
    fn minting_is_deterministic_and_distinct() {
        let c = codec();
        assert_eq!(c.mint(info()), codec().mint(info()));
        let other = FlagInfo { store: StoreIdx(0), ..info() };
        assert_ne!(c.mint(info()), c.mint(other));
        let edge =
            FlagInfo { tick: Tick(u32::MAX), team: TeamId(u16::MAX), service: ServiceId(255), store: StoreIdx(255) };
        assert_eq!(c.parse(&c.mint(edge)), Ok(edge));
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let c = codec();
        let flag = c.mint(info());
        let alphabet: Vec<char> =
            ('A'..='Z').chain('a'..='z').chain('0'..='9').chain(['-', '_', '{', '}', 'x', ' ']).collect();
        let chars: Vec<char> = flag.chars().collect();
        let mut tried = 0;
        for i in 0..chars.len() {
            for &replacement in &alphabet {
                if replacement == chars[i] {
                    continue;
                }
                let mut altered = chars.clone();
                altered[i] = replacement;
                let altered: String = altered.into_iter().collect();
                assert!(c.parse(&altered).is_err(), "accepted altered flag {altered}");
                tried += 1;
            }
        }
        assert!(tried > 1000);
    }

    #[test]
    fn truncated_and_extended_flags_are_rejected() {
        let c = codec();
        let flag = c.mint(info());
        for cut in 0..flag.len() {
            assert!(c.parse(&flag[..cut]).is_err());
        }
        assert!(c.parse(&format!("{flag}\n")).is_err());
        assert!(c.parse(&format!(" {flag}")).is_err());
        assert_eq!(c.parse(&flag.replace('}', "A}")), Err(FlagError::Malformed));
    }

    #[test]
    fn wrong_secret_or_prefix_is_rejected() {
        let flag = codec().mint(info());
        let other = FlagCodec::for_drill("GONGFANG", b"another secret entirely", "drill-2026", DRILL);
        assert_eq!(other.parse(&flag), Err(FlagError::BadTag));
        let other_prefix = FlagCodec::for_drill("FAUST", SECRET, "drill-2026", DRILL);
        assert_eq!(other_prefix.parse(&flag), Err(FlagError::Malformed));
    }

    #[test]
    fn a_rehearsal_never_mints_the_real_drills_flags() {
        // Same scenario, same secret: a rehearsal's database has another id, and a copy of the
        // scenario under another slug is another drill.
        let real = codec();
        let rehearsal = FlagCodec::for_drill("GONGFANG", SECRET, "drill-2026", DrillId([8; 16]));
        let renamed = FlagCodec::for_drill("GONGFANG", SECRET, "drill-2026-test", DRILL);
        for other in [&rehearsal, &renamed] {
            assert_ne!(other.mint(info()), real.mint(info()));
            assert_eq!(real.parse(&other.mint(info())), Err(FlagError::BadTag));
            assert_eq!(other.parse(&real.mint(info())), Err(FlagError::BadTag));
            assert_ne!(other.derive_seed(b"tick plan"), real.derive_seed(b"tick plan"));
        }
    }

    #[test]
    fn expiry_by_tick() {
        let f = info(); // planted in tick 42
        assert!(!f.is_expired(Tick(42), 5));
        assert!(!f.is_expired(Tick(46), 5));
        assert!(f.is_expired(Tick(47), 5));
        assert!(f.is_expired(Tick(100), 5));
        assert!(!FlagInfo { tick: Tick(u32::MAX), ..f }.is_expired(Tick(u32::MAX), 1));
    }

    #[test]
    fn random_strings_are_never_accepted() {
        let c = codec();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6f6e67);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for _ in 0..100_000 {
            // Well-shaped bodies exercise the tag check, not only the shape check.
            let body: String = (0..BODY_LEN).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect();
            let candidate = format!("GONGFANG{{{body}}}");
            assert!(c.parse(&candidate).is_err(), "accepted random {candidate}");
        }
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let shown = format!("{:?}", codec());
        assert!(!shown.contains("secret"));
        assert!(shown.contains("GONGFANG"));
    }
}
