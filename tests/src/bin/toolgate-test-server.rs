//! A toolgate server configured from the environment only, as a deployment runs it: the tests start
//! several of these as separate processes sharing one Redis.

use serde_json::Value;
use toolgate::{AccessToken, Server, mcp_tool};

/// Returns the caller's verified claims, as the tool sees them.
#[mcp_tool]
async fn claims(token: AccessToken) -> Value {
    serde_json::to_value(token.claims()).unwrap_or_default()
}

/// Answers after `milliseconds`: a request still in flight when the server is told to stop.
#[mcp_tool]
async fn wait(milliseconds: u64) -> String {
    tokio::time::sleep(std::time::Duration::from_millis(milliseconds)).await;
    format!("waited {milliseconds} ms")
}

#[tokio::main]
async fn main() {
    // Logs to stderr, as a deployment's would; the tests read them.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rmcp=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let server = match Server::from_env() {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    // `--listen ADDR`: several instances behind one RESOURCE_BASE_URL, as behind a load balancer.
    let args: Vec<String> = std::env::args().collect();
    let addr = match args.iter().position(|a| a == "--listen") {
        Some(i) => match args.get(i + 1).and_then(|a| a.parse().ok()) {
            Some(addr) => addr,
            None => {
                eprintln!("error: --listen needs an address like 127.0.0.1:8000");
                std::process::exit(2);
            }
        },
        None => server.default_listen_addr(),
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {addr}: {error}");
            std::process::exit(3);
        }
    };
    // The parent waits for this line before it sends requests.
    println!("listening on {addr}");
    if let Err(error) = server.serve_on(listener).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
