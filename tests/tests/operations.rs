//! How a replica behaves in its platform's hands: SIGTERM drains it (in-flight requests finish,
//! sessions and their streams close, no new connections, exit status 0), and `TOOLGATE_LISTEN`
//! says where it binds. Each case runs `toolgate-test-server`, configured from the environment only.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use toolgate_tests::processes::{Spawned, free_port};
use toolgate_tests::{mcp_post, mcp_post_as, tools_call_body};

const SERVER: &str = env!("CARGO_BIN_EXE_toolgate-test-server");
const START: Duration = Duration::from_secs(60);

/// A test server on a free port with auth off, plus `vars`.
async fn start(vars: &[(&str, &str)]) -> (Spawned, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(SERVER);
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("RESOURCE_BASE_URL", &base)
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied());
    let mut server = Spawned::start("toolgate-test-server", command);
    server
        .wait_for_line(START, |line| line.starts_with("listening"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (server, base)
}

fn terminate(server: &Spawned) {
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_closes_sessions_and_exits_zero() {
    let (mut server, base) = start(&[("TOOLGATE_SHUTDOWN_GRACE", "20")]).await;
    let mcp = format!("{base}/mcp");
    let http = toolgate_tests::tls::http_client();

    // A session with its event stream open, as an MCP client keeps one.
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": { "name": "operations-test", "version": "1" } }
    });
    let response = mcp_post(&http, &mcp, initialize.to_string())
        .send()
        .await
        .unwrap();
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    mcp_post(
        &http,
        &mcp,
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string(),
    )
    .header("mcp-session-id", &session)
    .send()
    .await
    .unwrap();
    let stream = http
        .get(&mcp)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let stream_ended = tokio::spawn(async move {
        let mut stream = stream;
        while let Ok(Some(_)) = stream.chunk().await {}
    });

    // A call in that session, on a connection of its own, still running at SIGTERM.
    let in_flight = tokio::spawn({
        let mcp = mcp.clone();
        async move {
            mcp_post_as(
                &toolgate_tests::tls::http_client(),
                &mcp,
                tools_call_body("wait", json!({ "milliseconds": 1500 })),
                "2025-11-25",
            )
            .header("mcp-session-id", &session)
            .send()
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    terminate(&server);

    let reply = in_flight
        .await
        .unwrap()
        .expect("the in-flight call is answered");
    assert_eq!(reply.status(), 200);
    let body = reply.text().await.unwrap();
    assert!(body.contains("waited 1500 ms"), "{body}");
    tokio::time::timeout(Duration::from_secs(15), stream_ended)
        .await
        .expect("the session's event stream is closed")
        .unwrap();
    let status = server
        .wait_for_exit(Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    assert!(
        server.log().contains("shutting down"),
        "the log says so:\n{}",
        server.log()
    );
    // Nothing listens any more.
    assert!(
        toolgate_tests::tls::http_client()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_grace_the_server_exits_anyway() {
    let (mut server, base) = start(&[("TOOLGATE_SHUTDOWN_GRACE", "1")]).await;
    let mcp = format!("{base}/mcp");
    let stuck = tokio::spawn(async move {
        let http = toolgate_tests::tls::http_client();
        let initialize = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": { "name": "operations-test", "version": "1" } }
        });
        let response = mcp_post(&http, &mcp, initialize.to_string())
            .send()
            .await
            .unwrap();
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        mcp_post(
            &http,
            &mcp,
            tools_call_body("wait", json!({ "milliseconds": 60000 })),
        )
        .header("mcp-session-id", &session)
        .send()
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&server);
    // Well before the minute-long call could end (wait_for_exit fails the test after 30 s).
    let status = server
        .wait_for_exit(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    assert!(
        server.log().contains("dropped"),
        "the log says a request was cut off:\n{}",
        server.log()
    );
    stuck.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toolgate_listen_says_where_serve_binds() {
    // `toolgate-test-server` without --listen binds where `Server::serve` would.
    let port = free_port();
    let mut command = Command::new(SERVER);
    command
        .env_clear()
        .env("RESOURCE_BASE_URL", "https://mcp.example.com")
        .env("TOOLGATE_LISTEN", format!("127.0.0.1:{port}"));
    let mut server = Spawned::start("toolgate-test-server", command);
    let line = server
        .wait_for_line(START, |line| line.starts_with("listening"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(line, format!("listening on 127.0.0.1:{port}"));
    let response = toolgate_tests::tls::http_client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .header("host", "mcp.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
