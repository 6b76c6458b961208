//! Secrets from the environment, held by `secrecy` so they are wiped from memory when dropped.

use std::fmt;

use secrecy::ExposeSecret;

/// A secret string (a client secret, a signing key, a password): `Debug` never shows it, it is
/// zeroed when dropped, and [`secret`](Self::secret) is the one way in, so every read of a secret
/// is visible in the code.
#[derive(Clone)]
pub struct SecretString(secrecy::SecretString);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secrecy::SecretString::from(secret.into()))
    }

    /// The secret itself. Keep it out of logs and error messages.
    pub fn secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        self.secret() == other.secret()
    }
}

impl Eq for SecretString {}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_secret_is_the_way_in() {
        let secret = SecretString::new("hunter2-value");
        assert_eq!(format!("{secret:?}"), "SecretString([redacted])");
        assert_eq!(secret.secret(), "hunter2-value");
        assert_eq!(secret.clone(), secret);
    }
}
