//! The keys derived from `JWT_SIGNING_KEY`, one per purpose, so a key leaked from one use (a cookie,
//! say) says nothing about another (token signatures). Every replica given the same signing key
//! derives the same keys: one issues a token or seals a state, another verifies or opens it.
//!
//! HKDF-SHA256 (RFC 5869) with the purpose as `info`. A server owns its `DerivedKeys`; nothing here
//! is process-wide, so two servers in one process with different signing keys share no key.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::config::SecretString;

/// Everything keyed by one `JWT_SIGNING_KEY`.
pub(crate) struct DerivedKeys {
    /// Signs the access tokens the authorization server issues (HS256).
    pub(crate) access_encoding: jsonwebtoken::EncodingKey,
    /// Verifies them.
    pub(crate) access_decoding: jsonwebtoken::DecodingKey,
    /// Encrypts and authenticates the consent cookie (the cookie crate's private jar).
    pub(crate) consent_cookie: cookie::Key,
    /// MACs the consent form's CSRF token.
    pub(crate) consent_csrf: [u8; 32],
    /// Seals a tool's 2026-07-28 `requestState`.
    pub(crate) request_state: [u8; 32],
    /// Names the store's records (an HMAC key): stable across Fernet key rotation.
    pub(crate) storage_names: [u8; 32],
}

impl DerivedKeys {
    pub(crate) fn derive(signing_key: &SecretString) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, signing_key.secret().as_bytes());
        let access: [u8; 32] = expand(&hkdf, "access-token");
        Self {
            access_encoding: jsonwebtoken::EncodingKey::from_secret(&access)
                .expect("HMAC accepts a 32-byte key"),
            access_decoding: jsonwebtoken::DecodingKey::from_secret(&access)
                .expect("HMAC accepts a 32-byte key"),
            consent_cookie: cookie::Key::from(&expand::<64>(&hkdf, "consent-cookie")),
            consent_csrf: expand(&hkdf, "consent-csrf"),
            request_state: expand(&hkdf, "request-state"),
            storage_names: expand(&hkdf, "storage-names"),
        }
    }
}

/// The key for `purpose`. The label is versioned so a change of derivation can never collide with
/// keys derived before it (v1 was HMAC-SHA256 used as a KDF).
fn expand<const N: usize>(hkdf: &Hkdf<Sha256>, purpose: &str) -> [u8; N] {
    let mut key = [0u8; N];
    hkdf.expand(format!("toolgate/{purpose}/v2").as_bytes(), &mut key)
        .expect("HKDF-SHA256 gives up to 8160 bytes");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> DerivedKeys {
        DerivedKeys::derive(&SecretString::new(secret))
    }

    #[test]
    fn keys_differ_by_purpose_and_by_signing_key_and_repeat_across_replicas() {
        let a = keys("a-signing-key-of-forty-characters-at-least");
        let b = keys("another-signing-key-of-forty-characters!!");
        let purposes = [a.consent_csrf, a.request_state, a.storage_names];
        for (i, x) in purposes.iter().enumerate() {
            for y in &purposes[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_ne!(a.request_state, b.request_state);
        let replica = keys("a-signing-key-of-forty-characters-at-least");
        assert_eq!(a.request_state, replica.request_state);
        assert_eq!(a.storage_names, replica.storage_names);
    }

    #[test]
    fn the_derivation_is_rfc_5869_hkdf_sha256() {
        // Pinned so a change of derivation is a deliberate one: it signs every user out and
        // renames every stored record (see the CHANGELOG).
        let expected: [u8; 32] = {
            let mut okm = [0u8; 32];
            Hkdf::<Sha256>::new(None, b"k")
                .expand(b"toolgate/request-state/v2", &mut okm)
                .unwrap();
            okm
        };
        assert_eq!(keys("k").request_state, expected);
    }
}
