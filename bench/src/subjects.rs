//! The servers measured, how each is started, and the check that it answers `add` correctly before
//! any load is put on it.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use toolgate_dev_idp::{AutoApprove, DevIdp, DevIdpConfig};

use crate::proxy::{self, Redis};

/// Where the pieces of a run are.
pub struct Paths {
    /// `target/release/examples/server`.
    pub example_server: PathBuf,
    /// `target/release/bare-axum`.
    pub bare_axum: PathBuf,
    /// `bench/.venv/bin/python`, with FastMCP installed.
    pub python: PathBuf,
    pub fastmcp_script: PathBuf,
    pub wrk_script: PathBuf,
    /// Raw results and server logs.
    pub results: PathBuf,
}

impl Paths {
    /// Next to this executable (cargo's release directory) and in this crate's folder.
    pub fn discover() -> Result<Paths, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let bin_dir = exe.parent().ok_or("this executable has no folder")?;
        let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
        let paths = Paths {
            example_server: bin_dir.join("examples").join("server"),
            bare_axum: bin_dir.join("bare-axum"),
            python: bench.join(".venv").join("bin").join("python"),
            fastmcp_script: bench.join("fastmcp_server.py"),
            wrk_script: bench.join("call.lua"),
            results: bench.join("results"),
        };
        for (path, how) in [
            (
                &paths.example_server,
                "cargo build --release --example server",
            ),
            (&paths.bare_axum, "cargo build --release -p toolgate-bench"),
            (&paths.python, "bench/install.sh"),
        ] {
            if !path.exists() {
                return Err(format!(
                    "{} is missing; run bench/run (it runs {how})",
                    path.display()
                ));
            }
        }
        std::fs::create_dir_all(&paths.results)
            .map_err(|e| format!("cannot create {}: {e}", paths.results.display()))?;
        Ok(paths)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The example server, release build.
    Toolgate { auth: bool },
    /// The same with its authorization server on (`JWT_SIGNING_KEY`) and its records in Redis.
    ToolgateProxy,
    /// `bench/fastmcp_server.py`: FastMCP with `RemoteAuthProvider(JWTVerifier)`.
    FastMcp,
    /// `bare-axum`: the same reply with no MCP and no auth.
    BareAxum,
}

impl Server {
    /// Whether a call without a token must be refused: proof that the measured path authenticates.
    pub fn authenticates(self) -> bool {
        matches!(
            self,
            Server::Toolgate { auth: true } | Server::ToolgateProxy | Server::FastMcp
        )
    }
}

/// Where the bearer token a subject is driven with comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// An Auth0-shaped RS256 access token from the identity provider's `/oauth/token`.
    Direct,
    /// A token toolgate's own authorization server issued (its upstream Auth0 token behind it in Redis).
    ProxyIssued,
}

/// How a server is run, and so how its client talks to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// No MCP sessions, JSON replies: `TOOLGATE_STATELESS=true`; FastMCP's `stateless_http` and
    /// `json_response`. Each request stands alone.
    Stateless,
    /// The servers' default, and what MCP clients open when a server offers it: `initialize` (its
    /// reply carries the `Mcp-Session-Id`), `notifications/initialized`, then every call with that
    /// header, each answered as an SSE stream (`text/event-stream`).
    Session,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Stateless => "stateless",
            Mode::Session => "session",
        }
    }
}

/// One row of the table: a server in one mode, driven with one kind of token.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    pub key: &'static str,
    pub label: &'static str,
    pub server: Server,
    pub mode: Mode,
    pub token: TokenSource,
}

pub const TOOLGATE: &str = "toolgate";
pub const TOOLGATE_NO_AUTH: &str = "toolgate-noauth";
pub const FASTMCP: &str = "fastmcp";
pub const BARE_AXUM: &str = "bare-axum";
pub const TOOLGATE_PROXY: &str = "toolgate-proxy";
pub const TOOLGATE_SESSION: &str = "toolgate-session";
pub const TOOLGATE_PROXY_SESSION: &str = "toolgate-proxy-session";
pub const FASTMCP_SESSION: &str = "fastmcp-session";

pub const SUBJECTS: &[Subject] = &[
    Subject {
        key: TOOLGATE,
        label: "toolgate (auth on)",
        server: Server::Toolgate { auth: true },
        mode: Mode::Stateless,
        token: TokenSource::Direct,
    },
    Subject {
        key: TOOLGATE_NO_AUTH,
        label: "toolgate (auth off)",
        server: Server::Toolgate { auth: false },
        mode: Mode::Stateless,
        token: TokenSource::Direct,
    },
    Subject {
        key: FASTMCP,
        label: "FastMCP 4.2 (JWTVerifier)",
        server: Server::FastMcp,
        mode: Mode::Stateless,
        token: TokenSource::Direct,
    },
    Subject {
        key: BARE_AXUM,
        label: "bare axum (ceiling)",
        server: Server::BareAxum,
        mode: Mode::Stateless,
        token: TokenSource::Direct,
    },
    Subject {
        key: TOOLGATE_PROXY,
        label: "toolgate (proxy token, Redis)",
        server: Server::ToolgateProxy,
        mode: Mode::Stateless,
        token: TokenSource::ProxyIssued,
    },
    Subject {
        key: TOOLGATE_SESSION,
        label: "toolgate (auth on, session)",
        server: Server::Toolgate { auth: true },
        mode: Mode::Session,
        token: TokenSource::Direct,
    },
    Subject {
        key: TOOLGATE_PROXY_SESSION,
        label: "toolgate (proxy token, Redis, session)",
        server: Server::ToolgateProxy,
        mode: Mode::Session,
        token: TokenSource::ProxyIssued,
    },
    Subject {
        key: FASTMCP_SESSION,
        label: "FastMCP 4.2 (JWTVerifier, session)",
        server: Server::FastMcp,
        mode: Mode::Session,
        token: TokenSource::Direct,
    },
];

/// The token a subject is driven with, once its server runs. Servers with auth off get the direct
/// token too, so every server reads the same request bytes.
pub async fn token_for(
    source: TokenSource,
    direct_token: &str,
    server: &Running,
) -> Result<String, String> {
    match source {
        TokenSource::Direct => Ok(direct_token.to_owned()),
        TokenSource::ProxyIssued => proxy::sign_in(&server.base_url).await,
    }
}

/// The permissions alice's tokens carry (the example's tools declare them).
const PERMISSIONS: [&str; 3] = ["tool:get_user_info", "tool:read_audit_log", "tool:admin"];

/// The dev identity provider as Auth0, with alice signed in at once when toolgate's authorization
/// server sends a browser there (the proxy row's sign-in).
pub fn idp_config() -> DevIdpConfig {
    let permissions: Vec<String> = PERMISSIONS.map(String::from).to_vec();
    DevIdpConfig {
        permissions: permissions.clone(),
        auto_approve: Some(AutoApprove {
            user: "auth0|alice".into(),
            permissions,
        }),
        ..DevIdpConfig::default()
    }
}

/// Gets an access token for alice through the identity provider's password grant, as a user would.
pub async fn fetch_direct_token(http: &reqwest::Client, idp: &DevIdp) -> Result<String, String> {
    let permissions = PERMISSIONS.join(" ");
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "bench"),
        ("scope", "openid profile email"),
        ("client_id", idp.client_id()),
        ("client_secret", idp.client_secret()),
        ("audience", idp.audience()),
        ("permissions", permissions.as_str()),
    ];
    let response = http
        .post(format!("{}/oauth/token", idp.url()))
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("the token request failed: {e}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("the token reply is not JSON: {e}"))?;
    match body["access_token"].as_str() {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => Err(format!(
            "the identity provider refused the token request ({status}): {body}"
        )),
    }
}

/// A started server; killed when dropped.
pub struct Running {
    child: tokio::process::Child,
    pub pid: u32,
    pub base_url: String,
    pub mcp_url: String,
    pub log: PathBuf,
}

impl Running {
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// A clean environment: no stray AUTH_* or RUST_LOG of the caller's changes what is measured (and the
/// results folder, the working directory, has no `.env` for the server to read).
fn clean_command(program: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.env_clear();
    for name in ["PATH", "HOME", "LANG"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
}

/// `redis` is needed by the proxy subject only.
pub async fn launch(
    subject: &Subject,
    paths: &Paths,
    idp: &DevIdp,
    redis: Option<&Redis>,
) -> Result<Running, String> {
    let port = free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut command = match subject.server {
        Server::ToolgateProxy => {
            let redis = redis.ok_or("the proxy subject needs Redis")?;
            let (signing_key, storage_key) = proxy::server_keys();
            let mut command = clean_command(&paths.example_server);
            command
                .arg("--listen")
                .arg(addr.to_string())
                .env("RESOURCE_BASE_URL", format!("http://{addr}"))
                .env("AUTH_ENABLED", "true")
                .env("AUTH_PROVIDER", "auth0")
                .env("AUTH0_DOMAIN", idp.url())
                .env("AUTH0_CLIENT_ID", idp.client_id())
                .env("AUTH0_CLIENT_SECRET", idp.client_secret())
                .env("AUTH0_AUDIENCE", idp.audience())
                .env("JWT_SIGNING_KEY", signing_key)
                .env("STORAGE_ENCRYPTION_KEY", storage_key)
                .env("REDIS_HOST", "127.0.0.1")
                .env("REDIS_PORT", redis.port.to_string())
                // The consent cookie without `Secure` on plain-http loopback; the hot path is unchanged.
                .env("TOOLGATE_DEV_MODE", "true");
            command
        }
        Server::Toolgate { auth } => {
            let mut command = clean_command(&paths.example_server);
            command
                .arg("--listen")
                .arg(addr.to_string())
                .env("RESOURCE_BASE_URL", format!("http://{addr}"));
            if auth {
                command
                    .env("AUTH_ENABLED", "true")
                    .env("AUTH_PROVIDER", "auth0")
                    .env("AUTH0_DOMAIN", idp.url())
                    .env("AUTH0_CLIENT_ID", idp.client_id())
                    .env("AUTH0_CLIENT_SECRET", idp.client_secret())
                    .env("AUTH0_AUDIENCE", idp.audience());
            } else {
                // Named, so the example does not start its own dev identity provider.
                command.env("AUTH_ENABLED", "false");
            }
            command
        }
        Server::FastMcp => {
            let mut command = clean_command(&paths.python);
            command
                .arg(&paths.fastmcp_script)
                .arg("--port")
                .arg(port.to_string())
                .arg("--idp")
                .arg(idp.url())
                .arg("--audience")
                .arg(idp.audience());
            if subject.mode == Mode::Session {
                command.arg("--session");
            }
            command
        }
        Server::BareAxum => {
            let mut command = clean_command(&paths.bare_axum);
            command.arg("--listen").arg(addr.to_string());
            command
        }
    };
    if matches!(
        subject.server,
        Server::Toolgate { .. } | Server::ToolgateProxy
    ) {
        // Unset, the server runs in its default session mode (the environment is clean).
        if subject.mode == Mode::Stateless {
            command.env("TOOLGATE_STATELESS", "true");
        }
    }
    let log = paths.results.join(format!("{}.log", subject.key));
    let log_file =
        File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
    let mut child = command
        .current_dir(&paths.results)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", subject.label))?;
    let pid = child.id().ok_or("the server exited at once")?;
    wait_for_listener(&mut child, addr, &log).await?;
    Ok(Running {
        child,
        pid,
        base_url: format!("http://{addr}"),
        mcp_url: format!("http://{addr}/mcp"),
        log,
    })
}

async fn wait_for_listener(
    child: &mut tokio::process::Child,
    addr: SocketAddr,
    log: &Path,
) -> Result<(), String> {
    // FastMCP imports for a few seconds on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the server exited ({status}) before listening; see {}",
                log.display()
            ));
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the server did not listen on {addr} within 60 s; see {}",
                log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The addends every request carries (bench/call.lua's defaults) and the sum a correct reply holds.
pub const A: i64 = 20;
pub const B: i64 = 22;
pub const SUM: i64 = A + B;

/// The MCP protocol version every request names, and every session is opened with.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

pub fn call_body(id: &Value) -> String {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": A, "b": B}},
    })
    .to_string()
}

/// A POST to `/mcp` with the headers an MCP client at protocol version 2025-11-25 sends.
fn mcp_post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    session: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL_VERSION);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// A stateless `tools/call` of `add` with id 1, as the soak sends it.
pub fn call_request(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    mcp_post(http, url, token, None).body(call_body(&json!(1)))
}

/// The reply is a JSON-RPC success for request 1 whose first text content is the sum.
pub fn reply_is_the_sum(reply: &Value) -> bool {
    answers_the_sum(reply, &json!(1))
}

fn answers_the_sum(reply: &Value, id: &Value) -> bool {
    reply["jsonrpc"] == "2.0"
        && reply["id"] == *id
        && reply["result"]["isError"] != true
        && reply["result"]["content"][0]["text"] == SUM.to_string().as_str()
}

/// The JSON-RPC reply to request `id` in a body: the body itself when it is JSON, or the `data` of
/// the event that carries it when it is an SSE stream (which may open with a priming event whose
/// data is empty, as rmcp's does).
pub fn reply_to(content_type: &str, body: &str, id: &Value) -> Option<Value> {
    if !content_type.starts_with("text/event-stream") {
        return serde_json::from_str(body).ok();
    }
    let body = body.replace("\r\n", "\n");
    body.split("\n\n").find_map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| data.strip_prefix(' ').unwrap_or(data))
            .collect();
        let message: Value = serde_json::from_str(&data.join("\n")).ok()?;
        (message["id"] == *id).then_some(message)
    })
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|c| c.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Opens an MCP session as a client does: `initialize`, then `notifications/initialized`.
/// Returns its `Mcp-Session-Id`.
pub async fn open_session(
    http: &reqwest::Client,
    subject: &Subject,
    url: &str,
    token: &str,
) -> Result<String, String> {
    let fail = |step: &str, detail: &dyn std::fmt::Display| {
        format!("{}: opening a session, {step}: {detail}", subject.label)
    };
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "toolgate-bench", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    let response = mcp_post(http, url, Some(token), None)
        .body(initialize.to_string())
        .send()
        .await
        .map_err(|e| fail("initialize", &e))?;
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|s| s.to_str().ok())
        .map(str::to_owned);
    let kind = content_type(&response);
    let text = response.text().await.unwrap_or_default();
    let reply = reply_to(&kind, &text, &json!(0)).unwrap_or(Value::Null);
    let Some(session) = session.filter(|_| status == 200) else {
        return Err(fail(
            "initialize",
            &format!("HTTP {status} without an Mcp-Session-Id: {text}"),
        ));
    };
    if reply["result"]["protocolVersion"] != PROTOCOL_VERSION {
        return Err(fail(
            "initialize",
            &format!("the reply does not agree on {PROTOCOL_VERSION}: {text}"),
        ));
    }
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = mcp_post(http, url, Some(token), Some(&session))
        .body(initialized.to_string())
        .send()
        .await
        .map_err(|e| fail("notifications/initialized", &e))?;
    if response.status() != 202 {
        return Err(fail(
            "notifications/initialized",
            &format!("HTTP {}, not 202", response.status()),
        ));
    }
    Ok(session)
}

/// Ends a session as a client does when it is done: DELETE with its `Mcp-Session-Id` (a server may
/// answer 405 when it does not let clients end sessions).
pub async fn close_session(
    http: &reqwest::Client,
    subject: &Subject,
    url: &str,
    token: &str,
    session: &str,
) -> Result<(), String> {
    let response = http
        .delete(url)
        .bearer_auth(token)
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .header("mcp-session-id", session)
        .send()
        .await
        .map_err(|e| format!("{}: ending the session failed: {e}", subject.label))?;
    match response.status().as_u16() {
        200..=299 | 405 => Ok(()),
        status => Err(format!(
            "{}: ending the session got HTTP {status}",
            subject.label
        )),
    }
}

/// One `tools/call` of `add` with `id`, in `session` when there is one: it must answer the sum.
pub async fn check_call(
    http: &reqwest::Client,
    subject: &Subject,
    url: &str,
    token: &str,
    session: Option<&str>,
    id: &Value,
) -> Result<(), String> {
    let response = mcp_post(http, url, Some(token), session)
        .body(call_body(id))
        .send()
        .await
        .map_err(|e| format!("{}: the check call failed: {e}", subject.label))?;
    let status = response.status();
    let kind = content_type(&response);
    let text = response.text().await.unwrap_or_default();
    let reply = reply_to(&kind, &text, id).unwrap_or(Value::Null);
    if status != 200 || !answers_the_sum(&reply, id) {
        return Err(format!(
            "{}: add({A}, {B}) did not answer {SUM}: HTTP {status}: {text}",
            subject.label
        ));
    }
    Ok(())
}

/// Before and after load: the server answers the call with the right sum (in a session it opened
/// for the check, in session mode), and one that authenticates refuses the call without a token
/// (in session mode, though the call names a live session: a session id is no credential).
pub async fn check(
    http: &reqwest::Client,
    subject: &Subject,
    url: &str,
    token: &str,
) -> Result<(), String> {
    let session = match subject.mode {
        Mode::Stateless => None,
        Mode::Session => Some(open_session(http, subject, url, token).await?),
    };
    let session = session.as_deref();
    check_call(http, subject, url, token, session, &json!(1)).await?;
    if subject.server.authenticates() {
        let response = mcp_post(http, url, None, session)
            .body(call_body(&json!(2)))
            .send()
            .await
            .map_err(|e| format!("{}: the unauthenticated check failed: {e}", subject.label))?;
        if response.status() != 401 {
            return Err(format!(
                "{}: a call without a token got HTTP {}, not 401: is auth really on?",
                subject.label,
                response.status()
            ));
        }
    }
    if let Some(session) = session {
        close_session(http, subject, url, token, session).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_success_with_the_sum_counts_as_a_right_answer() {
        let ok = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "42"}], "isError": false}});
        assert!(reply_is_the_sum(&ok));
        let mut wrong_sum = ok.clone();
        wrong_sum["result"]["content"][0]["text"] = json!("41");
        assert!(!reply_is_the_sum(&wrong_sum));
        let mut tool_error = ok.clone();
        tool_error["result"]["isError"] = json!(true);
        assert!(!reply_is_the_sum(&tool_error));
        let rpc_error =
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "42"}});
        assert!(!reply_is_the_sum(&rpc_error));
    }

    #[test]
    fn the_reply_is_found_in_a_json_body_and_in_an_sse_stream() {
        let id = json!(7);
        let json_body = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"42"}],"isError":false}}"#;
        let reply = reply_to("application/json", json_body, &id).unwrap();
        assert!(answers_the_sum(&reply, &id));
        // rmcp: a priming event with empty data, then the message.
        let toolgate = "data: \nid: 0/0\nretry: 3000\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"42\"}],\"isError\":false}}\nid: 1/0\n\n";
        let reply = reply_to("text/event-stream", toolgate, &id).unwrap();
        assert!(answers_the_sum(&reply, &id));
        // FastMCP: a named event, CRLF line ends, other key order.
        let fastmcp = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"text\":\"42\",\"type\":\"text\"}],\"isError\":false,\"structuredContent\":{\"result\":42}}}\r\n\r\n";
        let reply = reply_to("text/event-stream", fastmcp, &id).unwrap();
        assert!(answers_the_sum(&reply, &id));
        // A stream that ended before its message, or a reply to another request, is no reply.
        assert_eq!(
            reply_to("text/event-stream", "data: \nid: 0/0\n\n", &id),
            None
        );
        assert_eq!(reply_to("text/event-stream", toolgate, &json!(8)), None);
    }

    #[test]
    fn every_subject_has_its_own_key_and_only_mcp_servers_run_in_session_mode() {
        for (i, subject) in SUBJECTS.iter().enumerate() {
            assert!(SUBJECTS[..i].iter().all(|s| s.key != subject.key));
            if subject.mode == Mode::Session {
                assert_ne!(subject.server, Server::BareAxum, "{}", subject.key);
            }
        }
    }
}
