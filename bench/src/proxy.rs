//! What the proxy-token row needs: a throw-away Redis, the keys toolgate's authorization server runs
//! with, and a token it issued, got the way an MCP client gets one (register, authorize with PKCE,
//! approve the consent page, the identity provider signs alice in, exchange the code).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where the authorization server sends its codes; never called, only read from a redirect.
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const SCOPE: &str = "openid profile email tool:get_user_info";

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// `JWT_SIGNING_KEY` (at least 32 characters) and `STORAGE_ENCRYPTION_KEY` (a Fernet key: 32 bytes,
/// URL-safe base64 with padding), fresh for each run.
pub fn server_keys() -> (String, String) {
    (
        URL_SAFE_NO_PAD.encode(random_bytes::<48>()),
        URL_SAFE.encode(random_bytes::<32>()),
    )
}

/// A `redis-server` with no persistence on a free loopback port; killed when dropped.
pub struct Redis {
    _child: tokio::process::Child,
    pub port: u16,
}

pub async fn start_redis(port: u16, log: &Path) -> Result<Redis, String> {
    let log_file =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut child = tokio::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start redis-server ({e}); bench/install.sh installs it"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server exited ({status}); see {}",
                log.display()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("redis-server did not listen on {addr} within 15 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Redis {
        _child: child,
        port,
    })
}

fn location(response: &reqwest::Response) -> Result<String, String> {
    response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("a {} without a Location", response.status()))
}

/// The value of the hidden form field `name` on the consent page.
fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Signs alice in through toolgate's authorization server at `base` (the identity provider behind
/// it approves at once) and returns the access token toolgate issued.
pub async fn sign_in(base: &str) -> Result<String, String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let fail = |step: &str, e: &dyn std::fmt::Display| format!("proxy sign-in, {step}: {e}");

    let registration: Value = http
        .post(format!("{base}/register"))
        .json(&json!({
            "redirect_uris": [REDIRECT_URI],
            "client_name": "toolgate-bench",
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .send()
        .await
        .map_err(|e| fail("register", &e))?
        .json()
        .await
        .map_err(|e| fail("register", &e))?;
    let client_id = registration["client_id"]
        .as_str()
        .ok_or_else(|| fail("register", &registration))?;
    let client_secret = registration["client_secret"].as_str().unwrap_or("");

    let verifier = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize =
        url::Url::parse(&format!("{base}/authorize")).map_err(|e| fail("authorize", &e))?;
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "bench"),
        ("scope", SCOPE),
    ]);
    let consent = http
        .get(authorize)
        .send()
        .await
        .map_err(|e| fail("authorize", &e))?;
    let cookie = consent
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| {
            fail(
                "authorize",
                &format!("{} with no consent cookie", consent.status()),
            )
        })?;
    let html = consent.text().await.map_err(|e| fail("authorize", &e))?;
    let (Some(transaction), Some(csrf)) = (
        form_value(&html, "transaction"),
        form_value(&html, "csrf_token"),
    ) else {
        return Err(fail("authorize", &"the consent page has no form"));
    };

    let approval = http
        .post(format!("{base}/authorize/consent"))
        .header("cookie", cookie)
        .form(&[
            ("transaction", transaction.as_str()),
            ("csrf_token", csrf.as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .map_err(|e| fail("consent", &e))?;
    // To the identity provider, which approves at once, back to our callback, then to the client.
    let mut next = location(&approval).map_err(|e| fail("consent", &e))?;
    for _ in 0..5 {
        if next.starts_with(REDIRECT_URI) {
            break;
        }
        let response = http
            .get(&next)
            .send()
            .await
            .map_err(|e| fail("redirects", &e))?;
        next = location(&response).map_err(|e| fail("redirects", &e))?;
    }
    let redirect = url::Url::parse(&next).map_err(|e| fail("redirects", &e))?;
    let code = redirect
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .ok_or_else(|| fail("redirects", &format!("no code in {next}")))?;

    let tokens: Value = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ])
        .send()
        .await
        .map_err(|e| fail("token", &e))?
        .json()
        .await
        .map_err(|e| fail("token", &e))?;
    tokens["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| fail("token", &"no access_token in the reply"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_form_fields_are_read_from_the_page() {
        let html = r#"<form><input type="hidden" name="transaction" value="t-1"><input type="hidden" name="csrf_token" value="c-2"></form>"#;
        assert_eq!(form_value(html, "transaction").as_deref(), Some("t-1"));
        assert_eq!(form_value(html, "csrf_token").as_deref(), Some("c-2"));
        assert_eq!(form_value(html, "decision"), None);
    }

    #[test]
    fn the_storage_key_is_a_fernet_key_and_the_signing_key_long_enough() {
        let (signing, storage) = server_keys();
        assert!(signing.len() >= 32);
        assert_eq!(URL_SAFE.decode(storage).unwrap().len(), 32);
    }
}
