//! The SSH public keys that open a team's shells, as teams give them (one line of a `.pub`
//! file) and as the platform keeps them: `ALGORITHM BASE64`, without the comment. Only
//! Ed25519 and ECDSA keys are taken. Pure: the key's encoding is checked, nothing is verified.

use base64::Engine as _;

/// Longest key line taken, comment included: an ECDSA P-521 key is about 270 characters.
pub const MAX_LINE: usize = 1024;
/// Longest label a key may carry.
pub const MAX_LABEL: usize = 80;

/// A public key as given, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellPublicKey {
    /// `ALGORITHM BASE64`: what the store keeps and compares.
    pub line: String,
    /// The comment after the key, if any (often `user@host`).
    pub comment: Option<String>,
}

/// Why a key was refused; each says what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellKeyError {
    #[error("no key: give the one line of a .pub file, e.g. `ssh-ed25519 AAAA… name`")]
    Empty,
    #[error("the key is longer than {MAX_LINE} characters; give the one line of a .pub file")]
    TooLong,
    #[error("this is a private key: give the public one (the .pub file beside it)")]
    Private,
    #[error("`{0}` keys are not taken: make an Ed25519 key with `ssh-keygen -t ed25519` and give its .pub file")]
    Algorithm(String),
    #[error("the key is not valid OpenSSH base64 for {0}; copy the whole line of the .pub file")]
    Encoding(String),
}

const ALGORITHMS: &[&str] = &["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"];

/// Reads the first key line of `text` (blank lines and `#` comments are skipped).
pub fn parse_public_key(text: &str) -> Result<ShellPublicKey, ShellKeyError> {
    if text.contains("PRIVATE KEY") {
        return Err(ShellKeyError::Private);
    }
    let line =
        text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).ok_or(ShellKeyError::Empty)?;
    if line.len() > MAX_LINE {
        return Err(ShellKeyError::TooLong);
    }
    let mut words = line.split_whitespace();
    let algorithm = words.next().ok_or(ShellKeyError::Empty)?;
    if !ALGORITHMS.contains(&algorithm) {
        let shown: String = algorithm.chars().take(40).collect();
        return Err(ShellKeyError::Algorithm(shown));
    }
    let encoded = words.next().ok_or_else(|| ShellKeyError::Encoding(algorithm.to_owned()))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| ShellKeyError::Encoding(algorithm.to_owned()))?;
    if !blob_is(algorithm, &blob) {
        return Err(ShellKeyError::Encoding(algorithm.to_owned()));
    }
    let comment = words.collect::<Vec<_>>().join(" ");
    Ok(ShellPublicKey {
        line: format!("{algorithm} {encoded}"),
        comment: (!comment.is_empty()).then(|| comment.chars().take(MAX_LABEL).collect()),
    })
}

/// Whether `blob` is the wire form of an `algorithm` key: its name, then the key's fields.
fn blob_is(algorithm: &str, blob: &[u8]) -> bool {
    let mut rest = blob;
    let mut field = || -> Option<&[u8]> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let value = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(value)
    };
    if field() != Some(algorithm.as_bytes()) {
        return false;
    }
    let fits = match algorithm {
        "ssh-ed25519" => field().is_some_and(|key| key.len() == 32),
        _ => {
            let curve = algorithm.trim_start_matches("ecdsa-sha2-");
            field() == Some(curve.as_bytes()) && field().is_some_and(|point| point.first() == Some(&4))
        }
    };
    fits && rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed25519_line(key: [u8; 32]) -> String {
        let mut blob = Vec::new();
        for field in [&b"ssh-ed25519"[..], &key[..]] {
            blob.extend_from_slice(&(field.len() as u32).to_be_bytes());
            blob.extend_from_slice(field);
        }
        format!("ssh-ed25519 {}", base64::engine::general_purpose::STANDARD.encode(blob))
    }

    #[test]
    fn a_key_is_kept_without_its_comment() {
        let line = ed25519_line([7; 32]);
        let key = parse_public_key(&format!("# laptop\n\n{line} someone@laptop\n")).unwrap();
        assert_eq!(key.line, line);
        assert_eq!(key.comment.as_deref(), Some("someone@laptop"));
        assert_eq!(parse_public_key(&line).unwrap().comment, None);
    }

    #[test]
    fn what_is_not_a_usable_public_key_is_refused_with_what_to_give() {
        let line = ed25519_line([7; 32]);
        let truncated = &line[..line.len() - 4];
        let cases: [(&str, ShellKeyError); 6] = [
            ("", ShellKeyError::Empty),
            ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc", ShellKeyError::Private),
            ("ssh-rsa AAAAB3NzaC1yc2E= x", ShellKeyError::Algorithm("ssh-rsa".to_owned())),
            ("ssh-ed25519", ShellKeyError::Encoding("ssh-ed25519".to_owned())),
            (truncated, ShellKeyError::Encoding("ssh-ed25519".to_owned())),
            ("ssh-ed25519 !!!!", ShellKeyError::Encoding("ssh-ed25519".to_owned())),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_public_key(text), Err(expected), "{text:?}");
        }
        assert_eq!(parse_public_key(&"a".repeat(MAX_LINE + 1)), Err(ShellKeyError::TooLong));
        // A key whose blob names another algorithm than its line.
        let other = ed25519_line([7; 32]).replace("ssh-ed25519 ", "ecdsa-sha2-nistp256 ");
        assert!(matches!(parse_public_key(&other), Err(ShellKeyError::Encoding(_))));
    }
}
