//! The official MCP SDKs sign in to the example server as their users' applications would, through
//! toolgate's authorization server with a real Redis behind it, and call its tools.
//!
//! - The Python SDK (`mcp`, from `tests/peers/python-sdk`): its `OAuthClientProvider` discovers,
//!   registers, authorizes with PKCE, exchanges the code, and refreshes once the access token has
//!   expired. Once with the dev-idp as Auth0, once with oidc-provider (a certified OpenID provider)
//!   in its place.
//! - The TypeScript SDK (`@modelcontextprotocol/sdk`, from `tests/peers/typescript-sdk`): connects
//!   through its OAuth flow as a public client and calls a tool.
//!
//! A scripted browser inside each client script approves toolgate's consent page and completes the
//! identity provider's login page. The scripts print a JSON report, asserted on here.
//!
//! Needs `scripts/install-peers.sh` to have run; without it the tests fail and say so.

use std::time::Duration;

use serde_json::{Value, json};
use toolgate_dev_idp::{DevIdp, DevIdpConfig};
use toolgate_tests::oidc_provider::OidcProvider;
use toolgate_tests::processes::{
    ExampleServer, Upstream, free_port, peer_node, peer_python, run_client,
};
use toolgate_tests::redis::RedisServer;

/// Generous: Python and Node start slowly while cargo compiles on both cores.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Short enough that the refresh tests wait only seconds for the access token to expire.
const SHORT_TOKEN_LIFETIME: Duration = Duration::from_secs(4);
const EXAMPLE_SERVER: &str = env!("CARGO_BIN_EXE_toolgate-example-server");
const EXAMPLE_TOOLS: [&str; 4] = ["add", "get_user_info", "read_audit_log", "whoami"];

/// The dev-idp as Auth0 is in production (HTTPS, `AUTH0_DOMAIN` a bare host, its CA trusted via
/// `SSL_CERT_FILE`): its login page lists alice and bob and every permission the example's tools
/// declare (all pre-checked).
async fn dev_idp(access_token_ttl: Duration) -> (DevIdp, Upstream) {
    let idp = toolgate_tests::start_idp(DevIdpConfig {
        permissions: ExampleServer::declared_permissions(EXAMPLE_SERVER).await,
        access_token_ttl,
        ..DevIdpConfig::default()
    })
    .await;
    let upstream = Upstream::of(&idp);
    (idp, upstream)
}

/// The HTTP exchanges a client script logged, in order.
fn requests(report: &Value) -> &[Value] {
    report["requests"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn find(report: &Value, what: impl Fn(&Value) -> bool) -> Vec<&Value> {
    requests(report).iter().filter(|r| what(r)).collect()
}

fn position(report: &Value, what: impl Fn(&Value) -> bool) -> usize {
    requests(report)
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("no such request in {:#}", report["requests"]))
}

/// What every sign-in through toolgate shows, whichever SDK and identity provider: a 401 that
/// starts discovery, one registration, one trip through the browser with toolgate's consent page
/// first, and an authorization response with `code`, `state` and toolgate's `iss`.
fn assert_signed_in_through_toolgate(report: &Value, server: &ExampleServer, idp_origin: &str) {
    let first = &requests(report)[0];
    assert_eq!(
        (first["method"].as_str(), first["path"].as_str()),
        (Some("POST"), Some("/mcp")),
        "{report:#}"
    );
    assert_eq!(first["status"], 401, "the first MCP request has no token");
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ] {
        assert!(
            !find(report, |r| r["path"] == path && r["status"] == 200).is_empty(),
            "the client discovered {path}: {report:#}"
        );
    }
    assert_eq!(
        find(report, |r| r["path"] == "/register").len(),
        1,
        "{report:#}"
    );
    assert_eq!(find(report, |r| r["path"] == "/register")[0]["status"], 201);
    assert_eq!(report["authorization_urls"], 1, "one sign-in: {report:#}");
    for param in [
        "code_challenge",
        "code_challenge_method",
        "redirect_uri",
        "resource",
        "state",
    ] {
        assert!(
            report["authorization_query"]
                .as_array()
                .unwrap()
                .contains(&json!(param)),
            "the authorization request has {param}: {report:#}"
        );
    }

    let pages = report["pages"].as_array().unwrap();
    let consent = &pages[0];
    assert_eq!(consent["kind"], "toolgate-consent", "{report:#}");
    assert_eq!(consent["origin"], server.base_url());
    assert_eq!(
        consent["client_name"], report["client_name"],
        "the consent page names the registered client"
    );
    assert_eq!(
        consent["redirect_host"],
        url::Url::parse(report["redirect_uri"].as_str().unwrap())
            .map(|u| format!("{}:{}", u.host_str().unwrap(), u.port().unwrap()))
            .unwrap(),
        "the consent page names where the code goes"
    );
    assert_eq!(pages[1]["kind"], "idp-login", "{report:#}");
    assert_eq!(pages[1]["origin"], idp_origin);
    let last = pages.last().unwrap();
    assert_eq!(last["kind"], "client-redirect", "{report:#}");
    assert_eq!(last["params"], json!(["code", "iss", "state"]));

    let exchange = find(report, |r| r["grant_type"] == "authorization_code");
    assert_eq!(exchange.len(), 1, "{report:#}");
    assert_eq!(exchange[0]["status"], 200, "{report:#}");

    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools listed: {report:#}"))
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tools, EXAMPLE_TOOLS);
}

/// The Python SDK's token history shows a refresh after expiry: a second token set, obtained by
/// one `refresh_token` grant (no second sign-in), issued after the first access token expired,
/// with a rotated refresh token; and the call after expiry carried the new access token.
fn assert_refreshed_after_expiry(report: &Value, server: &ExampleServer, sub: &str) {
    let tokens = report["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "a sign-in and one refresh: {report:#}");
    let (first, second) = (&tokens[0], &tokens[1]);
    for token in [first, second] {
        assert_eq!(token["claims"]["iss"], server.base_url(), "{token}");
        assert_eq!(token["claims"]["aud"], server.mcp_url(), "{token}");
        assert_eq!(token["claims"]["sub"], sub, "{token}");
        assert_eq!(
            token["claims"]["client_id"], report["registered"]["client_id"],
            "{token}"
        );
    }
    assert_ne!(first["access_token"], second["access_token"]);
    assert_ne!(first["claims"]["jti"], second["claims"]["jti"]);
    assert_ne!(
        first["refresh_token"], second["refresh_token"],
        "refresh tokens rotate"
    );
    assert!(
        second["claims"]["iat"].as_i64() >= first["claims"]["exp"].as_i64(),
        "the second token was issued once the first had expired: {first} {second}"
    );

    let refreshes = find(report, |r| r["grant_type"] == "refresh_token");
    assert_eq!(refreshes.len(), 1, "{report:#}");
    assert_eq!(refreshes[0]["status"], 200, "{report:#}");
    assert_eq!(
        refreshes[0]["resource"],
        server.mcp_url(),
        "the SDK names the resource (RFC 8707)"
    );
    let refresh_at = position(report, |r| r["grant_type"] == "refresh_token");
    let calls: Vec<&Value> = requests(report)
        .iter()
        .filter(|r| r["rpc"] == "tools/call")
        .collect();
    assert_eq!(calls.len(), 2, "{report:#}");
    assert_eq!(calls[0]["bearer"], first["access_token"]);
    assert_eq!(
        calls[1]["bearer"], second["access_token"],
        "the call after expiry used the refreshed token"
    );
    assert_eq!(calls[1]["status"], 200);
    assert!(
        requests(report)[refresh_at + 1..]
            .iter()
            .all(|r| r["status"] != 401),
        "the refreshed token was accepted at once: {report:#}"
    );
}

/// The production path end to end: Auth0 over HTTPS (a bare-host `AUTH0_DOMAIN`, a private CA in
/// `SSL_CERT_FILE`), Redis over TLS as an ACL user (`REDIS_URL=rediss://…`), and the whole life of
/// a sign-in: discovery, registration, consent, the IdP's login page, the callback's code exchange
/// over TLS, the profile, a refresh that refreshes upstream, and revocation that reaches Auth0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_signs_in_through_the_dev_idp_reads_the_profile_and_refreshes() {
    let redis = RedisServer::start_tls("toolgate", "an-acl-password");
    let (idp, upstream) = dev_idp(SHORT_TOKEN_LIFETIME).await;
    let server = ExampleServer::start(EXAMPLE_SERVER, &upstream, &redis).await;
    let python = peer_python("python-sdk");
    let mcp_url = server.mcp_url();
    let report = run_client(
        "python-sdk",
        &python,
        &[
            "oauth_client.py",
            "--mcp-url",
            &mcp_url,
            "--first-tool",
            "get_user_info",
            "--expiry-tool",
            "get_user_info",
            "--login",
            "alice",
            "--revoke",
        ],
        CLIENT_TIMEOUT,
    )
    .await;
    let context = format!("{report:#}\nserver log:\n{}", server.log());

    assert_signed_in_through_toolgate(&report, &server, &idp.url());
    assert!(
        idp.url().starts_with("https://localhost:"),
        "the IdP is served over HTTPS"
    );
    assert_eq!(
        report["registered"]["token_endpoint_auth_method"], "client_secret_basic",
        "{context}"
    );
    assert_eq!(report["registered"]["has_secret"], true);

    for call in ["first_call", "after_expiry_call"] {
        let reply = &report[call];
        assert_eq!(reply["is_error"], false, "{call}: {context}");
        let profile = &reply["structured"]["user_info"];
        assert_eq!(profile["sub"], "auth0|alice", "{call}: {context}");
        assert_eq!(profile["email"], "alice@example.com", "{call}");
        assert_eq!(profile["name"], "Alice Example", "{call}");
        assert_eq!(reply["structured"]["issuer"], idp.issuer(), "{call}");
        assert!(
            reply["structured"]["permissions"]
                .as_array()
                .unwrap()
                .contains(&json!("tool:get_user_info")),
            "{call}: {context}"
        );
    }
    assert_refreshed_after_expiry(&report, &server, "auth0|alice");
    assert!(
        idp.refresh_grants() >= 1,
        "our refresh refreshed Auth0's token too: {context}"
    );

    let revocation = &report["revocation"];
    assert_eq!(revocation["before"], 200, "{context}");
    assert_eq!(revocation["status"], 200, "RFC 7009: {context}");
    assert_eq!(
        revocation["after"], 401,
        "the revoked family's access token is refused: {context}"
    );
    assert_eq!(
        idp.revocations(),
        1,
        "the family's Auth0 refresh token was revoked upstream: {context}"
    );
    assert!(
        !redis.keys_and_values().is_empty(),
        "the records went to the TLS Redis"
    );
}

/// oidc-provider takes Auth0's place. Its userinfo endpoint (`/me`) refuses access tokens made for
/// an API, so `get_user_info` cannot fetch a profile there; `whoami` shows the signed-in subject and
/// permissions from the provider's own token instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_signs_in_with_a_third_party_openid_provider_as_upstream() {
    // oidc-provider over HTTPS as Auth0, and managed Redis: TLS only, an ACL user.
    let redis = RedisServer::start_tls("toolgate", "another-acl-password");
    // The provider must know toolgate's callback before toolgate starts.
    let port = free_port();
    let idp = OidcProvider::start_upstream(
        &format!("http://127.0.0.1:{port}/auth/callback"),
        SHORT_TOKEN_LIFETIME,
    )
    .await;
    let server = ExampleServer::start_on(EXAMPLE_SERVER, port, idp.upstream(), &redis).await;
    let python = peer_python("python-sdk");
    let mcp_url = server.mcp_url();
    let report = run_client(
        "python-sdk",
        &python,
        &[
            "oauth_client.py",
            "--mcp-url",
            &mcp_url,
            "--first-tool",
            "whoami",
            "--expiry-tool",
            "whoami",
            "--login",
            "carol",
        ],
        CLIENT_TIMEOUT,
    )
    .await;
    let context = format!(
        "{report:#}\nserver log:\n{}\noidc-provider log:\n{}",
        server.log(),
        idp.stderr_log()
    );

    assert_signed_in_through_toolgate(&report, &server, &idp.issuer);
    let kinds: Vec<&str> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "toolgate-consent",
            "idp-login",
            "idp-consent",
            "client-redirect"
        ],
        "{context}"
    );
    let mut declared = ExampleServer::declared_permissions(EXAMPLE_SERVER).await;
    declared.sort();
    for call in ["first_call", "after_expiry_call"] {
        let reply = &report[call];
        assert_eq!(reply["is_error"], false, "{call}: {context}");
        assert_eq!(reply["structured"]["subject"], "carol", "{call}: {context}");
        let mut permissions: Vec<String> =
            serde_json::from_value(reply["structured"]["permissions"].clone()).unwrap();
        permissions.sort();
        assert_eq!(
            permissions, declared,
            "the provider's permissions claim reaches the tool: {context}"
        );
    }
    assert_refreshed_after_expiry(&report, &server, "carol");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_signs_in_as_a_public_client_and_reads_the_profile() {
    let redis = RedisServer::start();
    let (idp, upstream) = dev_idp(Duration::from_secs(3600)).await;
    let server = ExampleServer::start(EXAMPLE_SERVER, &upstream, &redis).await;
    let node = peer_node("typescript-sdk");
    let mcp_url = server.mcp_url();
    let report = run_client(
        "typescript-sdk",
        &node,
        &[
            "oauth_client.mjs",
            "--mcp-url",
            &mcp_url,
            "--tool",
            "get_user_info",
            "--login",
            "bob",
        ],
        CLIENT_TIMEOUT,
    )
    .await;
    let context = format!("{report:#}\nserver log:\n{}", server.log());

    assert_signed_in_through_toolgate(&report, &server, &idp.url());
    assert_eq!(report["iss"], server.base_url(), "RFC 9207 iss: {context}");
    assert_eq!(
        report["registered"],
        json!({
            "client_id": report["registered"]["client_id"],
            "has_secret": false,
            "token_endpoint_auth_method": "none",
        }),
        "a public client: {context}"
    );
    let tokens = report["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{context}");
    assert_eq!(tokens[0]["claims"]["sub"], "auth0|bob");
    assert_eq!(tokens[0]["claims"]["aud"], server.mcp_url());

    let reply = &report["call"];
    assert_eq!(reply["is_error"], false, "{context}");
    assert_eq!(
        reply["structured"]["user_info"]["sub"], "auth0|bob",
        "{context}"
    );
    assert_eq!(reply["structured"]["user_info"]["email"], "bob@example.com");
    assert_eq!(reply["structured"]["issuer"], idp.issuer());
    // Every MCP request after the sign-in carried the token the SDK obtained, and was accepted.
    let exchange = position(&report, |r| r["grant_type"] == "authorization_code");
    let after: Vec<&Value> = requests(&report)[exchange + 1..]
        .iter()
        .filter(|r| r["path"] == "/mcp")
        .collect();
    assert!(!after.is_empty(), "{context}");
    for request in after {
        assert_eq!(request["bearer"], tokens[0]["access_token"], "{context}");
        assert!(
            request["status"].as_u64().is_some_and(|s| s < 300),
            "{context}"
        );
    }
}
