//! Tokens and passwords: generation from the OS CSPRNG; team and session tokens hashed with
//! HMAC-SHA256 under the server key; human passwords hashed with argon2id (OWASP's parameters)
//! on blocking threads, at most one run per core at a time.
//!
//! A team token carries 192 random bits, so a keyed hash protects it as well as a slow hash
//! would, and refusing a wrong one costs a microsecond instead of a 19 MiB argon2 run. Only
//! passwords, which people choose, get argon2id; its runs queue on a process-wide semaphore so
//! a flood of wrong passwords cannot take every core and gigabytes of memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use gongfang_core::Secret;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::error::{Result, StoreError};

/// Characters of a token: URL-safe, so it fits headers, query strings and shell arguments.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Length of a token: 32 × 6 = 192 random bits.
pub const TOKEN_LEN: usize = 32;
/// How many leading characters of a token are stored in clear to find its hash. 48 bits of
/// the token's 192 are given away; the remaining 144 are far beyond guessing.
pub const TOKEN_PREFIX_LEN: usize = 8;
/// How a keyed hash starts in the database: the scheme, then 64 hex digits.
pub(crate) const KEYED_SCHEME: &str = "hmac-sha256$";
/// Length of the server key, in bytes.
pub(crate) const KEY_LEN: usize = 32;
/// Length of a session token: 32 random bytes as hex.
pub(crate) const SESSION_TOKEN_LEN: usize = 64;
/// How long a password check waits for an argon2 slot before the caller is told to come back.
pub const ARGON2_WAIT: Duration = Duration::from_secs(5);

/// A fresh random team token, to be shown to its team exactly once.
pub fn generate_token() -> Secret {
    // `rand::rng()` is a ChaCha CSPRNG seeded from the OS.
    let mut rng = rand::rng();
    Secret::new((0..TOKEN_LEN).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect())
}

/// A fresh random session token: 256 bits as 64 lowercase hex digits.
pub(crate) fn generate_session_token() -> Secret {
    let bytes: [u8; 32] = rand::rng().random();
    Secret::new(to_hex(&bytes))
}

/// How an API token starts, so it is told from a session token at a glance (and by scanners
/// looking for leaked credentials).
pub(crate) const API_TOKEN_PREFIX: &str = "gfo_";

/// A fresh random API token: `gfo_` and 256 bits as 64 lowercase hex digits.
pub(crate) fn generate_api_token() -> Secret {
    let bytes: [u8; 32] = rand::rng().random();
    Secret::new(format!("{API_TOKEN_PREFIX}{}", to_hex(&bytes)))
}

/// Whether `token` has an API token's shape; anything else is refused without a lookup.
pub(crate) fn is_api_token(token: &str) -> bool {
    token.strip_prefix(API_TOKEN_PREFIX).is_some_and(is_session_token)
}

/// Whether `token` has a session token's shape; anything else is refused without a lookup.
pub(crate) fn is_session_token(token: &str) -> bool {
    token.len() == SESSION_TOKEN_LEN && token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The part of an issued token stored in clear to find its hash.
pub(crate) fn token_prefix(token: &Secret) -> &str {
    &token.expose()[..TOKEN_PREFIX_LEN]
}

/// The lookup prefix of a presented token, if it has a token's shape at all.
pub(crate) fn presented_prefix(token: &str) -> Option<&str> {
    (token.len() == TOKEN_LEN && token.bytes().all(|b| ALPHABET.contains(&b))).then(|| &token[..TOKEN_PREFIX_LEN])
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server key: 32 random bytes made by the migration that created the database's
/// `server_key` table, read once per [`Store`](crate::Store).
pub(crate) struct TokenKey(Secret<Vec<u8>>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// What a keyed hash is of: team tokens and session tokens never hash alike, even if one
/// were presented as the other.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    TeamToken,
    Session,
    ApiToken,
    /// The CSRF token of a browser session, derived from its session token.
    Csrf,
}

impl TokenKey {
    /// The key from its stored form (64 hex digits), or `None` if it is not that.
    pub(crate) fn from_hex(hex: &str) -> Option<TokenKey> {
        if hex.len() != 2 * KEY_LEN || !hex.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..KEY_LEN).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
        bytes.map(|b| TokenKey(Secret::new(b)))
    }

    fn mac(&self, purpose: Purpose, token: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose()).expect("HMAC takes a key of any length");
        mac.update(match purpose {
            Purpose::TeamToken => b"gongfang team token\0",
            Purpose::Session => b"gongfang session\0\0\0\0",
            Purpose::ApiToken => b"gongfang api token\0\0",
            Purpose::Csrf => b"gongfang csrf token\0",
        });
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The stored form of a token: `hmac-sha256$` and 64 hex digits.
    pub(crate) fn hash(&self, purpose: Purpose, token: &str) -> String {
        format!("{KEYED_SCHEME}{}", to_hex(&self.mac(purpose, token)))
    }

    /// Whether `token` hashes to `stored`, compared in constant time. A stored hash of another
    /// scheme (an argon2id hash from before tokens were keyed) never matches.
    pub(crate) fn matches(&self, purpose: Purpose, token: &str, stored: &str) -> bool {
        let expected = self.hash(purpose, token);
        stored.starts_with(KEYED_SCHEME) && bool::from(expected.as_bytes().ct_eq(stored.as_bytes()))
    }
}

/// Whether a stored token hash is a keyed one (not an argon2id hash from before).
pub(crate) fn is_keyed(stored: &str) -> bool {
    stored.starts_with(KEYED_SCHEME)
}

fn argon2() -> Argon2<'static> {
    // OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane (spelled out, not left to defaults).
    let params = Params::new(19_456, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// One argon2 run per core at a time, for the whole process: beyond that, runs queue instead
/// of multiplying memory (19 MiB each) and starving the flag submissions of CPU.
static ARGON2_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Arc::new(Semaphore::new(cores))
});

/// Argon2 runs started by this process.
static ARGON2_RUNS: AtomicU64 = AtomicU64::new(0);

/// How many argon2 runs (password hashes and verifications) this process has started: for
/// tests that prove a path never pays for one, and for metrics.
pub fn argon2_runs() -> u64 {
    ARGON2_RUNS.load(Ordering::Relaxed)
}

/// Runs `work` (one argon2 run) on a blocking thread once a slot is free; after waiting
/// [`ARGON2_WAIT`] without one, answers [`StoreError::Busy`]. The slot is held by the blocking
/// thread, so a caller that gives up (a client that hangs up) does not free it early.
async fn argon2_run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let slots = Arc::clone(&ARGON2_SLOTS);
    let permit = tokio::time::timeout(ARGON2_WAIT, slots.acquire_owned())
        .await
        .map_err(|_| StoreError::Busy { retry_after: ARGON2_WAIT })?
        .expect("the argon2 semaphore is never closed");
    ARGON2_RUNS.fetch_add(1, Ordering::Relaxed);
    Ok(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await?)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub(crate) async fn hash(secret: String) -> Result<String> {
    argon2_run(move || {
        argon2().hash_password(secret.as_bytes()).map(|h| h.to_string()).map_err(|e| StoreError::Hash(e.to_string()))
    })
    .await?
}

/// Whether the password `secret` matches the PHC string `hash`.
pub(crate) async fn verify(secret: String, hash: String) -> Result<bool> {
    argon2_run(move || verify_in_pool(secret.as_bytes(), &hash)).await?
}

/// Argon2's working memory (19 MiB per run), kept between runs: at most one buffer per slot
/// exists, since runs hold a slot. Left to the allocator, each run's freed buffer stays in
/// the arena of whichever blocking thread ran it (glibc keeps freed blocks of this size once
/// one was freed), so a flood of wrong passwords grew the process by 19 MiB per arena.
static ARGON2_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Runs `work` on a pooled buffer of at least `blocks` blocks.
fn with_pooled_memory<T>(blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
    let pool = || ARGON2_MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
    let taken = pool().pop();
    // A buffer too small for these parameters (a hash made with more memory) is replaced.
    let mut memory = taken.filter(|m| m.len() >= blocks).unwrap_or_else(|| vec![Block::new(); blocks]);
    let result = work(&mut memory[..blocks]);
    pool().push(memory);
    result
}

/// The PHC check `verify_password` does, computed in pooled memory and compared in constant
/// time. A hash with no salt or output never matches.
fn verify_in_pool(password: &[u8], stored: &str) -> Result<bool> {
    let unreadable = |e: &dyn std::fmt::Display| StoreError::Hash(format!("stored hash unreadable: {e}"));
    let parsed = PasswordHash::new(stored).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return Ok(false) };
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| unreadable(&e))?;
    let version = parsed.version.map(Version::try_from).transpose().map_err(|e| unreadable(&e))?.unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| unreadable(&e))?;
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut computed = vec![0u8; expected.len()];
    with_pooled_memory(blocks, |memory| argon2.hash_password_into_with_memory(password, salt, &mut computed, memory))
        .map_err(|e| unreadable(&e))?;
    Ok(bool::from(computed.ct_eq(expected.as_bytes())))
}

/// Spends one verification's time when there is no account to verify against, so an unknown
/// name costs about as long as a wrong password.
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

    /// The pooled check agrees with the argon2 crate's own, and runs reuse one buffer.
    #[test]
    fn passwords_are_checked_in_reused_memory() {
        let stored = argon2().hash_password(b"correct horse").unwrap().to_string();
        assert!(verify_in_pool(b"correct horse", &stored).unwrap());
        assert!(!verify_in_pool(b"correct horsf", &stored).unwrap());
        let pooled = || ARGON2_MEMORY.lock().unwrap().len();
        let before = pooled();
        assert!(verify_in_pool(b"correct horse", &stored).unwrap());
        assert_eq!(pooled(), before, "a run took a new buffer instead of the pooled one");
        // A hash made with other parameters is still checked by its own.
        let small = Params::new(1024, 1, 1, None).unwrap();
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, small).hash_password(b"pw").unwrap().to_string();
        assert!(verify_in_pool(b"pw", &other).unwrap());
        assert!(!verify_in_pool(b"px", &other).unwrap());
        assert!(verify_in_pool(b"pw", "$argon2id$v=19$m=19456,t=2,p=1").is_ok_and(|ok| !ok));
        assert!(verify_in_pool(b"pw", "not a hash").is_err());
    }

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

    #[test]
    fn keyed_hashes_match_only_their_token_key_and_purpose() {
        let key = TokenKey::from_hex(&"ab".repeat(KEY_LEN)).unwrap();
        let other = TokenKey::from_hex(&"cd".repeat(KEY_LEN)).unwrap();
        let token = generate_token();
        let stored = key.hash(Purpose::TeamToken, token.expose());
        assert!(stored.starts_with("hmac-sha256$") && stored.len() == KEYED_SCHEME.len() + 64, "{stored}");
        assert!(!stored.contains(token.expose()));
        assert!(key.matches(Purpose::TeamToken, token.expose(), &stored));
        assert!(!other.matches(Purpose::TeamToken, token.expose(), &stored), "another key matched");
        assert!(!key.matches(Purpose::Session, token.expose(), &stored), "a session matched a team token");
        assert!(!key.matches(Purpose::TeamToken, generate_token().expose(), &stored));
        // An argon2id hash from before tokens were keyed never matches.
        assert!(!key.matches(Purpose::TeamToken, token.expose(), "$argon2id$v=19$m=19456,t=2,p=1$x$y"));
        assert!(!format!("{key:?}").contains("ab"));
        assert!(TokenKey::from_hex("abc").is_none() && TokenKey::from_hex(&"zz".repeat(KEY_LEN)).is_none());
    }

    /// With every slot taken, a password check waits [`ARGON2_WAIT`] and is told to come back,
    /// having run nothing. (The only test of this binary that takes argon2 slots.)
    #[tokio::test]
    async fn a_password_check_without_a_free_slot_is_busy() {
        let cores = u32::try_from(std::thread::available_parallelism().map_or(1, |n| n.get())).unwrap();
        let all = Arc::clone(&ARGON2_SLOTS).acquire_many_owned(cores).await.unwrap();
        let before = argon2_runs();
        let started = std::time::Instant::now();
        let err = verify("password".into(), "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into()).await;
        assert!(matches!(err, Err(StoreError::Busy { retry_after }) if retry_after == ARGON2_WAIT), "{err:?}");
        assert!(started.elapsed() >= ARGON2_WAIT, "gave up early");
        assert_eq!(argon2_runs(), before, "a refused check was counted as a run");
        drop(all);
        // A freed slot is taken again.
        assert!(matches!(verify("password".into(), "not a phc string".into()).await, Err(StoreError::Hash(_))));
        assert_eq!(argon2_runs(), before + 1);
    }

    #[test]
    fn session_tokens_have_their_own_shape() {
        let s = generate_session_token();
        assert!(is_session_token(s.expose()));
        assert!(!is_session_token(generate_token().expose()));
        assert!(!is_session_token(&"A".repeat(SESSION_TOKEN_LEN)));
    }
}
