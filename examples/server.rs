//! The seed's tools, served by toolgate.
//!
//! With no configuration it runs in dev mode: a local Auth0 stand-in (the dev-idp) on a loopback port,
//! the real Auth0 provider pointed at it, toolgate's own authorization server in front of it (so an
//! MCP client can register, sign in on the dev-idp's login page and get tokens), and an in-memory
//! store (Redis when `REDIS_HOST` is set). With the seed's variables (`AUTH_ENABLED`, `AUTH0_DOMAIN`,
//! ...) it uses them.
//!
//! ```text
//! cargo run --example server                       # dev mode
//! cargo run --example server -- --listen 0.0.0.0:8000
//! cargo run --example server -- --print-permissions [--json]
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;

use clap::Parser;
use schemars::JsonSchema;
use serde::Serialize;
use toolgate::{AccessToken, Audience, Config, Permission, Server, ToolError, UserInfo, mcp_tool};
use toolgate_dev_idp::{DevIdp, DevIdpConfig};

#[derive(Serialize, JsonSchema)]
struct UserInfoReply {
    issuer: String,
    audience: Audience,
    scope: Option<String>,
    permissions: Vec<String>,
    user_info: UserInfo,
}

/// The permission catalog: what `--print-permissions` lists for Auth0, with these descriptions.
mod perms {
    use super::Permission;

    pub const GET_USER_INFO: Permission =
        Permission::new("tool:get_user_info", "Read the caller's Auth0 profile");
    pub const READ_AUDIT_LOG: Permission =
        Permission::new("tool:read_audit_log", "Read the audit log");
    /// Holding it holds both of the others.
    pub const ADMIN: Permission = Permission::new("tool:admin", "Every tool of this server")
        .implies(&[GET_USER_INFO, READ_AUDIT_LOG]);
}

use perms::{ADMIN, GET_USER_INFO, READ_AUDIT_LOG};

#[mcp_tool(name = "get_user_info", description = "Return auth user info", permissions = [GET_USER_INFO])]
async fn get_user_info(token: AccessToken) -> Result<UserInfoReply, ToolError> {
    let claims = token.claims();
    Ok(UserInfoReply {
        issuer: claims.iss.clone(),
        audience: claims.aud.clone(),
        scope: claims.scope.clone(),
        permissions: claims.permissions.clone(),
        user_info: token.user_info().await?,
    })
}

/// Add two integers.
#[mcp_tool]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[derive(Serialize, JsonSchema)]
struct Whoami {
    subject: String,
    client: Option<String>,
    scopes: Vec<String>,
    permissions: Vec<String>,
}

/// Who is calling: the token's subject, client, scopes and permissions.
#[mcp_tool]
async fn whoami(token: AccessToken) -> Whoami {
    Whoami {
        subject: token.claims().sub.clone(),
        client: token.claims().azp.clone(),
        scopes: token.scopes().map(str::to_owned).collect(),
        permissions: token.permissions().to_vec(),
    }
}

/// Read the audit log: needs both the reader and the admin permission.
#[mcp_tool(permissions = [READ_AUDIT_LOG, ADMIN])]
async fn read_audit_log(
    #[arg(description = "how many entries, newest first")] limit: Option<u32>,
) -> Vec<String> {
    let entries = [
        "alice signed in",
        "bob read a report",
        "alice changed a setting",
    ];
    entries
        .iter()
        .take(limit.unwrap_or(10) as usize)
        .map(|e| e.to_string())
        .collect()
}

/// The seed's tools, served by toolgate: dev mode with a local Auth0 stand-in unless the
/// environment configures auth (AUTH_ENABLED, AUTH_PROVIDER, AUTH0_DOMAIN, ...).
#[derive(Parser)]
#[command(name = "server")]
struct Args {
    /// Address to listen on, like 127.0.0.1:8000 [default: RESOURCE_BASE_URL's port]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Print every permission a tool or an `implies` uses, with its description, and exit
    #[arg(long)]
    print_permissions: bool,
    /// With --print-permissions: as JSON, the shape of Auth0's API scopes
    #[arg(long)]
    json: bool,
}

/// `--help` prints and exits 0; a usage error exits 1, as every other failure of this example.
fn parse_args() -> Args {
    Args::try_parse().unwrap_or_else(|error| {
        let code = if error.use_stderr() { 1 } else { 0 };
        let _ = error.print();
        std::process::exit(code)
    })
}

/// Dev mode when nothing about auth is configured at all.
fn wants_dev_mode(vars: &HashMap<String, String>) -> bool {
    !["AUTH_ENABLED", "AUTH_PROVIDER", "AUTH0_DOMAIN"]
        .iter()
        .any(|v| vars.contains_key(*v))
}

/// Every permission a tool or an `implies` uses, with its description: what to create in Auth0.
fn print_permissions(server: &Server, json: bool) {
    let permissions: Vec<serde_json::Value> = server
        .registry()
        .permissions()
        .map(|(permission, description)| {
            serde_json::json!({ "value": permission.scope(), "description": description })
        })
        .collect();
    if json {
        // The shape of the Auth0 Management API's `scopes` for an API (Permissions tab).
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "scopes": permissions })).unwrap()
        );
    } else {
        for p in permissions {
            println!(
                "{}\t{}",
                p["value"].as_str().unwrap(),
                p["description"].as_str().unwrap()
            );
        }
    }
}

#[tokio::main]
async fn main() {
    // rmcp logs three INFO lines for every stateless request (one service per request); at the
    // default level they would dominate the log and cost a fifth of the throughput.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rmcp=warn".into()),
        )
        .init();
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    if args.print_permissions {
        print_permissions(&Server::builder().build()?, args.json);
        return Ok(());
    }
    let mut vars = Config::env_vars();
    let mut dev_idp = None;
    if wants_dev_mode(&vars) {
        let permissions: Vec<String> = Server::builder()
            .build()?
            .registry()
            .declared_permissions()
            .into_iter()
            .map(String::from)
            .collect();
        let idp = DevIdp::start(
            DevIdpConfig {
                permissions,
                ..DevIdpConfig::default()
            },
            "127.0.0.1:0".parse()?,
        )
        .await?;
        vars.insert("AUTH_ENABLED".into(), "true".into());
        vars.insert("AUTH_PROVIDER".into(), "auth0".into());
        vars.insert("AUTH0_DOMAIN".into(), idp.url());
        vars.insert("AUTH0_CLIENT_ID".into(), idp.client_id().into());
        vars.insert("AUTH0_CLIENT_SECRET".into(), idp.client_secret().into());
        vars.insert("AUTH0_AUDIENCE".into(), idp.audience().into());
        // A fresh random key per run: 32 random bytes, the same material a Fernet key is made of.
        vars.entry("JWT_SIGNING_KEY".into())
            .or_insert_with(toolgate::EncryptedStore::generate_key);
        // With REDIS_HOST, records are encrypted under a per-run key unless one is given: a
        // restart then signs everyone out, which dev mode can afford.
        vars.entry("STORAGE_ENCRYPTION_KEY".into())
            .or_insert_with(toolgate::EncryptedStore::generate_key);
        vars.insert("TOOLGATE_DEV_MODE".into(), "true".into());
        dev_idp = Some(idp);
    }
    let server = Server::builder().config(Config::from_vars(vars)?).build()?;
    let addr = args.listen.unwrap_or_else(|| server.default_listen_addr());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    print_banner(&server, dev_idp.as_ref(), listener.local_addr()?);
    server.serve_on(listener).await?;
    if let Some(idp) = dev_idp {
        idp.shutdown().await;
    }
    Ok(())
}

fn print_banner(server: &Server, dev_idp: Option<&DevIdp>, listening: SocketAddr) {
    let tools: Vec<&str> = server.registry().defs().map(|d| d.name).collect();
    println!();
    match dev_idp {
        Some(_) => {
            let store = if server.config().redis.is_some() {
                "Redis"
            } else {
                "in-memory store"
            };
            println!("toolgate example server, DEV MODE (local Auth0 stand-in, {store})")
        }
        None => println!("toolgate example server"),
    }
    println!(
        "  MCP endpoint:  {}  (listening on {listening})",
        server.config().resource_uri()
    );
    println!("  tools:         {}", tools.join(", "));
    let Some(idp) = dev_idp else {
        println!();
        return;
    };
    let permissions: Vec<&str> = server
        .registry()
        .declared_permissions()
        .into_iter()
        .collect();
    println!(
        "  dev Auth0:     {}  (login page: {}/authorize)",
        idp.issuer(),
        idp.url()
    );
    println!();
    println!(
        "Sign in from any MCP client: point it at the MCP endpoint. It registers, you approve on our"
    );
    println!(
        "consent page, then sign in as alice or bob on the dev login page and pick permissions."
    );
    println!(
        "  npx @modelcontextprotocol/inspector   # transport: Streamable HTTP, URL: {}",
        server.config().resource_uri()
    );
    println!();
    println!(
        "Or, like a machine-to-machine client, fetch a dev Auth0 token for alice with every permission:"
    );
    println!(
        "  TOKEN=$(curl -s {}/oauth/token -d grant_type=password -d username=alice -d password=dev \\\n    -d client_id={} -d client_secret={} -d audience={} \\\n    -d 'scope=openid profile email' -d 'permissions={}' | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')",
        idp.url(),
        idp.client_id(),
        idp.client_secret(),
        idp.audience(),
        permissions.join(" ")
    );
    println!("Then call a tool:");
    println!(
        "  npx @modelcontextprotocol/inspector --cli {} --transport http --header \"Authorization: Bearer $TOKEN\" --method tools/call --tool-name get_user_info",
        server.config().resource_uri()
    );
    println!();
}
