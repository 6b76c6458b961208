//! RFC 7636, the S256 method only (as Auth0 advertises). The hash is `oauth2`'s, the crate the
//! OpenID client is built on; what a well-formed value is, and when a verifier is refused, stays here.

use oauth2::{PkceCodeChallenge, PkceCodeVerifier};

use crate::util::secret_eq;

/// `43*128unreserved`, for challenges and verifiers alike.
pub(crate) fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` is well formed and its S256 hash is `challenge`.
pub(crate) fn verifies(verifier: &str, challenge: &str) -> bool {
    well_formed(verifier) && secret_eq(s256(verifier).as_str(), challenge)
}

/// Only for a verifier of 43 to 128 characters: `oauth2` asserts that length.
fn s256(verifier: &str) -> String {
    let verifier = PkceCodeVerifier::new(verifier.to_owned());
    PkceCodeChallenge::from_code_verifier_sha256(&verifier)
        .as_str()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636, appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn s256_matches_rfc7636_example() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        assert!(verifies(VERIFIER, CHALLENGE));
    }

    #[test]
    fn a_different_verifier_or_challenge_fails() {
        let other = format!("{}A", &VERIFIER[..VERIFIER.len() - 1]);
        assert!(!verifies(&other, CHALLENGE));
        assert!(!verifies(VERIFIER, &CHALLENGE.to_lowercase()));
        // `plain` is not offered: the verifier itself is not its challenge.
        assert!(!verifies(VERIFIER, VERIFIER));
    }

    #[test]
    fn values_are_43_to_128_unreserved_characters() {
        assert!(well_formed(&"a".repeat(43)));
        assert!(well_formed(&"Z9-._~".repeat(22)[..128]));
        assert!(!well_formed(&"a".repeat(42)));
        assert!(!well_formed(&"a".repeat(129)));
        for bad in ['+', '/', '=', ' ', 'é'] {
            let value = format!("{}{bad}", "a".repeat(43));
            assert!(!well_formed(&value), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_malformed_verifier_fails_even_when_it_hashes_right() {
        let plus = format!("{}+", "a".repeat(42));
        assert!(!verifies(&plus, &s256(&plus)));
        assert!(
            !verifies("abc", CHALLENGE),
            "a short verifier is refused before hashing"
        );
    }
}
