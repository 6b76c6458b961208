//! The permission hierarchy over real HTTP, against the dev-idp: a token holding a permission holds
//! what it implies, transitively, in the 403 pre-check, the guard, `tools/list` and
//! `require_permissions`; implications run downward only, and a prefix implies nothing.

use serde_json::{Value, json};
use toolgate::{AccessToken, Config, Permission, Server, ToolError, mcp_tool, require_permissions};
use toolgate_dev_idp::{DevIdp, DevIdpConfig};
use toolgate_tests::{TestServer, mcp_post, tools_call_body};

const READ: Permission = Permission::new("tool:read", "Read the records");
const WRITE: Permission = Permission::new("tool:write", "Change the records").implies(&[READ]);
const ADMIN: Permission = Permission::new("tool:admin", "Everything").implies(&[WRITE]);
const AUDIT: Permission = Permission::new("tool:audit", "Read the audit log");
/// No tool requires it: the server learns it from `ServerBuilder::permissions`.
const OWNER: Permission = Permission::new("tool:owner", "Owns the records").implies(&[WRITE]);

#[mcp_tool(description = "Reads", permissions = [READ])]
async fn read() -> String {
    "read".into()
}

#[mcp_tool(description = "Writes", permissions = [WRITE])]
async fn write() -> String {
    "written".into()
}

#[mcp_tool(description = "Audits: needs the auditor and the admin", permissions = [AUDIT, ADMIN])]
async fn audit() -> String {
    "audited".into()
}

/// Checks by hand, as a tool body would, for the permission given as a literal.
#[mcp_tool]
async fn check(token: AccessToken, permission: String) -> Result<bool, ToolError> {
    let permission: &str = &permission;
    require_permissions(&token, &[permission])?;
    Ok(token.has_permissions(&[READ]))
}

struct Setup {
    idp: DevIdp,
    server: TestServer,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let idp = DevIdp::start(DevIdpConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = TestServer::start(|base| {
        Server::builder()
            .config(Config::from_vars(toolgate_tests::auth0_vars(&idp, &base)).unwrap())
            .stateless(true)
            .tool::<read>()
            .tool::<write>()
            .tool::<audit>()
            .tool::<check>()
            .permissions(&[OWNER])
    })
    .await;
    Setup {
        idp,
        server,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    async fn call(&self, permissions: &[&str], tool: &str, arguments: Value) -> reqwest::Response {
        let token = self.idp.user_token("auth0|alice", permissions);
        mcp_post(
            &self.http,
            &self.server.mcp_url(),
            tools_call_body(tool, arguments),
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
    }

    async fn status(&self, permissions: &[&str], tool: &str) -> u16 {
        self.call(permissions, tool, json!({}))
            .await
            .status()
            .as_u16()
    }

    async fn listed(&self, permissions: &[&str]) -> Vec<String> {
        let token = self.idp.user_token("auth0|alice", permissions);
        let client = self.server.client(Some(&token)).await.unwrap();
        let names = client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.into_owned())
            .collect();
        client.cancel().await.unwrap();
        names
    }
}

#[tokio::test]
async fn a_permission_grants_what_it_implies_transitively() {
    let s = setup().await;
    assert_eq!(s.status(&["tool:admin"], "read").await, 200);
    assert_eq!(s.status(&["tool:admin"], "write").await, 200);
    assert_eq!(s.status(&["tool:write"], "read").await, 200);
    assert_eq!(s.listed(&["tool:admin"]).await, ["check", "read", "write"]);
    assert_eq!(s.listed(&["tool:write"]).await, ["check", "read", "write"]);
    assert_eq!(s.listed(&["tool:read"]).await, ["check", "read"]);
}

#[tokio::test]
async fn a_permission_no_tool_requires_grants_once_the_server_knows_it() {
    let s = setup().await;
    assert_eq!(s.status(&["tool:owner"], "write").await, 200);
    assert_eq!(s.status(&["tool:owner"], "read").await, 200);
    assert_eq!(s.status(&["tool:owner"], "audit").await, 403);
}

#[tokio::test]
async fn implications_run_downward_only_and_a_prefix_implies_nothing() {
    let s = setup().await;
    assert_eq!(s.status(&["tool:read"], "write").await, 403);
    for prefix in ["tool:", "tool:adm", "tool:admi", "tool:wr"] {
        assert_eq!(s.status(&[prefix], "read").await, 403, "{prefix}");
    }
    assert_eq!(s.listed(&["tool:adm"]).await, ["check"]);
}

#[tokio::test]
async fn the_challenge_names_every_permission_the_tool_declares() {
    let s = setup().await;
    // `tool:admin` is held, so only `tool:audit` is missing; the challenge still names both.
    let response = s.call(&["tool:admin"], "audit", json!({})).await;
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("scope=\"tool:audit tool:admin\""),
        "{challenge}"
    );
    assert_eq!(s.status(&["tool:audit", "tool:admin"], "audit").await, 200);
}

#[tokio::test]
async fn require_permissions_and_has_permissions_follow_the_same_policy() {
    let s = setup().await;
    let reply: Value = s
        .call(
            &["tool:admin"],
            "check",
            json!({ "permission": "tool:write" }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["result"]["content"][0]["text"], "true", "{reply}");

    let reply: Value = s
        .call(
            &["tool:write"],
            "check",
            json!({ "permission": "tool:admin" }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply["error"]["data"]["missing_permissions"],
        json!(["tool:admin"]),
        "{reply}"
    );
}

#[tokio::test]
async fn scopes_supported_lists_the_catalog_with_what_implies_reaches() {
    let s = setup().await;
    let metadata: Value = s
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            s.server.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["scopes_supported"],
        json!([
            "openid",
            "profile",
            "email",
            "tool:admin",
            "tool:audit",
            "tool:owner",
            "tool:read",
            "tool:write"
        ])
    );
}
