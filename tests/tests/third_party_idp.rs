//! Token verification against an OpenID provider we did not write: `oidc-provider` (a certified
//! implementation, run under Node from `tests/peers/oidc-provider`) stands in for Auth0. The dev-idp
//! tests can only show that toolgate agrees with our own idea of a token; this one shows it accepts
//! what a third party actually issues (`typ: at+jwt`, an issuer without a trailing slash, `aud` as
//! a string, RFC 8707 `resource` instead of Auth0's `audience`) and still refuses what it must.
//!
//! Needs `scripts/install-peers.sh` to have run; without it the tests fail and say so.

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use toolgate::{AccessToken, Config, Server, mcp_tool};
use toolgate_tests::oidc_provider::{API, CLIENT_ID, CLIENT_SECRET, OidcProvider};
use toolgate_tests::{TestServer, mcp_post, tools_call_body};

/// Returns the caller's verified claims.
#[mcp_tool]
async fn claims(token: AccessToken) -> Value {
    serde_json::to_value(token.claims()).unwrap()
}

#[mcp_tool(description = "Needs tool:a and tool:b", permissions = ["tool:a", "tool:b"])]
async fn both(token: AccessToken) -> String {
    format!("both, for {}", token.claims().sub)
}

struct Setup {
    idp: OidcProvider,
    server: TestServer,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let idp = OidcProvider::start().await;
    // Served over HTTPS, named by a bare host as a tenant domain is, its CA trusted via
    // SSL_CERT_FILE.
    let domain = idp.domain.clone();
    let ca_file = toolgate_tests::tls::pki().ca_file().display().to_string();
    let server = TestServer::start(move |base| {
        let config = Config::from_vars([
            ("SSL_CERT_FILE", ca_file.as_str()),
            ("AUTH_ENABLED", "true"),
            ("AUTH_PROVIDER", "auth0"),
            ("AUTH0_DOMAIN", domain.as_str()),
            ("AUTH0_CLIENT_ID", CLIENT_ID),
            ("AUTH0_CLIENT_SECRET", CLIENT_SECRET),
            ("AUTH0_AUDIENCE", API),
            ("RESOURCE_BASE_URL", base.as_str()),
        ])
        .unwrap();
        Server::builder()
            .config(config)
            .tool::<claims>()
            .tool::<both>()
    })
    .await;
    Setup {
        idp,
        server,
        http: toolgate_tests::tls::http_client(),
    }
}

impl Setup {
    /// A raw `tools/call`, so status codes and headers are visible.
    async fn call(&self, token: &str, tool: &str) -> reqwest::Response {
        mcp_post(
            &self.http,
            &self.server.mcp_url(),
            tools_call_body(tool, json!({})),
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
    }

    /// The claims toolgate verified, through a real MCP session.
    async fn verified_claims(&self, token: &str) -> Value {
        let client = self.server.client(Some(token)).await.unwrap_or_else(|e| {
            panic!(
                "toolgate refused an oidc-provider token: {e}\n{}",
                self.idp.stderr_log()
            )
        });
        let result = client
            .call_tool(CallToolRequestParams::new("claims"))
            .await
            .unwrap();
        client.cancel().await.unwrap();
        result
            .structured_content
            .expect("claims come back as structured content")
    }
}

fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The value of `name="..."` in a challenge.
fn challenge_param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let len = challenge[start..].find('"')?;
    Some(&challenge[start..start + len])
}

fn segments(token: &str) -> [&str; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    parts
        .try_into()
        .unwrap_or_else(|_| panic!("not a compact JWS: {token}"))
}

#[tokio::test]
async fn a_third_party_token_reaches_the_tool_with_the_providers_claims() {
    let s = setup().await;
    let token = s.idp.token("tool:a tool:b").await;

    let claims = s.verified_claims(&token).await;
    assert_eq!(claims["iss"], s.idp.issuer, "{claims}");
    assert_eq!(claims["aud"], API, "{claims}");
    assert_eq!(
        claims["permissions"],
        json!(["tool:a", "tool:b"]),
        "{claims}"
    );
    assert_eq!(claims["scope"], "tool:a tool:b", "{claims}");
    // oidc-provider names a client-credentials subject by its bare client id (Auth0 appends
    // `@clients`); toolgate must pass either through untouched.
    assert_eq!(claims["sub"], CLIENT_ID, "{claims}");

    let client = s.server.client(Some(&token)).await.unwrap();
    let result = client
        .call_tool(CallToolRequestParams::new("both"))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(
        result.content[0].as_text().unwrap().text,
        format!("both, for {CLIENT_ID}")
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_third_party_token_without_a_permission_gets_403_insufficient_scope() {
    let s = setup().await;
    let token = s.idp.token("tool:a").await;
    // The token itself is good, so the 403 below is about permissions and nothing else.
    let claims = s.verified_claims(&token).await;
    assert_eq!(claims["permissions"], json!(["tool:a"]), "{claims}");

    let response = s.call(&token, "both").await;
    assert_eq!(response.status(), 403);
    let challenge = www_authenticate(&response);
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"tool:a tool:b\""), "{challenge}");
    let metadata_url = challenge_param(&challenge, "resource_metadata")
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge}"));

    // A client that follows the challenge must be sent to the provider that issued the token.
    let metadata: Value = s
        .http
        .get(metadata_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the resource metadata is served")
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["authorization_servers"],
        json!([s.idp.issuer]),
        "{metadata}"
    );
}

#[tokio::test]
async fn a_tampered_third_party_token_gets_401() {
    let s = setup().await;
    let weak = s.idp.token("tool:a").await;
    let strong = s.idp.token("tool:a tool:b").await;
    assert_eq!(
        s.verified_claims(&weak).await["permissions"],
        json!(["tool:a"])
    );

    let [header, payload, signature] = segments(&weak);
    // The first character carries the signature's leading bits, so any other letter changes it.
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let bad_signature = format!("{header}.{payload}.{flipped}{}", &signature[1..]);
    // A genuine signature by the same key, over a different (less privileged) payload.
    let [strong_header, strong_payload, _] = segments(&strong);
    let spliced = format!("{strong_header}.{strong_payload}.{signature}");

    for (case, token) in [
        ("altered signature", bad_signature),
        ("escalated payload", spliced),
    ] {
        toolgate_tests::assert_invalid_token(&s.call(&token, "both").await, case);
    }
}
