//! What a dev IdP is started with: its API, its one client, its users and permissions.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::tls;

#[derive(Clone)]
pub struct DevIdpConfig {
    /// API identifier: the `aud` of access tokens.
    pub audience: String,
    /// The one confidential client (an Auth0 Regular Web App).
    pub client_id: String,
    pub client_secret: String,
    /// Choices on the login page.
    pub users: Vec<DevUser>,
    /// Offered on the login page and granted by default to `client_credentials` and `password`.
    pub permissions: Vec<String>,
    /// `Some` makes `/authorize` skip the login page and issue a code at once.
    pub auto_approve: Option<AutoApprove>,
    pub access_token_ttl: Duration,
    /// `Some` serves HTTPS with this certificate (Auth0 is https-only), at `https://localhost:PORT`:
    /// the name the certificate from [`tls::TestCa::localhost`] is made for.
    pub tls: Option<tls::ServerCertificate>,
}

impl Default for DevIdpConfig {
    fn default() -> Self {
        Self {
            audience: "https://api.toolgate.dev".into(),
            client_id: "toolgate-dev-client".into(),
            client_secret: "toolgate-dev-secret".into(),
            users: vec![DevUser::alice(), DevUser::bob()],
            permissions: Vec::new(),
            auto_approve: None,
            access_token_ttl: Duration::from_secs(3600),
            tls: None,
        }
    }
}

impl fmt::Debug for DevIdpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevIdpConfig")
            .field("audience", &self.audience)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("users", &self.users)
            .field("permissions", &self.permissions)
            .field("auto_approve", &self.auto_approve)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("https", &self.tls.is_some())
            .finish()
    }
}

impl DevIdpConfig {
    /// The user `name` picks: a `sub`, a nickname, or an email in any case.
    pub(crate) fn find_user(&self, name: &str) -> Option<&DevUser> {
        self.users
            .iter()
            .find(|u| u.sub == name || u.nickname == name || u.email.eq_ignore_ascii_case(name))
    }

    /// Whether `id` and `secret` are the configured client's; the secret compares in constant time.
    pub(crate) fn is_client(&self, id: &str, secret: &str) -> bool {
        id == self.client_id && crate::util::secret_eq(secret, &self.client_secret)
    }
}

#[derive(Clone, Debug)]
pub struct AutoApprove {
    /// A dev user's `sub` (its nickname or email are accepted too).
    pub user: String,
    pub permissions: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DevUser {
    pub sub: String,
    pub name: String,
    pub nickname: String,
    pub email: String,
    pub email_verified: bool,
    pub picture: String,
}

impl DevUser {
    pub fn alice() -> Self {
        Self::example("alice", "Alice")
    }

    pub fn bob() -> Self {
        Self::example("bob", "Bob")
    }

    fn example(nickname: &str, first_name: &str) -> Self {
        Self {
            sub: format!("auth0|{nickname}"),
            name: format!("{first_name} Example"),
            nickname: nickname.into(),
            email: format!("{nickname}@example.com"),
            email_verified: true,
            picture: format!("https://example.com/{nickname}.png"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_by_sub_nickname_or_email() {
        let config = DevIdpConfig::default();
        for name in ["auth0|bob", "bob", "Bob@Example.com"] {
            assert_eq!(
                config.find_user(name).map(|u| u.sub.as_str()),
                Some("auth0|bob")
            );
        }
        assert!(config.find_user("mallory").is_none());
        assert!(config.find_user("Bob").is_none(), "nicknames match exactly");
    }

    #[test]
    fn the_examples_keep_their_published_profiles() {
        let alice = DevUser::alice();
        assert_eq!(alice.sub, "auth0|alice");
        assert_eq!(alice.name, "Alice Example");
        assert_eq!(alice.email, "alice@example.com");
        assert_eq!(alice.picture, "https://example.com/alice.png");
    }

    #[test]
    fn only_the_configured_secret_authenticates() {
        let config = DevIdpConfig::default();
        assert!(config.is_client("toolgate-dev-client", "toolgate-dev-secret"));
        assert!(!config.is_client("toolgate-dev-client", "toolgate-dev-secreT"));
        assert!(!config.is_client("someone-else", "toolgate-dev-secret"));
    }
}
