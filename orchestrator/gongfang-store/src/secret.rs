//! Team tokens and passwords: generation from the OS CSPRNG and argon2id hashing with OWASP's
//! parameters, always off the async threads.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use gongfang_core::Secret;
use rand::Rng;

use crate::error::{Result, StoreError};

/// Characters of a token: URL-safe, so it fits headers, query strings and shell arguments.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Length of a token: 32 × 6 = 192 random bits.
pub const TOKEN_LEN: usize = 32;
/// How many leading characters of a token are stored in clear to find its hash. 48 bits of
/// the token's 192 are given away; the remaining 144 are far beyond guessing.
pub const TOKEN_PREFIX_LEN: usize = 8;

/// A fresh random team token, to be shown to its team exactly once.
pub fn generate_token() -> Secret {
    // `rand::rng()` is a ChaCha CSPRNG seeded from the OS.
    let mut rng = rand::rng();
    Secret::new((0..TOKEN_LEN).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect())
}

/// The part of an issued token stored in clear to find its hash.
pub(crate) fn token_prefix(token: &Secret) -> &str {
    &token.expose()[..TOKEN_PREFIX_LEN]
}

/// The lookup prefix of a presented token, if it has a token's shape at all.
pub(crate) fn presented_prefix(token: &str) -> Option<&str> {
    (token.len() == TOKEN_LEN && token.bytes().all(|b| ALPHABET.contains(&b))).then(|| &token[..TOKEN_PREFIX_LEN])
}

fn argon2() -> Argon2<'static> {
    // OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane (spelled out, not left to defaults).
    let params = Params::new(19_456, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a secret into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) on a blocking thread.
pub(crate) async fn hash(secret: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        argon2().hash_password(secret.as_bytes()).map(|h| h.to_string()).map_err(|e| StoreError::Hash(e.to_string()))
    })
    .await?
}

/// Whether `secret` matches the PHC string `hash`, checked on a blocking thread.
pub(crate) async fn verify(secret: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| StoreError::Hash(format!("stored hash unreadable: {e}")))?;
        Ok(argon2().verify_password(secret.as_bytes(), &parsed).is_ok())
    })
    .await?
}

/// Spends one verification's time when there is nothing to verify against, so a miss costs
/// about as long as a wrong guess.
pub(crate) async fn verify_nothing(secret: String) -> Result<()> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = match DUMMY.get() {
        Some(h) => h.clone(),
        None => {
            let h = hash(generate_token().into_inner()).await?;
            DUMMY.get_or_init(|| h).clone()
        }
    };
    verify(secret, dummy).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_random_and_redacted() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert_eq!(presented_prefix(a.expose()), Some(token_prefix(&a)));
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(presented_prefix("short"), None);
        assert_eq!(presented_prefix(&"!".repeat(TOKEN_LEN)), None);
    }
}
