//! A toolgate server configured from the environment only, as a deployment runs it: the tests start
//! several of these as separate processes sharing one Redis.

use std::net::SocketAddr;

use clap::Parser;
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

/// A toolgate server configured from the environment only, with the tools `claims` and `wait`.
#[derive(Parser)]
#[command(name = "toolgate-test-server")]
struct Args {
    /// Address to listen on: several instances behind one RESOURCE_BASE_URL, as behind a load
    /// balancer [default: RESOURCE_BASE_URL's port]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() {
    // A usage error exits 2, as a configuration error does.
    let args = Args::parse();
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
    let addr = args.listen.unwrap_or_else(|| server.default_listen_addr());
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
