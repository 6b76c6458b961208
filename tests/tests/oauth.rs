//! The authorization server in front of Auth0, over real HTTP, with a real Redis and the dev-idp as
//! Auth0. A scripted client plays the MCP client and the browser (no redirect is followed unless a
//! step says so). Each attack or mistake is its own case.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use toolgate::{AccessToken, Config, EncryptedStore, Server, ToolError, UserInfo, mcp_tool};
use toolgate_dev_idp::{AutoApprove, DevIdp, DevIdpConfig};
use toolgate_tests::flow::{Flow, Pkce, RegisteredClient, location};
use toolgate_tests::redis::RedisServer;
use toolgate_tests::{TestServer, assert_invalid_token, mcp_post, tools_call_body};

/// The caller's claims, as a tool sees them.
#[mcp_tool]
async fn claims(token: AccessToken) -> Value {
    serde_json::to_value(token.claims()).unwrap()
}

/// The raw bearer token the tool was handed (the upstream Auth0 token in proxy mode).
#[mcp_tool]
async fn raw_token(token: AccessToken) -> String {
    token.token().secret().to_owned()
}

#[mcp_tool(description = "The caller's profile", permissions = ["tool:get_user_info"])]
async fn get_user_info(token: AccessToken) -> Result<UserInfo, ToolError> {
    Ok(token.user_info().await?)
}

const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const SCOPE: &str = "openid profile email tool:get_user_info";
const SIGNING_KEY: &str = "test-signing-key-0123456789-abcdefghijklmnop";

struct Setup {
    idp: DevIdp,
    redis: RedisServer,
    server: TestServer,
    flow: Flow,
    http: reqwest::Client,
    encryption_keys: String,
}

fn idp_config(upstream_ttl: Duration) -> DevIdpConfig {
    DevIdpConfig {
        permissions: vec!["tool:get_user_info".into()],
        auto_approve: Some(AutoApprove {
            user: "auth0|alice".into(),
            permissions: vec!["tool:get_user_info".into()],
        }),
        access_token_ttl: upstream_ttl,
        ..DevIdpConfig::default()
    }
}

/// The dev-idp as Auth0 (HTTPS, a bare-host `AUTH0_DOMAIN`), signing alice in at once; its access
/// tokens live `upstream_ttl`.
async fn start_idp(upstream_ttl: Duration) -> DevIdp {
    toolgate_tests::start_idp(idp_config(upstream_ttl)).await
}

fn proxy_vars(
    idp: &DevIdp,
    base: &url::Url,
    redis: &RedisServer,
    encryption_keys: &str,
) -> Vec<(String, String)> {
    let mut vars = toolgate_tests::auth0_vars(idp, base);
    vars.extend(
        [
            ("JWT_SIGNING_KEY", SIGNING_KEY.to_owned()),
            ("STORAGE_ENCRYPTION_KEY", encryption_keys.to_owned()),
            ("REDIS_HOST", "127.0.0.1".to_owned()),
            ("REDIS_PORT", redis.port().to_string()),
            ("TOOLGATE_DEV_MODE", "true".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    vars
}

fn builder(
    idp: &DevIdp,
    redis: &RedisServer,
    encryption_keys: &str,
    registrations_per_minute: u32,
    base: url::Url,
) -> toolgate::ServerBuilder {
    builder_with(
        idp,
        redis,
        encryption_keys,
        registrations_per_minute,
        base,
        |_| {},
    )
}

/// `builder`, with the configuration adjusted by `tweak` first.
fn builder_with(
    idp: &DevIdp,
    redis: &RedisServer,
    encryption_keys: &str,
    registrations_per_minute: u32,
    base: url::Url,
    tweak: impl FnOnce(&mut Config),
) -> toolgate::ServerBuilder {
    let mut config = Config::from_vars(proxy_vars(idp, &base, redis, encryption_keys)).unwrap();
    tweak(&mut config);
    Server::builder()
        .config(config)
        .stateless(true)
        .registrations_per_minute(registrations_per_minute)
        .tool::<claims>()
        .tool::<raw_token>()
        .tool::<get_user_info>()
}

async fn start_server(
    idp: &DevIdp,
    redis: &RedisServer,
    encryption_keys: &str,
    registrations_per_minute: u32,
) -> TestServer {
    TestServer::start(|base| builder(idp, redis, encryption_keys, registrations_per_minute, base))
        .await
}

impl Setup {
    /// Another instance of the same server (same public address, Redis and keys unless given).
    async fn another_instance(&self, encryption_keys: Option<&str>) -> TestServer {
        let keys = encryption_keys.unwrap_or(&self.encryption_keys);
        let public = url::Url::parse(&self.base()).unwrap();
        TestServer::start_behind(public, |base| {
            builder(&self.idp, &self.redis, keys, 20, base)
        })
        .await
    }
}

async fn setup_with(upstream_ttl: Duration) -> Setup {
    let idp = start_idp(upstream_ttl).await;
    let redis = RedisServer::start();
    let encryption_keys = EncryptedStore::generate_key();
    let server = start_server(&idp, &redis, &encryption_keys, 20).await;
    let flow = Flow::new(server.base_url());
    Setup {
        idp,
        redis,
        server,
        flow,
        http: toolgate_tests::tls::http_client(),
        encryption_keys,
    }
}

async fn setup() -> Setup {
    setup_with(Duration::from_secs(3600)).await
}

/// `setup`, with `TOOLGATE_REFRESH_REUSE_INTERVAL=0`.
async fn setup_without_reuse_interval() -> Setup {
    let idp = start_idp(Duration::from_secs(3600)).await;
    let redis = RedisServer::start();
    let encryption_keys = EncryptedStore::generate_key();
    let server = TestServer::start(|base| {
        builder_with(&idp, &redis, &encryption_keys, 20, base, |config| {
            config.refresh_reuse_interval = Duration::ZERO;
        })
    })
    .await;
    let flow = Flow::new(server.base_url());
    Setup {
        idp,
        redis,
        server,
        flow,
        http: toolgate_tests::tls::http_client(),
        encryption_keys,
    }
}

/// Calls a tool on `server` with a bearer token; returns the HTTP answer.
async fn call_on(server: &TestServer, token: &str, tool: &str) -> reqwest::Response {
    mcp_post(
        &toolgate_tests::tls::http_client(),
        &server.mcp_url(),
        tools_call_body(tool, json!({})),
    )
    .bearer_auth(token)
    .send()
    .await
    .unwrap()
}

/// The tool's result (structured content, or the text) from a 200 answer.
async fn tool_result(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "the tool call");
    let reply: Value = response.json().await.unwrap();
    let result = &reply["result"];
    assert_ne!(result["isError"], json!(true), "{reply}");
    if !result["structuredContent"].is_null() {
        return result["structuredContent"].clone();
    }
    json!(result["content"][0]["text"])
}

/// The OAuth `error` code of an answer.
async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap_or_default().to_owned()
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

impl Setup {
    async fn call(&self, token: &str, tool: &str) -> reqwest::Response {
        call_on(&self.server, token, tool).await
    }

    /// A complete sign-in with a confidential client; returns the client and the token answer.
    async fn sign_in(&self) -> (RegisteredClient, Value) {
        self.flow.sign_in(REDIRECT, SCOPE).await
    }

    fn base(&self) -> String {
        self.server.base_url()
    }

    /// The Redis key a record lives under, as the server names it (an HMAC of kind and id).
    async fn server_store_key(&self, kind: &str, id: &str) -> String {
        let base = url::Url::parse(&self.base()).unwrap();
        let server = Server::builder()
            .config(
                Config::from_vars(proxy_vars(
                    &self.idp,
                    &base,
                    &self.redis,
                    &self.encryption_keys,
                ))
                .unwrap(),
            )
            .build()
            .unwrap();
        server
            .store()
            .expect("the authorization server runs")
            .key(kind, id)
    }
}

/// Makes a key expire at once, as its TTL running out would.
fn expire_now(redis: &RedisServer, key: &str) {
    let mut connection = redis.connection();
    let _: i64 = ::redis::cmd("PEXPIRE")
        .arg(key)
        .arg(1)
        .query(&mut connection)
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
}

#[tokio::test]
async fn a_full_sign_in_issues_our_tokens_and_tools_see_auth0s() {
    let s = setup().await;
    let client = s.flow.register(REDIRECT, true).await;
    let pkce = Pkce::new();
    let redirect = s.flow.authorize(&client, &pkce, "xyz", SCOPE).await;
    assert_eq!(redirect.param("state").as_deref(), Some("xyz"));
    assert_eq!(redirect.param("iss"), Some(s.base()), "RFC 9207 iss");
    let code = redirect.param("code").unwrap();

    let response = s.flow.exchange(&client, &code, &pkce.verifier).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let expires_in = tokens["expires_in"].as_i64().unwrap();
    assert!(expires_in > 0 && expires_in <= 3600, "{expires_in}");

    // Our token: our issuer, our resource, a jti; not Auth0's.
    assert_eq!(jwt_part(access, 0)["alg"], "HS256");
    let ours = jwt_part(access, 1);
    assert_eq!(ours["iss"], s.base());
    assert_eq!(ours["aud"], format!("{}/mcp", s.base()));
    assert!(ours["jti"].is_string());
    assert_eq!(ours["sub"], "auth0|alice");

    // The tool sees Auth0's token and claims, as the seed's get_access_token() does.
    let claims = tool_result(s.call(access, "claims").await).await;
    assert_eq!(claims["iss"], s.idp.issuer());
    assert!(
        claims["aud"]
            .as_array()
            .unwrap()
            .contains(&json!(s.idp.audience()))
    );
    assert_eq!(claims["permissions"], json!(["tool:get_user_info"]));
    let upstream = tool_result(s.call(access, "raw_token").await).await;
    let upstream = upstream.as_str().unwrap().to_owned();
    assert_ne!(upstream, access);
    let profile = tool_result(s.call(access, "get_user_info").await).await;
    assert_eq!(profile["sub"], "auth0|alice");
    let email = profile["email"].as_str().unwrap().to_owned();

    // No raw secret anywhere in Redis: not in keys, not in values.
    let secrets = [
        access,
        refresh,
        &code,
        client.client_secret.as_deref().unwrap(),
        &upstream,
        &email,
        s.idp.client_secret(),
        &pkce.verifier,
    ];
    let records = s.redis.keys_and_values();
    assert!(
        records.len() >= 5,
        "the flow stored its records: {}",
        records.len()
    );
    for (key, value) in &records {
        let value = String::from_utf8_lossy(value);
        for secret in secrets {
            assert!(!key.contains(secret), "a secret in the key {key}");
            assert!(!value.contains(secret), "a secret in the value of {key}");
        }
        assert!(s.redis.ttl_of(key) > 0, "{key} has no TTL");
    }
}

#[tokio::test]
async fn metadata_advertises_the_authorization_server() {
    let s = setup().await;
    let metadata: Value = s
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            s.base()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], s.base());
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    for endpoint in ["authorization", "token", "registration", "revocation"] {
        assert!(
            metadata[format!("{endpoint}_endpoint")]
                .as_str()
                .unwrap()
                .starts_with(&s.base()),
            "{endpoint}"
        );
    }
    let resource: Value = s
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            s.base()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resource["authorization_servers"], json!([s.base()]));
    assert_eq!(resource["resource"], format!("{}/mcp", s.base()));
}

/// An `/authorize` answer that must be a 400 page and never a redirect.
async fn assert_error_page(response: reqwest::Response, case: &str) {
    assert_eq!(response.status(), 400, "{case}");
    assert!(
        response.headers().get("location").is_none(),
        "{case}: redirected"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("Sign-in cannot continue"), "{case}: {html}");
}

#[tokio::test]
async fn redirect_uris_must_match_exactly_and_only_loopback_ports_vary() {
    let s = setup().await;
    let https = s.flow.register("https://app.example.com/cb", false).await;
    let loopback = s.flow.register(REDIRECT, false).await;
    let pkce = Pkce::new();
    let table: [(&RegisteredClient, &str, bool); 9] = [
        (&https, "https://app.example.com/cb", true),
        (&https, "https://app.example.com/cb123", false),
        (&https, "https://APP.example.com/cb", false),
        (&https, "https://app.example.com/CB", false),
        (&https, "https://app.example.com/cb?extra=1", false),
        (&https, "https://app.example.com/cb#fragment", false),
        (&loopback, "http://127.0.0.1.evil.com:7777/callback", false),
        (&loopback, "http://127.0.0.1:7777/callback", true),
        (&loopback, "http://127.0.0.1:9999/callback", true),
    ];
    for (client, redirect_uri, allowed) in table {
        let mut params = Flow::standard_params(client, &pkce, "s", SCOPE);
        params.retain(|(name, _)| *name != "redirect_uri");
        params.push(("redirect_uri", redirect_uri));
        let response = s.flow.get(&s.flow.authorize_url(&params)).await;
        if allowed {
            assert_eq!(response.status(), 200, "{redirect_uri}: the consent page");
        } else {
            assert_error_page(response, redirect_uri).await;
        }
    }
    // Unknown clients and missing client ids are pages too, never redirects.
    let mut params = Flow::standard_params(&https, &pkce, "s", SCOPE);
    params.retain(|(name, _)| *name != "client_id");
    assert_error_page(
        s.flow.get(&s.flow.authorize_url(&params)).await,
        "no client_id",
    )
    .await;
    params.push(("client_id", "no-such-client"));
    assert_error_page(
        s.flow.get(&s.flow.authorize_url(&params)).await,
        "unknown client",
    )
    .await;
}

#[tokio::test]
async fn approval_lands_on_the_loopback_port_the_client_asked_for() {
    let s = setup().await;
    let client = s.flow.register(REDIRECT, false).await;
    let on_other_port = RegisteredClient {
        redirect_uri: "http://127.0.0.1:9999/callback".into(),
        ..client.clone()
    };
    let pkce = Pkce::new();
    let redirect = s.flow.authorize(&on_other_port, &pkce, "p", SCOPE).await;
    assert_eq!(redirect.url.port(), Some(9999));
    let response = s
        .flow
        .exchange(
            &on_other_port,
            &redirect.param("code").unwrap(),
            &pkce.verifier,
        )
        .await;
    assert_eq!(response.status(), 200, "a public client exchanges its code");
}

#[tokio::test]
async fn registration_refuses_unsafe_redirect_uris_and_oversized_bodies() {
    let s = setup().await;
    for uris in [
        json!(["javascript:alert(1)"]),
        json!(["data:text/html,<script>x</script>"]),
        json!(["file:///etc/passwd"]),
        json!(["https://app.example.com/cb#frag"]),
        json!(["http://app.example.com/cb"]),
        json!([]),
    ] {
        let response = s
            .flow
            .register_raw(&json!({ "redirect_uris": uris, "client_name": "x" }))
            .await;
        assert_eq!(response.status(), 400, "{uris}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_redirect_uri", "{uris}");
    }
    let missing = s.flow.register_raw(&json!({ "client_name": "x" })).await;
    assert_eq!(missing.status(), 400);
    let huge = s
        .flow
        .register_raw(&json!({
            "redirect_uris": [REDIRECT],
            "client_name": "x",
            "padding": "a".repeat(70 * 1024),
        }))
        .await;
    assert_eq!(huge.status(), 413);
    let body: Value = huge.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
    let not_json = s
        .http
        .post(format!("{}/register", s.base()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
}

#[tokio::test]
async fn registrations_are_rate_limited_per_address() {
    let idp = start_idp(Duration::from_secs(3600)).await;
    let redis = RedisServer::start();
    let server = start_server(&idp, &redis, &EncryptedStore::generate_key(), 3).await;
    let flow = Flow::new(server.base_url());
    for _ in 0..3 {
        flow.register(REDIRECT, false).await;
    }
    let refused = flow
        .register_raw(&json!({ "redirect_uris": [REDIRECT] }))
        .await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn the_consent_page_escapes_the_client_name_and_refuses_framing() {
    let s = setup().await;
    let response = s
        .flow
        .register_raw(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "<script>alert('pwned')</script>",
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().await.unwrap();
    let client = RegisteredClient {
        client_id: registered["client_id"].as_str().unwrap().into(),
        client_secret: None,
        redirect_uri: "https://app.example.com/cb".into(),
    };
    let pkce = Pkce::new();
    let response = s
        .flow
        .get(
            &s.flow
                .authorize_url(&Flow::standard_params(&client, &pkce, "s", SCOPE)),
        )
        .await;
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // Dev mode on plain-http loopback: no `Secure`, so no `__Host-` prefix (browsers would drop it).
    assert!(
        !cookie.contains("Secure") && cookie.starts_with("toolgate-consent="),
        "{cookie}"
    );
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        // maud escapes `<>&"`; a `'` in element content is no markup and stays as it is.
        html.contains("&lt;script&gt;alert('pwned')&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("app.example.com"),
        "the redirect host is shown"
    );
    assert!(
        html.contains("tool:get_user_info"),
        "the permissions are shown"
    );
}

#[tokio::test]
async fn pkce_is_required_and_only_s256() {
    let s = setup().await;
    let client = s.flow.register(REDIRECT, true).await;
    let pkce = Pkce::new();
    let base = Flow::standard_params(&client, &pkce, "st", SCOPE);
    let without = |names: &[&str]| -> Vec<(&str, &str)> {
        base.iter()
            .filter(|(n, _)| !names.contains(n))
            .copied()
            .collect()
    };
    let mut plain = without(&["code_challenge_method"]);
    plain.push(("code_challenge_method", "plain"));
    let cases = [
        (
            "PKCE missing",
            without(&["code_challenge", "code_challenge_method"]),
        ),
        ("method plain", plain),
        ("method missing", without(&["code_challenge_method"])),
    ];
    for (case, params) in cases {
        let response = s.flow.get(&s.flow.authorize_url(&params)).await;
        assert_eq!(response.status(), 302, "{case}");
        let target = url::Url::parse(&location(&response)).unwrap();
        assert!(target.as_str().starts_with(REDIRECT), "{case}: {target}");
        let param = |name: &str| {
            target
                .query_pairs()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(param("error").as_deref(), Some("invalid_request"), "{case}");
        assert_eq!(param("state").as_deref(), Some("st"), "{case}");
        assert_eq!(param("iss"), Some(s.base()), "{case}");
    }

    // A wrong verifier at the token endpoint: invalid_grant, and the code is spent.
    let redirect = s.flow.authorize(&client, &pkce, "st", SCOPE).await;
    let code = redirect.param("code").unwrap();
    let wrong = s.flow.exchange(&client, &code, &Pkce::new().verifier).await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(error_of(wrong).await, "invalid_grant");
    let right = s.flow.exchange(&client, &code, &pkce.verifier).await;
    assert_eq!(
        right.status(),
        400,
        "the code is spent after a wrong verifier"
    );
    let missing = s
        .flow
        .token_raw(
            &client,
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(error_of(missing).await, "invalid_request");
}

#[tokio::test]
async fn a_foreign_resource_is_invalid_target() {
    let s = setup().await;
    let client = s.flow.register(REDIRECT, false).await;
    let pkce = Pkce::new();
    let mut params = Flow::standard_params(&client, &pkce, "s", SCOPE);
    params.push(("resource", "https://other.example.com/mcp"));
    let response = s.flow.get(&s.flow.authorize_url(&params)).await;
    assert_eq!(response.status(), 302);
    assert!(location(&response).contains("error=invalid_target"));
    let ours = format!("{}/mcp", s.base());
    let mut params = Flow::standard_params(&client, &pkce, "s", SCOPE);
    params.push(("resource", &ours));
    assert_eq!(
        s.flow.get(&s.flow.authorize_url(&params)).await.status(),
        200
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let s = setup().await;
    let client = s.flow.register(REDIRECT, true).await;
    let pkce = Pkce::new();
    let code = s
        .flow
        .authorize(&client, &pkce, "s", SCOPE)
        .await
        .param("code")
        .unwrap();
    let first: Value = s
        .flow
        .exchange(&client, &code, &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(s.call(access, "claims").await.status(), 200);

    let replay = s.flow.exchange(&client, &code, &pkce.verifier).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(error_of(replay).await, "invalid_grant");
    assert_invalid_token(
        &s.call(access, "claims").await,
        "access token of a replayed code",
    );
    let refresh = s
        .flow
        .refresh(&client, first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_of(refresh).await, "invalid_grant");
}

#[tokio::test]
async fn a_code_is_bound_to_its_client() {
    let s = setup().await;
    let owner = s.flow.register(REDIRECT, true).await;
    let thief = s.flow.register(REDIRECT, true).await;
    let pkce = Pkce::new();
    let code = s
        .flow
        .authorize(&owner, &pkce, "s", SCOPE)
        .await
        .param("code")
        .unwrap();
    let stolen = s.flow.exchange(&thief, &code, &pkce.verifier).await;
    assert_eq!(stolen.status(), 400);
    assert_eq!(error_of(stolen).await, "invalid_grant");
    // A wrong secret is not even a client.
    let forged = RegisteredClient {
        client_secret: Some("wrong".into()),
        ..owner.clone()
    };
    let response = s.flow.exchange(&forged, &code, &pkce.verifier).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_of(response).await, "invalid_client");
}

#[tokio::test]
async fn the_upstream_state_is_single_use_and_expires() {
    let s = setup().await;
    let client = s.flow.register(REDIRECT, false).await;
    let pkce = Pkce::new();
    let page = s
        .flow
        .consent_page(&Flow::standard_params(&client, &pkce, "s", SCOPE))
        .await;
    let upstream = s.flow.approve(&page).await;
    // The IdP redirects to our callback with its code and our state.
    let callback = location(&s.flow.get(&upstream).await);
    assert!(callback.starts_with(&format!("{}/auth/callback", s.base())));
    let first = s.flow.get(&callback).await;
    assert_eq!(first.status(), 302);
    assert!(location(&first).starts_with(REDIRECT));
    assert_error_page(s.flow.get(&callback).await, "a reused state").await;

    // Expired: the state's record is gone from Redis when its TTL runs out.
    let page = s
        .flow
        .consent_page(&Flow::standard_params(&client, &pkce, "s", SCOPE))
        .await;
    let upstream = s.flow.approve(&page).await;
    let state = url::Url::parse(&upstream)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == "state")
        .unwrap()
        .1
        .into_owned();
    let store_key = s.server_store_key("upstream-state", &state).await;
    assert!(
        s.redis.ttl_of(&store_key) > 0,
        "the state is stored with a TTL"
    );
    expire_now(&s.redis, &store_key);
    let callback = location(&s.flow.get(&upstream).await);
    assert_error_page(s.flow.get(&callback).await, "an expired state").await;
    assert_error_page(
        s.flow
            .get(&format!("{}/auth/callback?code=x&state=forged", s.base()))
            .await,
        "a forged state",
    )
    .await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    // Without a reuse interval, the first reuse of a rotated token is theft.
    let s = setup_without_reuse_interval().await;
    let (client, first) = s.sign_in().await;
    let old_refresh = first["refresh_token"].as_str().unwrap();
    let response = s.flow.refresh(&client, old_refresh).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second: Value = response.json().await.unwrap();
    let new_access = second["access_token"].as_str().unwrap();
    let new_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(s.call(new_access, "claims").await.status(), 200);

    let reuse = s.flow.refresh(&client, old_refresh).await;
    assert_eq!(reuse.status(), 400);
    assert_eq!(error_of(reuse).await, "invalid_grant");
    assert_invalid_token(
        &s.call(new_access, "claims").await,
        "after refresh-token reuse",
    );
    let after = s.flow.refresh(&client, new_refresh).await;
    assert_eq!(error_of(after).await, "invalid_grant");
}

/// Within the reuse interval (30 s by default) the client may present its just-rotated refresh
/// token again, concurrently too, on another instance: each use gets a working pair of the same
/// family. Another client presenting it is theft, and ends the family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_just_rotated_refresh_token_works_again_for_its_client_within_the_reuse_interval() {
    let s = setup().await;
    let other = s.another_instance(None).await;
    let on_other = Flow::new(other.base_url());
    let (client, first) = s.sign_in().await;
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();

    // The same refresh token at both instances at once.
    let (here, there) = tokio::join!(
        s.flow.refresh(&client, &refresh),
        on_other.refresh(&client, &refresh)
    );
    assert_eq!(
        (here.status().as_u16(), there.status().as_u16()),
        (200, 200)
    );
    let here: Value = here.json().await.unwrap();
    let there: Value = there.json().await.unwrap();
    assert_ne!(here["access_token"], there["access_token"]);
    for pair in [&here, &there] {
        let access = pair["access_token"].as_str().unwrap();
        assert_eq!(s.call(access, "claims").await.status(), 200);
        assert_eq!(call_on(&other, access, "claims").await.status(), 200);
    }
    // A retry after a lost answer: the same old token once more.
    let again = s.flow.refresh(&client, &refresh).await;
    assert_eq!(again.status(), 200);
    // The family lives on: both new refresh tokens rotate as usual.
    for pair in [&here, &there] {
        let next = s
            .flow
            .refresh(&client, pair["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(next.status(), 200);
    }

    // Another client holding the rotated token: the family ends.
    let thief = s.flow.register(REDIRECT, true).await;
    let stolen = s.flow.refresh(&thief, &refresh).await;
    assert_eq!(error_of(stolen).await, "invalid_grant");
    assert_invalid_token(
        &s.call(here["access_token"].as_str().unwrap(), "claims")
            .await,
        "after a thief presented the rotated token",
    );
}

/// Past the interval, reuse is theft again.
#[tokio::test]
async fn past_the_reuse_interval_a_rotated_refresh_token_revokes_its_family() {
    let idp = start_idp(Duration::from_secs(3600)).await;
    let redis = RedisServer::start();
    let keys = EncryptedStore::generate_key();
    let server = TestServer::start(|base| {
        builder_with(&idp, &redis, &keys, 20, base, |config| {
            config.refresh_reuse_interval = Duration::from_secs(1);
        })
    })
    .await;
    let flow = Flow::new(server.base_url());
    let (client, first) = flow.sign_in(REDIRECT, SCOPE).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let rotated = flow.refresh(&client, refresh).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    // Seconds are whole: two of them are surely past a one-second interval.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reuse = flow.refresh(&client, refresh).await;
    assert_eq!(error_of(reuse).await, "invalid_grant");
    assert_invalid_token(
        &call_on(&server, rotated["access_token"].as_str().unwrap(), "claims").await,
        "after reuse past the interval",
    );
}

#[tokio::test]
async fn other_grant_types_are_unsupported() {
    let s = setup().await;
    let client = s.flow.register(REDIRECT, true).await;
    for grant_type in ["client_credentials", "password", "implicit"] {
        let response = s
            .flow
            .token_raw(&client, &[("grant_type", grant_type)])
            .await;
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unsupported_grant_type", "{grant_type}");
    }
}

#[tokio::test]
async fn consent_needs_the_csrf_token_and_the_cookie_of_its_page() {
    let s = setup().await;
    let client = s.flow.register(REDIRECT, false).await;
    let pkce = Pkce::new();
    let page = s
        .flow
        .consent_page(&Flow::standard_params(&client, &pkce, "s", SCOPE))
        .await;
    let forged = [
        (
            "no CSRF token",
            vec![
                ("transaction", page.transaction.as_str()),
                ("decision", "approve"),
            ],
            Some(page.cookie.as_str()),
        ),
        (
            "a wrong CSRF token",
            vec![
                ("transaction", page.transaction.as_str()),
                ("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                ("decision", "approve"),
            ],
            Some(page.cookie.as_str()),
        ),
        (
            "no cookie",
            vec![
                ("transaction", page.transaction.as_str()),
                ("csrf_token", page.csrf_token.as_str()),
                ("decision", "approve"),
            ],
            None,
        ),
    ];
    for (case, fields, cookie) in forged {
        let response = s.flow.post_consent(&fields, cookie).await;
        assert_eq!(response.status(), 403, "{case}");
        assert!(response.headers().get("location").is_none(), "{case}");
    }
    // A cookie from another consent page does not fit this one.
    let other = s
        .flow
        .consent_page(&Flow::standard_params(&client, &pkce, "s", SCOPE))
        .await;
    let mixed = s.flow.answer(&page, "approve", Some(&other.cookie)).await;
    assert_eq!(mixed.status(), 403);
    // Nothing was consumed: the real page still works, once.
    let upstream = s.flow.approve(&page).await;
    assert!(upstream.starts_with(&s.idp.url()), "{upstream}");
    let again = s.flow.answer(&page, "approve", Some(&page.cookie)).await;
    assert_eq!(again.status(), 400, "a consent is answered once");
}

#[tokio::test]
async fn denying_consent_tells_the_client_and_never_reaches_auth0() {
    let s = setup().await;
    let client = s.flow.register(REDIRECT, false).await;
    let pkce = Pkce::new();
    let page = s
        .flow
        .consent_page(&Flow::standard_params(&client, &pkce, "deny-state", SCOPE))
        .await;
    let response = s.flow.answer(&page, "deny", Some(&page.cookie)).await;
    assert_eq!(response.status(), 302);
    let target = location(&response);
    assert!(target.starts_with(REDIRECT), "{target}");
    assert!(target.contains("error=access_denied") && target.contains("state=deny-state"));
}

#[tokio::test]
async fn revocation_ends_the_family_and_never_goes_upstream_with_our_tokens() {
    let s = setup().await;
    let (client, tokens) = s.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(s.call(access, "claims").await.status(), 200);
    let response = s
        .http
        .post(format!("{}/revoke", s.base()))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("token_type_hint", "refresh_token"),
            ("client_id", &client.client_id),
            ("client_secret", client.client_secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_invalid_token(&s.call(access, "claims").await, "after revocation");

    // Revoking an access token alone.
    let (client, tokens) = s.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap();
    let response = s
        .http
        .post(format!("{}/revoke", s.base()))
        .form(&[
            ("token", access),
            ("client_id", &client.client_id),
            ("client_secret", client.client_secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_invalid_token(&s.call(access, "claims").await, "a revoked access token");
    let refreshed = s
        .flow
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        refreshed.status(),
        200,
        "the refresh token outlives its access token"
    );
    // Unknown tokens are fine (RFC 7009); an unauthenticated client is not.
    let unknown = s
        .http
        .post(format!("{}/revoke", s.base()))
        .form(&[
            ("token", "nothing-we-issued"),
            ("client_id", &client.client_id),
            ("client_secret", client.client_secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 200);
    let anonymous = s
        .http
        .post(format!("{}/revoke", s.base()))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn auth0_tokens_from_machine_clients_still_work() {
    let s = setup().await;
    let token = s
        .idp
        .user_token("client-app@clients", &["tool:get_user_info"]);
    let claims = tool_result(s.call(&token, "claims").await).await;
    assert_eq!(claims["sub"], "client-app@clients");
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "iss": s.base(), "aud": format!("{}/mcp", s.base()), "sub": "x", "exp": 9999999999i64, "jti": "j" }),
        &jsonwebtoken::EncodingKey::from_secret(b"not-our-key-not-our-key-not-our-key").unwrap(),
    )
    .unwrap();
    assert_invalid_token(&s.call(&forged, "claims").await, "HS256 under another key");
}

#[tokio::test]
async fn the_upstream_token_is_refreshed_when_near_expiry() {
    // Auth0 tokens that live 30 s are always inside the refresh margin.
    let s = setup_with(Duration::from_secs(30)).await;
    let (_, tokens) = s.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap();
    let our_exp = jwt_part(access, 1)["exp"].as_i64().unwrap();
    // Token times are whole seconds: let the clock pass one, so a refreshed token shows it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let upstream = tool_result(s.call(access, "claims").await).await;
    assert!(
        upstream["exp"].as_i64().unwrap() > our_exp,
        "the tool got a refreshed Auth0 token (its exp {} is past our token's {our_exp}, which the first Auth0 token capped)",
        upstream["exp"]
    );
    assert!(
        tokens["expires_in"].as_i64().unwrap() <= 30,
        "never outlives the upstream token"
    );
}

#[tokio::test]
async fn a_tampered_or_moved_record_counts_as_absent() {
    let s = setup().await;
    let (client_a, tokens_a) = s.sign_in().await;
    let (_, tokens_b) = s.sign_in().await;
    let access_a = tokens_a["access_token"].as_str().unwrap();
    let access_b = tokens_b["access_token"].as_str().unwrap();

    // Tampered: flip one character of the client's record.
    let key = s.server_store_key("client", &client_a.client_id).await;
    let mut value = s.redis.get_raw(&key).expect("the client is stored");
    let middle = value.len() / 2;
    value[middle] = if value[middle] == b'A' { b'B' } else { b'A' };
    s.redis.set_raw(&key, &value);
    let pkce = Pkce::new();
    let response = s
        .flow
        .get(
            &s.flow
                .authorize_url(&Flow::standard_params(&client_a, &pkce, "s", SCOPE)),
        )
        .await;
    assert_error_page(response, "a tampered client record").await;

    // Moved: B's access record copied over A's (so A's jti would lead to B's grant).
    let jti_a = jwt_part(access_a, 1)["jti"].as_str().unwrap().to_owned();
    let jti_b = jwt_part(access_b, 1)["jti"].as_str().unwrap().to_owned();
    let key_a = s.server_store_key("access", &jti_a).await;
    let key_b = s.server_store_key("access", &jti_b).await;
    let moved = s.redis.get_raw(&key_b).unwrap();
    s.redis.set_raw(&key_a, &moved);
    assert_invalid_token(
        &s.call(access_a, "claims").await,
        "a record moved under another key",
    );
    assert_eq!(s.call(access_b, "claims").await.status(), 200);
    // Truncated: B's record cut in half.
    s.redis.set_raw(&key_b, &moved[..moved.len() / 2]);
    let fresh_server = s.another_instance(None).await;
    assert_invalid_token(
        &call_on(&fresh_server, access_b, "claims").await,
        "a truncated record",
    );
}

#[tokio::test]
async fn storage_keys_rotate_and_records_move_to_the_new_key() {
    let s = setup().await;
    let (_, tokens) = s.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap();
    let old_key = s.encryption_keys.clone();
    let new_key = EncryptedStore::generate_key();

    // The new key first, the old one still listed: old records are read, and rewritten.
    let rotating = s
        .another_instance(Some(&format!("{new_key},{old_key}")))
        .await;
    assert_eq!(call_on(&rotating, access, "claims").await.status(), 200);
    // Only the new key now: the records this token needs were rewritten under it.
    let new_only = s.another_instance(Some(&new_key)).await;
    assert_eq!(call_on(&new_only, access, "claims").await.status(), 200);
    // And the old key alone no longer reads them.
    let old_only = s.another_instance(Some(&old_key)).await;
    assert_invalid_token(
        &call_on(&old_only, access, "claims").await,
        "records under the new key",
    );
}

#[tokio::test]
async fn redis_down_is_503_everywhere_and_service_returns_with_it() {
    let mut s = setup().await;
    let (client, tokens) = s.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let machine_token = s.idp.user_token("client-app@clients", &[]);
    // A second instance that has resolved nothing yet, so each call needs the store.
    let cold = s.another_instance(None).await;
    assert_eq!(call_on(&cold, &machine_token, "claims").await.status(), 200);

    s.redis.stop();
    let assert_503 = |response: &reqwest::Response, case: &str| {
        assert_eq!(response.status(), 503, "{case}");
        assert!(response.headers().contains_key("retry-after"), "{case}");
    };
    assert_503(
        &call_on(&cold, &access, "claims").await,
        "an MCP call with our token",
    );
    assert_503(
        &s.flow
            .register_raw(&json!({ "redirect_uris": [REDIRECT] }))
            .await,
        "registration",
    );
    assert_503(&s.flow.refresh(&client, &refresh).await, "refresh");
    let pkce = Pkce::new();
    assert_503(
        &s.flow
            .get(
                &s.flow
                    .authorize_url(&Flow::standard_params(&client, &pkce, "s", SCOPE)),
            )
            .await,
        "authorize",
    );
    // Auth0's own tokens need no store: they still verify from cached keys.
    assert_eq!(call_on(&cold, &machine_token, "claims").await.status(), 200);

    // Back up (empty: this Redis keeps nothing on disk): the same servers work again unaided.
    s.redis.restart();
    let (_, tokens) = s.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(call_on(&cold, access, "claims").await.status(), 200);
}

/// A client metadata document served on loopback (allowed in dev mode only): over HTTPS with a
/// certificate from the test CA, as a client's own site serves it, or on plain http.
async fn serve_document(
    https: bool,
    document: impl Fn(&str) -> Value + Send + Sync + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if https { "https" } else { "http" };
    let url = format!(
        "{scheme}://127.0.0.1:{}/client.json",
        listener.local_addr().unwrap().port()
    );
    let body = document(&url);
    let app = axum::Router::new().route(
        "/client.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let task = if https {
        let listener = toolgate_dev_idp::tls::TlsListener::new(
            listener,
            &toolgate_tests::tls::pki().localhost(),
        )
        .unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        })
    } else {
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        })
    };
    (url, task)
}

fn document_for(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Document Client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
    })
}

/// Signs in as the client whose id is the document URL `url`, through to a code exchange.
async fn sign_in_by_document(s: &Setup, url: &str) -> RegisteredClient {
    let client = RegisteredClient {
        client_id: url.to_owned(),
        client_secret: None,
        redirect_uri: REDIRECT.into(),
    };
    let pkce = Pkce::new();
    let page = s
        .flow
        .consent_page(&Flow::standard_params(&client, &pkce, "s", SCOPE))
        .await;
    assert!(page.html.contains("Document Client"));
    let upstream = s.flow.approve(&page).await;
    let redirect = s.flow.follow_to_client(&upstream, REDIRECT).await;
    let response = s
        .flow
        .exchange(&client, &redirect.param("code").unwrap(), &pkce.verifier)
        .await;
    assert_eq!(response.status(), 200);
    client
}

#[tokio::test]
async fn a_client_id_metadata_document_registers_a_client_by_url() {
    let s = setup().await;
    // Over HTTPS, verified against the configured CA (SSL_CERT_FILE), as on the internet.
    let (url, _document) = serve_document(true, document_for).await;
    let client = sign_in_by_document(&s, &url).await;

    // A document that names another client id is refused, with a page.
    let (liar, _document) = serve_document(true, |_| {
        json!({ "client_id": "https://someone-else.example/client.json", "redirect_uris": [REDIRECT] })
    })
    .await;
    let impostor = RegisteredClient {
        client_id: liar,
        ..client
    };
    let pkce = Pkce::new();
    assert_error_page(
        s.flow
            .get(
                &s.flow
                    .authorize_url(&Flow::standard_params(&impostor, &pkce, "s", SCOPE)),
            )
            .await,
        "a document naming another client",
    )
    .await;
}

#[tokio::test]
async fn a_metadata_document_on_plain_http_loopback_is_a_dev_mode_convenience() {
    let s = setup().await;
    let (url, _document) = serve_document(false, document_for).await;
    sign_in_by_document(&s, &url).await;
}

#[tokio::test]
async fn a_metadata_document_behind_an_untrusted_certificate_is_refused() {
    let s = setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/client.json",
        listener.local_addr().unwrap().port()
    );
    let body = document_for(&url);
    let app = axum::Router::new().route(
        "/client.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let certificate = toolgate_tests::tls::untrusted_ca().localhost().unwrap();
    let listener = toolgate_dev_idp::tls::TlsListener::new(listener, &certificate).unwrap();
    let _document = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let client = RegisteredClient {
        client_id: url,
        client_secret: None,
        redirect_uri: REDIRECT.into(),
    };
    let pkce = Pkce::new();
    let response = s
        .flow
        .get(
            &s.flow
                .authorize_url(&Flow::standard_params(&client, &pkce, "s", SCOPE)),
        )
        .await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("signed by an unknown authority"),
        "the page says why: {page}"
    );
}

/// One `toolgate-test-server` process; killed on drop.
struct ServerProcess {
    child: std::process::Child,
    base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_instance(vars: &[(String, String)]) -> ServerProcess {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_toolgate-test-server"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start toolgate-test-server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("listening"),
        "the instance did not start: {line:?}"
    );
    ServerProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

#[tokio::test]
async fn two_processes_sharing_redis_serve_one_flow() {
    let idp = start_idp(Duration::from_secs(3600)).await;
    let redis = RedisServer::start();
    // Both instances stand behind one public address, as behind a load balancer.
    let public = url::Url::parse("http://127.0.0.1:8000").unwrap();
    let mut vars = proxy_vars(&idp, &public, &redis, &EncryptedStore::generate_key());
    vars.push(("TOOLGATE_STATELESS".into(), "true".into()));
    let first = spawn_instance(&vars);
    let second = spawn_instance(&vars);
    let on_first = Flow::new(first.base.clone());
    let on_second = Flow::new(second.base.clone());

    let client = on_first.register(REDIRECT, true).await;
    let pkce = Pkce::new();
    let page = on_second
        .consent_page(&Flow::standard_params(
            &client,
            &pkce,
            "two",
            "openid profile email",
        ))
        .await;
    let upstream = on_second.approve(&page).await;
    // Auth0 sends the browser to the public callback; the balancer picks the second instance.
    let callback = location(&on_second.get(&upstream).await)
        .replace(public.as_str().trim_end_matches('/'), &second.base);
    let redirect = on_second.follow_to_client(&callback, REDIRECT).await;
    assert_eq!(redirect.param("state").as_deref(), Some("two"));
    let response = on_first
        .exchange(&client, &redirect.param("code").unwrap(), &pkce.verifier)
        .await;
    assert_eq!(
        response.status(),
        200,
        "the first instance exchanges the code"
    );
    let tokens: Value = response.json().await.unwrap();
    let response = mcp_post(
        &toolgate_tests::tls::http_client(),
        &format!("{}/mcp", second.base),
        tools_call_body("claims", json!({})),
    )
    .bearer_auth(tokens["access_token"].as_str().unwrap())
    .send()
    .await
    .unwrap();
    let claims = tool_result(response).await;
    assert_eq!(claims["sub"], "auth0|alice");
    assert_eq!(claims["iss"], idp.issuer());
}

#[tokio::test]
async fn concurrent_requests_on_several_instances_refresh_the_upstream_token_one_at_a_time() {
    // Auth0 tokens inside the refresh margin, and an IdP that treats a refresh token used twice as
    // stolen (it revokes the family, as Auth0's reuse detection does): a second refresh with a
    // rotated-away token would sign the user out, so every call succeeding shows the lock works.
    let s = setup_with(Duration::from_secs(30)).await;
    let (_, tokens) = s.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    // Each instance coalesces its own concurrent resolutions, so the race is between instances.
    let mut instances = vec![];
    for _ in 0..4 {
        instances.push(s.another_instance(None).await);
    }
    for _round in 0..3 {
        let calls = instances
            .iter()
            .map(|server| call_on(server, &access, "claims"));
        for response in futures::future::join_all(calls).await {
            assert_eq!(response.status(), 200);
        }
    }
    // The grant survived: every instance still serves it afterwards.
    for server in &instances {
        assert_eq!(call_on(server, &access, "claims").await.status(), 200);
    }
    assert_eq!(s.call(&access, "claims").await.status(), 200);
}

#[tokio::test]
async fn browser_clients_on_other_origins_can_read_metadata_and_use_the_token_endpoint() {
    let s = setup().await;
    let origin = "https://inspector.example";
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = s
            .http
            .get(format!("{}{path}", s.base()))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "*",
            "{path}"
        );
    }
    let preflight = s
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/token", s.base()))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    // The pages are not for other origins to read, and /mcp still refuses a foreign Origin.
    let page = s
        .http
        .get(format!("{}/authorize", s.base()))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert!(page.headers().get("access-control-allow-origin").is_none());
    let mcp = mcp_post(
        &s.http,
        &s.server.mcp_url(),
        tools_call_body("claims", json!({})),
    )
    .header("origin", origin)
    .send()
    .await
    .unwrap();
    assert_eq!(mcp.status(), 403);
}
