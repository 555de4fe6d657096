//! WireGuard keys: X25519 key pairs and preshared keys, in the base64 form `wg` reads and writes.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gongfang_core::Secret;
use x25519_dalek::{PublicKey as DalekPublic, StaticSecret};

use crate::Error;

/// Length of every WireGuard key, private, public or preshared.
const KEY_LEN: usize = 32;

/// A peer's or the gateway's private key. Printing it shows `<redacted>`; the base64 text
/// comes out only as a [`Secret`], for a config file handed to its owner or `wg`'s stdin.
#[derive(Clone)]
pub struct PrivateKey(Secret<[u8; KEY_LEN]>);

/// A public key: not secret, shown in status and used to name a peer to the gateway.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

/// A preshared key, an optional second secret a peer shares with the gateway.
#[derive(Clone)]
pub struct PresharedKey(Secret<[u8; KEY_LEN]>);

impl PrivateKey {
    /// A fresh key from the operating system's random source, clamped as `wg genkey` clamps.
    pub fn generate() -> PrivateKey {
        PrivateKey::from_bytes(random_bytes())
    }

    /// The key made of these bytes, clamped as X25519 wants (so `to_base64` matches what
    /// `wg genkey` would have written for them).
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> PrivateKey {
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        PrivateKey(Secret::new(bytes))
    }

    pub fn public_key(&self) -> PublicKey {
        let secret = StaticSecret::from(*self.0.expose());
        PublicKey(DalekPublic::from(&secret).to_bytes())
    }

    pub fn to_base64(&self) -> Secret<String> {
        Secret::new(STANDARD.encode(self.0.expose()))
    }

    /// Reads a key as `wg` writes it; the error never contains the text.
    pub fn from_base64(text: &Secret<String>) -> Result<PrivateKey, Error> {
        Ok(PrivateKey::from_bytes(decode(text.expose(), "private")?))
    }
}

impl PresharedKey {
    pub fn generate() -> PresharedKey {
        PresharedKey(Secret::new(random_bytes()))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> PresharedKey {
        PresharedKey(Secret::new(bytes))
    }

    pub fn to_base64(&self) -> Secret<String> {
        Secret::new(STANDARD.encode(self.0.expose()))
    }

    pub fn from_base64(text: &Secret<String>) -> Result<PresharedKey, Error> {
        Ok(PresharedKey::from_bytes(decode(text.expose(), "preshared")?))
    }
}

impl PublicKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> PublicKey {
        PublicKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    fn from_str(text: &str) -> Result<PublicKey, Error> {
        Ok(PublicKey(decode(text, "public")?))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(<redacted>)")
    }
}

fn random_bytes() -> [u8; KEY_LEN] {
    // rand's thread generator is a CSPRNG seeded from the operating system.
    rand::random()
}

fn decode(text: &str, kind: &'static str) -> Result<[u8; KEY_LEN], Error> {
    let bytes = STANDARD.decode(text.trim()).map_err(|_| Error::Key { kind })?;
    bytes.try_into().map_err(|_| Error::Key { kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_matches_the_x25519_test_vector() {
        // RFC 7748, section 6.1: Alice's private and public keys.
        let private = hex_bytes("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let public = hex_bytes("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        assert_eq!(PrivateKey::from_bytes(private).public_key().as_bytes(), &public);
    }

    #[test]
    fn base64_round_trips_and_is_44_characters() {
        let key = PrivateKey::generate();
        let text = key.to_base64();
        assert_eq!(text.expose().len(), 44);
        assert!(text.expose().ends_with('='));
        let again = PrivateKey::from_base64(&text).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = key.public_key();
        assert_eq!(public.to_string().parse::<PublicKey>().unwrap(), public);
    }

    #[test]
    fn generated_keys_are_clamped_and_differ() {
        let a = PrivateKey::generate();
        let b = PrivateKey::generate();
        assert_ne!(a.public_key(), b.public_key());
        let bytes = a.0.expose();
        assert_eq!(bytes[0] & 7, 0);
        assert_eq!(bytes[31] & 0xc0, 0x40);
    }

    #[test]
    fn malformed_keys_are_refused_without_echoing_them() {
        let error = PrivateKey::from_base64(&Secret::new("c2VjcmV0".to_owned())).unwrap_err();
        assert!(!error.to_string().contains("c2VjcmV0"), "{error}");
        assert!(error.to_string().contains("private key"), "{error}");
        assert!("not base64!".parse::<PublicKey>().is_err());
        assert!(PresharedKey::from_base64(&Secret::new(STANDARD.encode([1u8; 31]))).is_err());
    }

    #[test]
    fn debug_never_shows_secret_keys() {
        let key = PrivateKey::generate();
        let shown = format!("{key:?} {:?}", PresharedKey::generate());
        assert!(!shown.contains(key.to_base64().expose()));
        assert_eq!(shown, "PrivateKey(<redacted>) PresharedKey(<redacted>)");
    }

    #[test]
    fn matches_wg_pubkey_when_wg_is_installed() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let key = PrivateKey::generate();
        let Ok(mut child) = Command::new("wg").arg("pubkey").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()
        else {
            eprintln!("skipped: wg is not installed (Debian's wireguard-tools)");
            return;
        };
        child.stdin.take().unwrap().write_all(key.to_base64().expose().as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        assert_eq!(String::from_utf8(output.stdout).unwrap().trim(), key.public_key().to_base64());
    }

    fn hex_bytes(text: &str) -> [u8; KEY_LEN] {
        let mut out = [0; KEY_LEN];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
