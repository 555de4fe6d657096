//! A value that must never reach a log: keys, team tokens, passwords.
//!
//! [`Secret`] prints as `<redacted>` in `Debug` and has no `Display`, so neither `{:?}` in a
//! tracing field nor a derived `Debug` of a struct holding one can leak it; reading it takes
//! an explicit [`Secret::expose`].

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;

/// A secret value: a key (`Secret<Vec<u8>>`), a token or a password (`Secret<String>`).
#[derive(Clone, Default)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The value itself: for hashing, signing or sending it, never for printing it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsRef<[u8]>> Secret<T> {
    /// Whether two secrets are equal, in time that does not depend on where they differ.
    pub fn ct_eq(&self, other: &Secret<T>) -> bool {
        self.0.as_ref().ct_eq(other.0.as_ref()).into()
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Secret<String> {
        Secret(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Secret<String> {
        Secret(value.to_owned())
    }
}

impl From<Vec<u8>> for Secret<Vec<u8>> {
    fn from(value: Vec<u8>) -> Secret<Vec<u8>> {
        Secret(value)
    }
}

/// So a command-line option or an environment variable can hold a secret.
impl FromStr for Secret<String> {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret<String>, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// A password or token arriving in a JSON or TOML body.
impl<'de> serde::Deserialize<'de> for Secret<String> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Serialises the secret itself, for the one answer that hands it to its owner (a session
/// token at login): `#[serde(serialize_with = "gongfang_core::secret::serialize_exposed")]`.
/// `Secret` has no `Serialize` of its own, so no other JSON can carry one by accident.
pub fn serialize_exposed<S: serde::Serializer>(secret: &Secret<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&secret.0)
}

impl PartialEq for Secret<String> {
    fn eq(&self, other: &Secret<String>) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for Secret<String> {}

impl PartialEq for Secret<Vec<u8>> {
    fn eq(&self, other: &Secret<Vec<u8>>) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for Secret<Vec<u8>> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Login {
        name: String,
        password: Secret,
    }

    #[test]
    fn debug_never_shows_the_value() {
        let login = Login { name: "judge1".into(), password: "hunter2-but-longer".into() };
        let printed = format!("{login:?} {:?}", Secret::new(b"key-bytes".to_vec()));
        assert!(printed.contains("judge1"));
        assert!(!printed.contains("hunter2") && !printed.contains("key-bytes"), "{printed}");
        assert_eq!(login.password.expose(), "hunter2-but-longer");
    }

    #[test]
    fn equality_compares_the_values() {
        assert_eq!(Secret::from("abc"), Secret::from("abc"));
        assert_ne!(Secret::from("abc"), Secret::from("abd"));
        assert_ne!(Secret::from("abc"), Secret::from("abcd"));
    }
}
