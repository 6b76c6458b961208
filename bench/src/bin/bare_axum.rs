//! The ceiling: a bare axum handler that reads a JSON-RPC `tools/call` of `add(a, b)` and writes the
//! same reply toolgate writes, with no MCP machinery and no authentication. What toolgate adds on top
//! of HTTP and JSON is the distance from this line.
//!
//! ```text
//! bare-axum --listen 127.0.0.1:8100
//! ```

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Call {
    id: Value,
    method: String,
    params: CallParams,
}

#[derive(Deserialize)]
struct CallParams {
    name: String,
    arguments: AddArguments,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddArguments {
    a: i64,
    b: i64,
}

/// Field for field, in the same order, what toolgate answers for `add`.
#[derive(Serialize)]
struct Reply {
    jsonrpc: &'static str,
    id: Value,
    result: CallResult,
}

#[derive(Serialize)]
struct CallResult {
    content: [TextContent; 1],
    #[serde(rename = "isError")]
    is_error: bool,
}

#[derive(Serialize)]
struct TextContent {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

async fn mcp(body: axum::body::Bytes) -> Response {
    let call: Call = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(error) => {
            let reply = json!({"error": "invalid_request", "error_description": error.to_string()});
            return (StatusCode::BAD_REQUEST, Json(reply)).into_response();
        }
    };
    if call.method != "tools/call" || call.params.name != "add" {
        let reply = json!({"error": "invalid_request", "error_description": "only tools/call of add is served"});
        return (StatusCode::BAD_REQUEST, Json(reply)).into_response();
    }
    let AddArguments { a, b } = call.params.arguments;
    let Some(sum) = a.checked_add(b) else {
        let reply = json!({"error": "invalid_request", "error_description": "a + b overflows"});
        return (StatusCode::BAD_REQUEST, Json(reply)).into_response();
    };
    Json(Reply {
        jsonrpc: "2.0",
        id: call.id,
        result: CallResult {
            content: [TextContent {
                kind: "text",
                text: sum.to_string(),
            }],
            is_error: false,
        },
    })
    .into_response()
}

/// The ceiling of the benchmarks: the same JSON-RPC reply from a bare axum handler, with no MCP
/// and no auth.
#[derive(Parser)]
#[command(name = "bare-axum")]
struct Args {
    /// Address to listen on, like 127.0.0.1:8100
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() {
    // A usage error exits 2.
    let addr = Args::parse().listen;
    let app = Router::new()
        .route("/mcp", post(mcp))
        .route("/healthz", get(|| async { "ok" }));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = axum::serve(listener, app).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
