//! The dev IdP over real HTTP, as OAuth/OIDC client code sees it.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use toolgate_dev_idp::{AutoApprove, DevIdp, DevIdpConfig, DevIdpError, DevUser};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const VERIFIER: &str = "a-long-enough-pkce-verifier-0123456789-abcdefghijklmnop";

async fn start(config: DevIdpConfig) -> DevIdp {
    DevIdp::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("dev IdP starts")
}

fn auto_config(permissions: &[&str]) -> DevIdpConfig {
    DevIdpConfig {
        permissions: vec!["tools:read".into(), "tools:write".into()],
        auto_approve: Some(AutoApprove {
            user: "auth0|alice".into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        }),
        ..DevIdpConfig::default()
    }
}

fn http() -> reqwest::Client {
    // The workspace builds reqwest without a crypto provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_serves_a_certificate_from_its_ca_at_localhost() {
    let ca = toolgate_dev_idp::tls::TestCa::generate("dev-idp test CA").unwrap();
    let idp = start(DevIdpConfig {
        tls: Some(ca.localhost().unwrap()),
        ..DevIdpConfig::default()
    })
    .await;
    let u = idp.url();
    assert!(u.starts_with("https://localhost:"), "{u}");
    assert_eq!(idp.domain(), u.trim_start_matches("https://"));
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.certificate_pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let discovery = format!("{u}/.well-known/openid-configuration");
    let resp = trusting.get(&discovery).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["issuer"], format!("{u}/"));
    assert_eq!(doc["jwks_uri"], format!("{u}/.well-known/jwks.json"));
    // A client that does not trust the CA gets no answer.
    let error = http().get(&discovery).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn location(resp: &reqwest::Response) -> (Url, HashMap<String, String>) {
    assert_eq!(resp.status(), StatusCode::FOUND, "expected a redirect");
    let loc = resp.headers()["location"].to_str().unwrap();
    let url = Url::parse(loc).unwrap();
    let params = url.query_pairs().into_owned().collect();
    (url, params)
}

/// GET /authorize with the usual parameters plus `extra` (which may override them).
async fn authorize(idp: &DevIdp, extra: &[(&str, &str)]) -> reqwest::Response {
    let challenge = challenge(VERIFIER);
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", idp.client_id()),
        ("redirect_uri", REDIRECT),
        ("state", "st-123"),
        ("scope", "openid profile email offline_access"),
        ("audience", idp.audience()),
        ("nonce", "n-456"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    for &(k, v) in extra {
        params.retain(|&(pk, _)| pk != k);
        params.push((k, v));
    }
    let mut url = Url::parse(&format!("{}/authorize", idp.url())).unwrap();
    url.query_pairs_mut()
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()));
    http().get(url).send().await.unwrap()
}

async fn code(idp: &DevIdp) -> String {
    let (_, params) = location(&authorize(idp, &[]).await);
    params["code"].clone()
}

async fn token(idp: &DevIdp, form: &[(&str, &str)]) -> reqwest::Response {
    let mut form = form.to_vec();
    form.push(("client_id", idp.client_id()));
    form.push(("client_secret", idp.client_secret()));
    http()
        .post(format!("{}/oauth/token", idp.url()))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn exchange(idp: &DevIdp, code: &str, verifier: &str) -> reqwest::Response {
    token(
        idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh(idp: &DevIdp, refresh_token: &str) -> reqwest::Response {
    token(
        idp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn error_of(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert!(body["error_description"].is_string(), "{body}");
    (status, body["error"].as_str().unwrap().to_string())
}

async fn password_tokens(idp: &DevIdp, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "x"),
    ];
    for &(k, v) in extra {
        form.retain(|&(fk, _)| fk != k);
        form.push((k, v));
    }
    let resp = token(idp, &form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn jwks(idp: &DevIdp) -> Vec<Value> {
    let resp = http()
        .get(format!("{}/.well-known/jwks.json", idp.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["keys"].as_array().unwrap().clone()
}

/// Verifies the way a resource server does: the JWKS key named by the token's kid.
fn verify_with_jwks(keys: &[Value], token: &str, audience: &str, issuer: &str) -> Value {
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid is in JWKS");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[audience]);
    v.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap()
        .claims
}

async fn userinfo(idp: &DevIdp, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}/userinfo", idp.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn discovery_document_has_auth0_shape() {
    let idp = start(DevIdpConfig {
        permissions: vec!["tools:read".into()],
        ..DevIdpConfig::default()
    })
    .await;
    let u = idp.url();
    assert!(u.starts_with("http://127.0.0.1:") && !u.ends_with('/'));
    assert_eq!(idp.issuer(), format!("{u}/"));
    let resp = http()
        .get(format!("{u}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["issuer"], format!("{u}/"));
    assert_eq!(doc["authorization_endpoint"], format!("{u}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{u}/oauth/token"));
    assert_eq!(doc["userinfo_endpoint"], format!("{u}/userinfo"));
    assert_eq!(doc["jwks_uri"], format!("{u}/.well-known/jwks.json"));
    assert_eq!(doc["revocation_endpoint"], format!("{u}/oauth/revoke"));
    assert!(doc["end_session_endpoint"].is_string());
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    let scopes = doc["scopes_supported"].as_array().unwrap();
    for s in ["openid", "profile", "email", "offline_access", "tools:read"] {
        assert!(scopes.contains(&json!(s)), "{s} missing");
    }
    let meta: openidconnect::core::CoreProviderMetadata =
        serde_json::from_value(doc).expect("parses as OIDC metadata");
    assert_eq!(meta.issuer().as_str(), idp.issuer());
    assert_eq!(
        meta.jwks_uri().as_str(),
        format!("{u}/.well-known/jwks.json")
    );
    assert_eq!(idp.discovery_requests(), 1);
}

#[tokio::test]
async fn jwks_serves_the_key_counts_requests_and_can_fail() {
    let idp = start(DevIdpConfig::default()).await;
    let keys = jwks(&idp).await;
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(
        (&k["kty"], &k["use"], &k["alg"]),
        (&json!("RSA"), &json!("sig"), &json!("RS256"))
    );
    assert_eq!(k["kid"], idp.kid());
    assert_eq!(k["e"], "AQAB");
    let n = URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap()).unwrap();
    assert_eq!(n.len(), 256);
    let der = idp.public_key_pkcs1_der();
    assert!(
        der.windows(n.len()).any(|w| w == n.as_slice()),
        "n matches the DER key"
    );
    assert!(
        idp.public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    assert_eq!(idp.jwks_requests(), 1);

    idp.set_jwks_available(false);
    let resp = http()
        .get(format!("{}/.well-known/jwks.json", idp.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    idp.set_jwks_available(true);
    jwks(&idp).await;
    assert_eq!(idp.jwks_requests(), 3);
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let idp = start(auto_config(&["tools:read"])).await;
    let resp = authorize(&idp, &[]).await;
    let (url, params) = location(&resp);
    assert_eq!(
        format!("{}://{}{}", url.scheme(), url.authority(), url.path()),
        REDIRECT
    );
    assert_eq!(params["state"], "st-123");
    let code = &params["code"];
    assert_eq!(URL_SAFE_NO_PAD.decode(code).unwrap().len(), 32);

    // A wrong verifier fails and spends the code.
    let wrong = "another-verifier-that-is-long-enough-0123456789-abcdef";
    assert_eq!(
        error_of(exchange(&idp, code, wrong).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    assert_eq!(
        error_of(exchange(&idp, code, VERIFIER).await).await.1,
        "invalid_grant"
    );

    let code = self::code(&idp).await;
    let resp = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid profile email offline_access");
    assert!(body["refresh_token"].is_string());

    let access = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(
        (header.alg, header.typ.as_deref(), header.kid),
        (Algorithm::RS256, Some("JWT"), Some(idp.kid()))
    );
    let c = verify_with_jwks(&jwks(&idp).await, access, idp.audience(), &idp.issuer());
    assert_eq!(c["sub"], "auth0|alice");
    assert_eq!(
        c["aud"],
        json!([idp.audience(), format!("{}/userinfo", idp.url())])
    );
    assert_eq!(c["azp"], idp.client_id());
    assert_eq!(c["permissions"], json!(["tools:read"]));
    assert_eq!(c["scope"], "openid profile email offline_access");
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        3600
    );

    let id = verify_with_jwks(
        &jwks(&idp).await,
        body["id_token"].as_str().unwrap(),
        idp.client_id(),
        &idp.issuer(),
    );
    assert_eq!(id["sub"], "auth0|alice");
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["nickname"], "alice");
    assert!(id["sid"].is_string() && id["updated_at"].is_string());

    // Replay.
    assert_eq!(
        error_of(exchange(&idp, &code, VERIFIER).await).await.1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn code_exchange_checks_redirect_uri_and_basic_auth_works() {
    let idp = start(auto_config(&[])).await;
    let code = code(&idp).await;
    let resp = token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:7777/other"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(error_of(resp).await.1, "invalid_grant");

    let code = self::code(&idp).await;
    let resp = http()
        .post(format!("{}/oauth/token", idp.url()))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["permissions"],
        json!([])
    );
}

#[tokio::test]
async fn authorize_rejects_bad_requests() {
    let idp = start(auto_config(&[])).await;
    let resp = authorize(&idp, &[("client_id", "someone-else")]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());

    let resp = authorize(&idp, &[("redirect_uri", "javascript:alert(1)")]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let (_, p) = location(&authorize(&idp, &[("code_challenge_method", "plain")]).await);
    assert_eq!(
        (p["error"].as_str(), p["state"].as_str()),
        ("invalid_request", "st-123")
    );
    assert!(!p.contains_key("code"));

    let (_, p) = location(&authorize(&idp, &[("audience", "https://elsewhere")]).await);
    assert_eq!(p["error"], "access_denied");

    let (_, p) = location(&authorize(&idp, &[("response_type", "token")]).await);
    assert_eq!(p["error"], "unsupported_response_type");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let idp = start(DevIdpConfig::default()).await;
    let first = password_tokens(&idp, &[("scope", "openid offline_access")]).await;
    let r1 = first["refresh_token"].as_str().unwrap();

    let resp = refresh(&idp, r1).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let second: Value = resp.json().await.unwrap();
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    assert!(second["id_token"].is_string());
    assert_eq!(
        claims(second["access_token"].as_str().unwrap())["sub"],
        "auth0|alice"
    );

    let reuse = refresh(&idp, r1).await;
    assert_eq!(error_of(reuse).await.1, "invalid_grant");
    // Reuse of a spent token is treated as theft: its successor dies too.
    let after = refresh(&idp, r2).await;
    assert_eq!(error_of(after).await.1, "invalid_grant");
}

#[tokio::test]
async fn revocation_ends_a_refresh_token() {
    let idp = start(DevIdpConfig::default()).await;
    let tokens = password_tokens(&idp, &[("scope", "openid offline_access")]).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let revoke = |t: &str| {
        http()
            .post(format!("{}/oauth/revoke", idp.url()))
            .basic_auth(idp.client_id(), Some(idp.client_secret()))
            .form(&[("token", t.to_string())])
            .send()
    };
    assert_eq!(revoke(rt).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        revoke("never-issued").await.unwrap().status(),
        StatusCode::OK
    );
    let resp = refresh(&idp, rt).await;
    assert_eq!(error_of(resp).await.1, "invalid_grant");
}

#[tokio::test]
async fn client_credentials_tokens() {
    let idp = start(DevIdpConfig {
        permissions: vec!["tools:read".into(), "tools:write".into()],
        ..DevIdpConfig::default()
    })
    .await;
    let aud = idp.audience().to_string();
    let resp = token(
        &idp,
        &[("grant_type", "client_credentials"), ("audience", &aud)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let c = verify_with_jwks(
        &jwks(&idp).await,
        body["access_token"].as_str().unwrap(),
        &aud,
        &idp.issuer(),
    );
    assert_eq!(c["sub"], format!("{}@clients", idp.client_id()));
    assert_eq!(c["aud"], aud);
    assert_eq!(c["gty"], "client-credentials");
    assert_eq!(c["azp"], idp.client_id());
    assert_eq!(c["permissions"], json!(["tools:read", "tools:write"]));

    // The dev-only `permissions` parameter chooses the claim, here in a JSON body.
    let resp = http()
        .post(format!("{}/oauth/token", idp.url()))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": idp.client_id(),
            "client_secret": idp.client_secret(),
            "audience": aud,
            "permissions": "admin:all tools:read",
        }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["permissions"],
        json!(["admin:all", "tools:read"])
    );

    let resp = token(
        &idp,
        &[("grant_type", "client_credentials"), ("permissions", "")],
    )
    .await;
    assert_eq!(
        error_of(resp).await,
        (StatusCode::FORBIDDEN, "access_denied".into())
    );
    let resp = token(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("audience", "https://other"),
        ],
    )
    .await;
    assert_eq!(error_of(resp).await.1, "access_denied");

    let resp = http()
        .post(format!("{}/oauth/token", idp.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", idp.client_id()),
            ("client_secret", "wrong"),
            ("audience", &aud),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains("wrong") && !text.contains(idp.client_secret()),
        "{text}"
    );

    let resp = token(
        &idp,
        &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
    )
    .await;
    assert_eq!(
        error_of(resp).await,
        (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
    );
}

#[tokio::test]
async fn password_grant() {
    let idp = start(DevIdpConfig {
        permissions: vec!["tools:read".into()],
        ..DevIdpConfig::default()
    })
    .await;
    let body = password_tokens(
        &idp,
        &[("username", "bob@example.com"), ("scope", "openid email")],
    )
    .await;
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], "auth0|bob");
    assert_eq!(c["permissions"], json!(["tools:read"]));
    assert_eq!(c["scope"], "openid email");
    assert!(body.get("refresh_token").is_none());
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["email"], "bob@example.com");
    assert!(
        id.get("name").is_none(),
        "profile claims need the profile scope"
    );

    let body = password_tokens(
        &idp,
        &[
            ("username", "auth0|alice"),
            ("scope", "email"),
            ("permissions", "a b"),
        ],
    )
    .await;
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], idp.audience());
    assert_eq!(c["permissions"], json!(["a", "b"]));
    assert!(body.get("id_token").is_none());

    let resp = token(
        &idp,
        &[
            ("grant_type", "password"),
            ("username", "mallory"),
            ("password", "x"),
        ],
    )
    .await;
    assert_eq!(
        error_of(resp).await,
        (StatusCode::FORBIDDEN, "invalid_grant".into())
    );
}

#[tokio::test]
async fn userinfo_returns_the_profile() {
    let idp = start(DevIdpConfig::default()).await;
    let body = password_tokens(&idp, &[]).await;
    let resp = userinfo(&idp, body["access_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let profile: Value = resp.json().await.unwrap();
    assert_eq!(profile["sub"], "auth0|alice");
    assert_eq!(profile["name"], "Alice Example");
    assert_eq!(profile["nickname"], "alice");
    assert_eq!(profile["email"], "alice@example.com");
    assert_eq!(profile["email_verified"], true);
    assert_eq!(profile["picture"], "https://example.com/alice.png");
    let updated = profile["updated_at"].as_str().unwrap();
    assert!(updated.len() == 24 && updated.ends_with('Z'), "{updated}");

    let resp = http()
        .post(format!("{}/userinfo", idp.url()))
        .bearer_auth(idp.user_token("auth0|bob", &["x"]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["email"],
        "bob@example.com"
    );
    assert_eq!(idp.userinfo_requests(), 2);
}

#[tokio::test]
async fn userinfo_rejects_bad_tokens() {
    let idp = start(DevIdpConfig::default()).await;
    let aud = idp.audience().to_string();
    let resp = token(
        &idp,
        &[("grant_type", "client_credentials"), ("audience", &aud)],
    )
    .await;
    let machine: Value = resp.json().await.unwrap();
    let resp = userinfo(&idp, machine["access_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    let mut expired = idp.user_token_claims("auth0|alice", &[]);
    expired["exp"] = json!(expired["iat"].as_u64().unwrap() - 10);
    assert_eq!(
        userinfo(&idp, &idp.sign(&expired)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let mut api_only = idp.user_token_claims("auth0|alice", &[]);
    api_only["aud"] = json!(idp.audience());
    assert_eq!(
        userinfo(&idp, &idp.sign(&api_only)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Algorithm confusion: HS256 keyed with the public key must not pass.
    let forged = jsonwebtoken::encode(
        &Header {
            kid: Some(idp.kid()),
            ..Header::new(Algorithm::HS256)
        },
        &idp.user_token_claims("auth0|alice", &[]),
        &EncodingKey::from_secret(idp.public_key_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        userinfo(&idp, &forged).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let resp = http()
        .get(format!("{}/userinfo", idp.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn userinfo_failure_injection_and_delay() {
    let idp = start(DevIdpConfig::default()).await;
    let token = idp.user_token("auth0|alice", &[]);
    idp.set_userinfo_failure(Some(429));
    let resp = userinfo(&idp, &token).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    idp.set_userinfo_failure(Some(503));
    assert_eq!(
        userinfo(&idp, &token).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    idp.set_userinfo_failure(None);

    idp.set_userinfo_delay(Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert_eq!(userinfo(&idp, &token).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(idp.userinfo_requests(), 3);
}

#[tokio::test]
async fn login_page_escapes_and_decides() {
    let idp = start(DevIdpConfig {
        permissions: vec!["tools:read".into(), "tools:write".into()],
        ..DevIdpConfig::default()
    })
    .await;
    let resp = authorize(&idp, &[("state", "<script>alert(1)</script>")]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = resp.text().await.unwrap();
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for needle in [
        "auth0|alice",
        "auth0|bob",
        "value=\"tools:write\" checked",
        "/authorize/decision",
    ] {
        assert!(page.contains(needle), "{needle} missing from the page");
    }
    let request_id = page
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();

    let decide = |fields: Vec<(&'static str, String)>| {
        http()
            .post(format!("{}/authorize/decision", idp.url()))
            .form(&fields)
            .send()
    };
    let resp = decide(vec![
        ("request_id", request_id.clone()),
        ("user", "auth0|bob".into()),
        ("permission", "tools:read".into()),
        ("extra_permissions", "admin:all  extra:one".into()),
        ("action", "approve".into()),
    ])
    .await
    .unwrap();
    let (_, p) = location(&resp);
    assert_eq!(p["state"], "<script>alert(1)</script>");
    let body: Value = exchange(&idp, &p["code"], VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], "auth0|bob");
    assert_eq!(
        c["permissions"],
        json!(["tools:read", "admin:all", "extra:one"])
    );

    // A request id is good for one decision only.
    let resp = decide(vec![
        ("request_id", request_id),
        ("action", "approve".into()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let page = authorize(&idp, &[]).await.text().await.unwrap();
    let request_id = page
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let resp = decide(vec![("request_id", request_id), ("action", "deny".into())])
        .await
        .unwrap();
    let (_, p) = location(&resp);
    assert_eq!(
        (p["error"].as_str(), p["state"].as_str()),
        ("access_denied", "st-123")
    );

    let (_, p) = location(&authorize(&idp, &[("prompt", "none")]).await);
    assert_eq!(p["error"], "login_required");
}

#[tokio::test]
async fn refuses_non_loopback_addresses() {
    for addr in ["0.0.0.0:0", "192.0.2.1:0", "[::]:0"] {
        let err = DevIdp::start(DevIdpConfig::default(), addr.parse().unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, DevIdpError::NotLoopback(_)), "{addr}: {err}");
    }
    let config = DevIdpConfig {
        auto_approve: Some(AutoApprove {
            user: "nobody".into(),
            permissions: vec![],
        }),
        ..DevIdpConfig::default()
    };
    let err = DevIdp::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, DevIdpError::UnknownUser(_)));
}

#[tokio::test]
async fn rotated_keys_keep_old_tokens_verifiable() {
    let idp = start(DevIdpConfig::default()).await;
    let old_kid = idp.kid();
    let old = idp.user_token("auth0|alice", &["tools:read"]);
    idp.rotate_key();
    assert_ne!(idp.kid(), old_kid);
    let new = idp.user_token("auth0|alice", &["tools:read"]);
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid,
        Some(idp.kid())
    );

    let keys = jwks(&idp).await;
    assert_eq!(keys.len(), 2);
    for t in [&old, &new] {
        let c = verify_with_jwks(&keys, t, idp.audience(), &idp.issuer());
        assert_eq!(c["permissions"], json!(["tools:read"]));
        assert_eq!(userinfo(&idp, t).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let idp = start(DevIdpConfig::default()).await;
    let url = format!("{}/.well-known/jwks.json", idp.url());
    idp.shutdown().await;
    assert!(reqwest::get(&url).await.is_err());

    let idp = start(DevIdpConfig::default()).await;
    let url = format!("{}/.well-known/jwks.json", idp.url());
    drop(idp);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(reqwest::get(&url).await.is_err());
}

#[test]
fn handles_are_shareable_across_tasks() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<DevIdp>();
    assert_send_sync::<DevIdpConfig>();
    assert_send_sync::<DevIdpError>();
}

#[test]
fn config_debug_redacts_the_secret() {
    let shown = format!("{:?}", DevIdpConfig::default());
    assert!(!shown.contains("toolgate-dev-secret"), "{shown}");
    assert_eq!(DevUser::alice().sub, "auth0|alice");
    assert_eq!(DevUser::bob().email, "bob@example.com");
}
