use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `len` random bytes from the thread CSPRNG, base64url without padding.
pub(crate) fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    b64url(&bytes)
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Compares digests, so neither where the inputs differ nor their lengths show in the time taken.
pub(crate) fn secret_eq(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

/// Auth0 renders `updated_at` as RFC 3339 with milliseconds, e.g. `2024-05-01T12:34:56.789Z`.
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    const AUTH0: &[BorrowedFormatItem<'_>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from(t)
        .format(AUTH0)
        .expect("a four-digit year formats")
}

/// Whether the space-separated `list` holds `wanted`.
pub(crate) fn has_scope(list: &str, wanted: &str) -> bool {
    list.split_whitespace().any(|s| s == wanted)
}

/// The words of a space-separated list, each once, in their first order.
pub(crate) fn unique_words(list: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in list.split_whitespace() {
        if !out.iter().any(|o| o == word) {
            out.push(word.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_123);
        assert_eq!(rfc3339_millis(t), "2024-02-29T12:34:56.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_millis(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn secret_eq_compares_content() {
        assert!(secret_eq("abc", "abc"));
        assert!(!secret_eq("abc", "abd"));
        assert!(!secret_eq("abc", "abcd"));
    }

    #[test]
    fn lists_are_read_word_by_word() {
        assert!(has_scope("openid  profile", "profile"));
        assert!(!has_scope("openid profile", "prof"));
        assert_eq!(unique_words(" a b  a c b "), ["a", "b", "c"]);
        assert!(unique_words("   ").is_empty());
    }

    #[test]
    fn random_tokens_are_base64url_of_their_length() {
        let token = random_token(32);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_ne!(token, random_token(32));
    }
}
