//! The Auth0 resource server over real HTTP, against the dev-idp (a local Auth0 stand-in that the
//! real `Auth0Provider` discovers and fetches keys from). Each attack or mistake is its own case.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use toolgate::{AccessToken, Config, Server, ToolError, UserInfo, mcp_tool};
use toolgate_dev_idp::{DevIdp, DevIdpConfig};
use toolgate_tests::{TestServer, assert_invalid_token, mcp_post, tools_call_body};

/// Returns the caller's claims.
#[mcp_tool]
async fn claims(token: AccessToken) -> Value {
    serde_json::to_value(token.claims()).unwrap()
}

#[mcp_tool(description = "Needs tool:x", permissions = ["tool:x"])]
async fn needs_x() -> String {
    "x".into()
}

#[mcp_tool(description = "Needs tool:a and tool:b", permissions = ["tool:a", "tool:b"])]
async fn needs_both() -> String {
    "both".into()
}

#[mcp_tool(description = "The caller's profile", permissions = ["tool:get_user_info"])]
async fn profile(token: AccessToken) -> Result<UserInfo, ToolError> {
    Ok(token.user_info().await?)
}

struct Setup {
    idp: DevIdp,
    server: TestServer,
    http: reqwest::Client,
}

fn auth_vars(idp: &DevIdp, base: &url::Url) -> Vec<(String, String)> {
    toolgate_tests::auth0_vars(idp, base)
}

/// Stateless JSON mode, so single raw POSTs can call tools; the session mode has its own case.
async fn setup_with(list_all: bool) -> Setup {
    setup_mode(list_all, true).await
}

async fn setup_mode(list_all: bool, stateless: bool) -> Setup {
    // Auth0 as in production: HTTPS, `AUTH0_DOMAIN` a bare host, the CA trusted via SSL_CERT_FILE.
    let idp = toolgate_tests::start_idp(DevIdpConfig::default()).await;
    let server = TestServer::start(|base| {
        Server::builder()
            .config(Config::from_vars(auth_vars(&idp, &base)).unwrap())
            .list_all_tools(list_all)
            .stateless(stateless)
            .tool::<claims>()
            .tool::<needs_x>()
            .tool::<needs_both>()
            .tool::<profile>()
    })
    .await;
    Setup {
        idp,
        server,
        http: toolgate_tests::tls::http_client(),
    }
}

async fn setup() -> Setup {
    setup_with(false).await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Setup {
    async fn call(&self, token: Option<&str>, tool: &str) -> reqwest::Response {
        let mut request = mcp_post(
            &self.http,
            &self.server.mcp_url(),
            tools_call_body(tool, json!({})),
        );
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// A token signed by the dev-idp from its standard claims with one change.
    fn tweaked(&self, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut claims = self.idp.user_token_claims("auth0|alice", &["tool:x"]);
        change(claims.as_object_mut().unwrap());
        self.idp.sign(&claims)
    }

    async fn assert_invalid(&self, token: &str, case: &str) {
        assert_invalid_token(&self.call(Some(token), "claims").await, case);
    }

    /// Each case changes one claim of a good token; every result must be refused.
    async fn assert_each_invalid(&self, cases: Vec<(&str, ClaimChange)>) {
        for (case, change) in cases {
            let token = self.tweaked(change);
            self.assert_invalid(&token, case).await;
        }
    }
}

type ClaimChange = Box<dyn FnOnce(&mut serde_json::Map<String, Value>)>;

fn set(claim: &'static str, value: Value) -> ClaimChange {
    Box::new(move |claims| {
        claims.insert(claim.into(), value);
    })
}

fn remove(claim: &'static str) -> ClaimChange {
    Box::new(move |claims| {
        claims.remove(claim);
    })
}

fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn foreign_key() -> (EncodingKey, rsa::RsaPublicKey) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let der = private.to_pkcs1_der().unwrap();
    (
        EncodingKey::from_rsa_der(der.as_bytes()),
        private.to_public_key(),
    )
}

fn sign_with(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn a_good_token_reaches_the_tool_with_its_claims() {
    for stateless in [false, true] {
        good_token_case(setup_mode(false, stateless).await).await;
    }
}

async fn good_token_case(s: Setup) {
    let token = s.idp.user_token("auth0|alice", &["tool:x"]);
    let client = s.server.client(Some(&token)).await.unwrap();
    let result = client
        .call_tool(CallToolRequestParams::new("claims"))
        .await
        .unwrap();
    let claims = result
        .structured_content
        .expect("claims come back as structured content");
    assert_eq!(claims["sub"], "auth0|alice");
    assert_eq!(claims["iss"], s.idp.issuer());
    assert_eq!(claims["permissions"], json!(["tool:x"]));
    assert!(
        claims["aud"]
            .as_array()
            .unwrap()
            .contains(&json!(s.idp.audience()))
    );
    let result = client
        .call_tool(CallToolRequestParams::new("needs_x"))
        .await
        .unwrap();
    assert_eq!(result.content[0].as_text().unwrap().text, "x");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn no_token_gets_a_401_challenge_with_metadata_and_scope() {
    let s = setup().await;
    let response = s.call(None, "claims").await;
    assert_eq!(response.status(), 401);
    let challenge = www_authenticate(&response);
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        !challenge.contains("error="),
        "no error code when no token was sent: {challenge}"
    );
    let metadata = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        s.server.base_url()
    );
    assert!(challenge.contains(&metadata), "{challenge}");
    assert!(
        challenge
            .contains("scope=\"openid profile email tool:a tool:b tool:get_user_info tool:x\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn malformed_and_unsigned_tokens_are_refused() {
    let s = setup().await;
    s.assert_invalid("not-a-jwt", "malformed").await;
    s.assert_invalid("a.b.c", "three garbage segments").await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        s.idp
            .user_token_claims("auth0|alice", &["tool:x"])
            .to_string(),
    );
    s.assert_invalid(&format!("{header}.{claims}."), "alg none")
        .await;
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_public_key_is_refused() {
    let s = setup().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(s.idp.kid());
    let claims = s.idp.user_token_claims("auth0|alice", &["tool:x"]);
    for secret in [
        s.idp.public_key_pem().into_bytes(),
        s.idp.public_key_pkcs1_der(),
    ] {
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(&secret).unwrap(),
        )
        .unwrap();
        s.assert_invalid(&token, "HS256 with the public key").await;
    }
}

#[tokio::test]
async fn a_foreign_key_is_refused_and_an_unknown_kid_refetches_once() {
    let s = setup().await;
    let (key, _) = foreign_key();
    let claims = s.idp.user_token_claims("auth0|alice", &["tool:x"]);
    s.assert_invalid(
        &sign_with(&key, &s.idp.kid(), &claims),
        "foreign key, known kid",
    )
    .await;

    let fetches = s.idp.jwks_requests();
    s.assert_invalid(&sign_with(&key, "unknown-kid-1", &claims), "unknown kid")
        .await;
    assert_eq!(
        s.idp.jwks_requests(),
        fetches + 1,
        "an unknown kid refetches the JWKS once"
    );
    s.assert_invalid(
        &sign_with(&key, "unknown-kid-2", &claims),
        "another unknown kid",
    )
    .await;
    assert_eq!(
        s.idp.jwks_requests(),
        fetches + 1,
        "no second fetch within the cooldown"
    );
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_one_refetch() {
    let s = setup().await;
    assert_eq!(
        s.call(Some(&s.idp.user_token("auth0|alice", &[])), "claims")
            .await
            .status(),
        200
    );
    s.idp.rotate_key();
    let fetches = s.idp.jwks_requests();
    assert_eq!(
        s.call(Some(&s.idp.user_token("auth0|bob", &[])), "claims")
            .await
            .status(),
        200
    );
    assert_eq!(s.idp.jwks_requests(), fetches + 1);
}

#[tokio::test]
async fn time_claims_are_enforced_with_bounded_leeway() {
    let s = setup().await;
    s.assert_each_invalid(vec![
        ("expired past leeway", set("exp", json!(now() - 120))),
        ("nbf ahead", set("nbf", json!(now() + 300))),
        ("missing exp", remove("exp")),
    ])
    .await;
    let within_leeway = s.tweaked(|c| {
        c.insert("exp".into(), json!(now() - 5));
    });
    assert_eq!(
        s.call(Some(&within_leeway), "claims").await.status(),
        200,
        "5 s of skew is tolerated"
    );
}

#[tokio::test]
async fn issuer_and_audience_must_match_exactly() {
    let s = setup().await;
    s.assert_each_invalid(vec![
        ("wrong iss", set("iss", json!("https://evil.example.com/"))),
        (
            "iss without the trailing slash",
            set("iss", json!(s.idp.url())),
        ),
        (
            "wrong aud",
            set("aud", json!("https://other-api.example.com")),
        ),
        ("missing aud", remove("aud")),
        ("missing sub", remove("sub")),
    ])
    .await;
}

#[tokio::test]
async fn the_token_comes_from_the_authorization_header_only() {
    let s = setup().await;
    let token = s.idp.user_token("auth0|alice", &["tool:x"]);
    let url = format!("{}?access_token={token}", s.server.mcp_url());
    let response = mcp_post(&s.http, &url, tools_call_body("claims", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "a query-string token is ignored");

    let response = mcp_post(
        &s.http,
        &s.server.mcp_url(),
        tools_call_body("claims", json!({})),
    )
    .header("authorization", format!("Bearer {token}"))
    .header("authorization", format!("Bearer {token}"))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 400, "two Authorization headers");

    let huge = format!("Bearer {}", "a".repeat(70_000));
    let response = mcp_post(
        &s.http,
        &s.server.mcp_url(),
        tools_call_body("claims", json!({})),
    )
    .header("authorization", huge)
    .send()
    .await
    .unwrap();
    assert!(
        response.status().is_client_error(),
        "an oversized header: {}",
        response.status()
    );
    assert_eq!(
        s.call(Some(&token), "claims").await.status(),
        200,
        "the server is still up"
    );
}

#[tokio::test]
async fn a_missing_permission_is_a_403_naming_every_needed_permission() {
    let s = setup().await;
    let cases: [(&str, &[&str], Option<&str>); 4] = [
        ("missing", &["tool:a"], None),
        ("case changed", &["TOOL:A", "tool:b"], None),
        ("prefix", &["tool:a", "tool:bb"], None),
        ("only in scope", &["tool:a"], Some("openid tool:b")),
    ];
    for (case, permissions, scope) in cases {
        let mut claims = s.idp.user_token_claims("auth0|alice", permissions);
        if let Some(scope) = scope {
            claims["scope"] = json!(scope);
        }
        let response = s.call(Some(&s.idp.sign(&claims)), "needs_both").await;
        assert_eq!(response.status(), 403, "{case}");
        let challenge = www_authenticate(&response);
        assert!(
            challenge.contains("error=\"insufficient_scope\""),
            "{case}: {challenge}"
        );
        assert!(
            challenge.contains("scope=\"tool:a tool:b\""),
            "{case}: {challenge}"
        );
        assert!(
            challenge.contains("resource_metadata=\""),
            "{case}: {challenge}"
        );
    }
    let prefix = s.idp.user_token("auth0|alice", &["tool:xy"]);
    assert_eq!(
        s.call(Some(&prefix), "needs_x").await.status(),
        403,
        "tool:xy does not grant tool:x"
    );
    let both = s.idp.user_token("auth0|alice", &["tool:a", "tool:b"]);
    assert_eq!(s.call(Some(&both), "needs_both").await.status(), 200);
}

#[tokio::test]
async fn tools_list_shows_only_callable_tools_unless_asked_for_all() {
    let s = setup().await;
    let client = s
        .server
        .client(Some(&s.idp.user_token("auth0|alice", &["tool:x"])))
        .await
        .unwrap();
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    assert_eq!(names, ["claims", "needs_x"]);
    client.cancel().await.unwrap();

    let s = setup_with(true).await;
    let client = s
        .server
        .client(Some(&s.idp.user_token("auth0|alice", &["tool:x"])))
        .await
        .unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 4);
    let both = tools.iter().find(|t| t.name == "needs_both").unwrap();
    assert_eq!(
        both.meta.as_ref().unwrap().0["toolgate/permissions"],
        json!(["tool:a", "tool:b"])
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn protected_resource_metadata_is_served_in_both_forms() {
    let s = setup().await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let metadata: Value = s
            .http
            .get(format!("{}{path}", s.server.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["resource"], s.server.mcp_url(), "{path}");
        assert_eq!(
            metadata["authorization_servers"],
            json!([s.idp.issuer()]),
            "{path}"
        );
        assert_eq!(
            metadata["bearer_methods_supported"],
            json!(["header"]),
            "{path}"
        );
        assert_eq!(
            metadata["scopes_supported"],
            json!([
                "openid",
                "profile",
                "email",
                "tool:a",
                "tool:b",
                "tool:get_user_info",
                "tool:x"
            ]),
            "{path}"
        );
    }
}

async fn profile_call(s: &Setup, token: &str) -> Value {
    s.call(Some(token), "profile")
        .await
        .json::<Value>()
        .await
        .unwrap()
}

#[tokio::test]
async fn user_info_returns_the_profile_and_reports_upstream_failures_distinctly() {
    let s = setup().await;
    let token = s.idp.user_token("auth0|alice", &["tool:get_user_info"]);
    let reply = profile_call(&s, &token).await;
    assert_eq!(
        reply["result"]["structuredContent"]["email"], "alice@example.com",
        "{reply}"
    );
    assert_eq!(
        reply["result"]["structuredContent"]["sub"], "auth0|alice",
        "{reply}"
    );

    for (status, kind) in [
        (401, "userinfo_unauthorized"),
        (429, "userinfo_rate_limited"),
        (503, "userinfo_unavailable"),
    ] {
        s.idp.set_userinfo_failure(Some(status));
        // A fresh token, so the cached profile of the first one does not answer.
        let token = s.tweaked(|c| {
            c.insert("permissions".into(), json!(["tool:get_user_info"]));
            c.insert("jti".into(), json!(format!("case-{status}")));
        });
        let reply = profile_call(&s, &token).await;
        assert_eq!(reply["result"]["isError"], true, "{status}: {reply}");
        assert_eq!(
            reply["result"]["_meta"]["toolgate/error"], kind,
            "{status}: {reply}"
        );
    }
}

#[tokio::test]
async fn concurrent_user_info_calls_for_one_token_make_one_request() {
    let s = setup().await;
    s.idp.set_userinfo_delay(Duration::from_millis(300));
    let token = s.idp.user_token("auth0|bob", &["tool:get_user_info"]);
    let before = s.idp.userinfo_requests();
    let calls = (0..10).map(|_| profile_call(&s, &token));
    for reply in futures::future::join_all(calls).await {
        assert_eq!(
            reply["result"]["structuredContent"]["sub"], "auth0|bob",
            "{reply}"
        );
    }
    assert_eq!(s.idp.userinfo_requests(), before + 1);
}

#[tokio::test]
async fn tokens_still_verify_when_the_jwks_endpoint_goes_down() {
    let s = setup().await;
    assert_eq!(
        s.call(Some(&s.idp.user_token("auth0|alice", &[])), "claims")
            .await
            .status(),
        200
    );
    s.idp.set_jwks_available(false);
    let fresh = s.idp.user_token("auth0|bob", &["tool:x"]);
    assert_eq!(s.call(Some(&fresh), "needs_x").await.status(), 200);
}

#[tokio::test]
async fn an_unreachable_identity_provider_fails_closed_with_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let idp = toolgate_tests::start_idp(DevIdpConfig::default()).await;
    let token = idp.user_token("auth0|alice", &["tool:x"]);
    let server = TestServer::start(|base| {
        let mut vars = auth_vars(&idp, &base);
        vars.retain(|(k, _)| k != "AUTH0_DOMAIN");
        vars.push(("AUTH0_DOMAIN".into(), format!("http://127.0.0.1:{port}")));
        Server::builder()
            .config(Config::from_vars(vars).unwrap())
            .tool::<needs_x>()
    })
    .await;
    let response = mcp_post(
        &toolgate_tests::tls::http_client(),
        &server.mcp_url(),
        tools_call_body("needs_x", json!({})),
    )
    .bearer_auth(token)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

/// The example's dev mode points the same Auth0 code at a plain-http loopback stand-in; the other
/// cases here run the production form (HTTPS, a bare-host domain).
#[tokio::test]
async fn a_plain_http_loopback_identity_provider_is_the_dev_mode_shortcut() {
    let idp = toolgate_tests::start_plain_http_idp(DevIdpConfig::default()).await;
    assert!(idp.url().starts_with("http://127.0.0.1:"));
    let server = TestServer::start(|base| {
        Server::builder()
            .config(Config::from_vars(auth_vars(&idp, &base)).unwrap())
            .stateless(true)
            .tool::<claims>()
    })
    .await;
    let response = mcp_post(
        &toolgate_tests::tls::http_client(),
        &server.mcp_url(),
        tools_call_body("claims", json!({})),
    )
    .bearer_auth(idp.user_token("auth0|alice", &[]))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn debug_output_never_shows_a_token() {
    let token = "eyJhbGciOiJSUzI1NiJ9.secret-payload.secret-signature";
    let secret = toolgate::SecretString::new(token);
    assert!(!format!("{secret:?}").contains("secret-payload"));
}

async fn whoami_handler(token: AccessToken) -> String {
    token.claims().sub.clone()
}

#[tokio::test]
async fn access_token_is_an_axum_extractor_behind_protect() {
    let idp = toolgate_tests::start_idp(DevIdpConfig::default()).await;
    let server = TestServer::start_with_routes(
        |base| {
            Server::builder()
                .config(Config::from_vars(auth_vars(&idp, &base)).unwrap())
                .tool::<claims>()
        },
        |server| {
            server.protect(axum::Router::new().route("/me", axum::routing::get(whoami_handler)))
        },
    )
    .await;
    let http = toolgate_tests::tls::http_client();
    let url = format!("{}/me", server.base_url());
    let response = http
        .get(&url)
        .bearer_auth(idp.user_token("auth0|bob", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "auth0|bob");
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(www_authenticate(&response).contains("resource_metadata="));
}

/// `initialize` then `notifications/initialized` with `token`: the session id it opened.
async fn open_session(s: &Setup, token: &str) -> String {
    let body = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": { "name": "session-owner-test", "version": "1" }
        }
    });
    let response = mcp_post(&s.http, &s.server.mcp_url(), body.to_string())
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let response = mcp_post(
        &s.http,
        &s.server.mcp_url(),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string(),
    )
    .bearer_auth(token)
    .header("mcp-session-id", &session)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 202);
    session
}

async fn call_in_session(s: &Setup, token: &str, session: &str) -> reqwest::Response {
    mcp_post(
        &s.http,
        &s.server.mcp_url(),
        tools_call_body("claims", json!({})),
    )
    .bearer_auth(token)
    .header("mcp-session-id", session)
    .send()
    .await
    .unwrap()
}

/// A session id is not a capability: another user holding alice's session id can neither call in
/// it, read its event stream nor end it; the session looks to them as an unknown one does.
#[tokio::test]
async fn a_session_belongs_to_the_user_who_opened_it() {
    let s = setup_mode(false, false).await;
    let alice = s.idp.user_token("auth0|alice", &[]);
    let bob = s.idp.user_token("auth0|bob", &[]);
    let session = open_session(&s, &alice).await;
    let response = call_in_session(&s, &alice, &session).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("auth0|alice"));

    let unknown = call_in_session(&s, &bob, "00000000-0000-0000-0000-000000000000").await;
    assert_eq!(unknown.status(), 404);
    let unknown_body = unknown.text().await.unwrap();

    let stolen = call_in_session(&s, &bob, &session).await;
    assert_eq!(stolen.status(), 404, "bob calls in alice's session");
    assert_eq!(
        stolen.text().await.unwrap(),
        unknown_body,
        "no difference leaks"
    );
    let stream = s
        .http
        .get(s.server.mcp_url())
        .bearer_auth(&bob)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 404, "bob opens alice's event stream");
    let end = s
        .http
        .delete(s.server.mcp_url())
        .bearer_auth(&bob)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 404, "bob ends alice's session");

    // Alice's session is untouched, and she can end it herself.
    assert_eq!(call_in_session(&s, &alice, &session).await.status(), 200);
    let end = s
        .http
        .delete(s.server.mcp_url())
        .bearer_auth(&alice)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(end.status().is_success(), "{}", end.status());
    assert_eq!(call_in_session(&s, &alice, &session).await.status(), 404);
}
