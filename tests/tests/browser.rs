//! A real browser through toolgate's sign-in: Debian's Chromium, headless, driven by
//! playwright-core (`tests/peers/browser`), against the example server in proxy mode with the
//! dev-idp's login page as Auth0's and a real Redis.
//!
//! The test plays the client application too: a small HTTP server on another loopback port owns the
//! registered redirect URI (so the landing is observed here, not only by the browser), and serves
//! the pages an attacker would: one that frames the consent page, one that forges the approval.
//!
//! Needs `scripts/install-peers.sh` to have run (it installs Chromium and playwright-core).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, RawQuery, State};
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use toolgate_dev_idp::{DevIdp, DevIdpConfig};
use toolgate_tests::flow::{Flow, Pkce, RegisteredClient};
use toolgate_tests::processes::{ExampleServer, Upstream, peer_node, run_client};
use toolgate_tests::redis::RedisServer;

const EXAMPLE_SERVER: &str = env!("CARGO_BIN_EXE_toolgate-example-server");
/// Debian's build; playwright-core drives it and never downloads one of its own.
const CHROMIUM: &str = "/usr/bin/chromium";
const CLIENT_NAME: &str = "Browser Test App";
const STATE: &str = "browser-state-7";
/// Chromium starts slowly while cargo compiles on both cores.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

/// The client application's web server: its redirect URI records every landing.
struct ClientApp {
    addr: SocketAddr,
    landings: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Deserialize)]
struct FrameQuery {
    src: String,
}

#[derive(Deserialize)]
struct ForgeQuery {
    action: String,
    transaction: String,
}

fn attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

impl ClientApp {
    async fn start() -> Self {
        let landings = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route(
                "/callback",
                get(
                    |State(landings): State<Arc<Mutex<Vec<String>>>>,
                     RawQuery(query): RawQuery| async move {
                        landings.lock().unwrap().push(query.unwrap_or_default());
                        Html("<!doctype html><title>App</title><h1 id=\"landed\">Signed in to the app</h1>")
                    },
                ),
            )
            // Another origin framing whatever it is given, next to a page that allows framing.
            .route(
                "/frame",
                get(|Query(q): Query<FrameQuery>| async move {
                    Html(format!(
                        "<!doctype html><title>Framer</title>\
                         <iframe name=\"consent\" src=\"{}\" width=\"600\" height=\"400\"></iframe>\
                         <iframe name=\"control\" src=\"/framed\" width=\"300\" height=\"100\"></iframe>",
                        attribute(&q.src)
                    ))
                }),
            )
            .route(
                "/framed",
                get(|| async { Html("<!doctype html><p id=\"framed\">framing works here</p>") }),
            )
            // A cross-origin page that approves a consent transaction it learnt, without the
            // CSRF token, as soon as it loads.
            .route(
                "/forge",
                get(|Query(q): Query<ForgeQuery>| async move {
                    Html(format!(
                        "<!doctype html><title>Forger</title>\
                         <form method=\"post\" action=\"{}\">\
                         <input type=\"hidden\" name=\"transaction\" value=\"{}\">\
                         <input type=\"hidden\" name=\"decision\" value=\"approve\"></form>\
                         <script>document.forms[0].submit()</script>",
                        attribute(&q.action),
                        attribute(&q.transaction)
                    ))
                }),
            )
            .with_state(Arc::clone(&landings));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            landings,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }
}

impl Drop for ClientApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_through_the_consent_page_which_refuses_framing_and_forgery() {
    let redis = RedisServer::start();
    let permissions = ExampleServer::declared_permissions(EXAMPLE_SERVER).await;
    let idp = DevIdp::start(
        DevIdpConfig {
            permissions: permissions.clone(),
            ..DevIdpConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let upstream = Upstream::of(&idp);
    let server = ExampleServer::start(EXAMPLE_SERVER, &upstream, &redis).await;
    let app = ClientApp::start().await;

    // The application registers itself and builds its authorization request.
    let flow = Flow::new(server.base_url());
    let redirect_uri = format!("{}/callback", app.url());
    let response = flow
        .register_raw(&json!({
            "redirect_uris": [redirect_uri],
            "client_name": CLIENT_NAME,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    assert_eq!(response.status(), 201);
    let registration: Value = response.json().await.unwrap();
    let client = RegisteredClient {
        client_id: registration["client_id"].as_str().unwrap().to_owned(),
        client_secret: None,
        redirect_uri: redirect_uri.clone(),
    };
    let pkce = Pkce::new();
    let scope = format!("openid email {}", permissions.join(" "));
    let mcp_url = server.mcp_url();
    let mut params = Flow::standard_params(&client, &pkce, STATE, &scope);
    params.push(("resource", &mcp_url));
    let authorize_url = flow.authorize_url(&params);

    assert!(
        std::path::Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: run scripts/install-peers.sh, which installs Debian's chromium"
    );
    let node = peer_node("browser");
    let app_url = app.url();
    let report = run_client(
        "browser",
        &node,
        &[
            "consent_flow.mjs",
            "--authorize-url",
            &authorize_url,
            "--app-url",
            &app_url,
            "--redirect-uri",
            &redirect_uri,
            "--user",
            "auth0|bob",
            "--chromium",
            CHROMIUM,
        ],
        BROWSER_TIMEOUT,
    )
    .await;
    let context = format!("{report:#}\nserver log:\n{}", server.log());

    // Framed by another origin, the consent page renders nothing, while the same browser renders a
    // page that allows framing.
    let framing = &report["framing"];
    assert_eq!(
        framing["control_rendered"], "framing works here",
        "{context}"
    );
    assert_eq!(framing["consent_approve_buttons"], 0, "{context}");
    assert_eq!(framing["consent_client_name"], Value::Null, "{context}");
    assert!(
        report["console"].as_array().unwrap().iter().any(|m| {
            let m = m.as_str().unwrap();
            m.contains("frame-ancestors") || m.contains("X-Frame-Options")
        }),
        "Chromium says why it refused the frame: {context}"
    );

    // The consent page names the application, where the code goes, and what is asked.
    let consent = &report["consent"];
    assert_eq!(consent["status"], 200, "{context}");
    assert_eq!(consent["title"], "Allow access?");
    assert_eq!(consent["client_name"], CLIENT_NAME);
    assert_eq!(
        consent["redirect_host"],
        format!("127.0.0.1:{}", app.addr.port())
    );
    let mut shown: Vec<String> = serde_json::from_value(consent["permissions"].clone()).unwrap();
    shown.sort();
    let mut asked = permissions.clone();
    asked.sort();
    assert_eq!(shown, asked, "{context}");
    assert_eq!(consent["buttons"], json!(["Approve", "Deny"]));
    assert_eq!(consent["x_frame_options"], "DENY");
    assert!(
        consent["content_security_policy"]
            .as_str()
            .unwrap()
            .contains("frame-ancestors 'none'"),
        "{context}"
    );

    // The forged approval carried the consent cookie but no CSRF token, and was refused.
    let forged = &report["forged"];
    assert_eq!(forged["sent_consent_cookie"], true, "{context}");
    assert_eq!(forged["sent_csrf_token"], false);
    assert_eq!(forged["status"], 403, "{context}");
    assert!(
        forged["page_text"]
            .as_str()
            .unwrap()
            .contains("did not come from the consent page"),
        "{context}"
    );

    // After Approve: the dev-idp's login page, for toolgate's own client and callback.
    let login = &report["idp_login"];
    assert_eq!(login["origin"], idp.url(), "{context}");
    assert_eq!(login["path"], "/authorize");
    let login_text = login["text"].as_str().unwrap();
    assert!(login_text.contains(idp.client_id()), "{context}");
    assert!(
        login_text.contains(&format!("{}/auth/callback", server.base_url())),
        "{context}"
    );
    assert_eq!(login["users"], json!(["auth0|alice", "auth0|bob"]));

    // The browser landed on the application's redirect URI with a code, its state and our issuer.
    let landed = &report["landed"];
    assert_eq!(landed["origin"], app.url(), "{context}");
    assert_eq!(landed["path"], "/callback");
    assert_eq!(landed["page_text"], "Signed in to the app");
    assert_eq!(landed["params"]["state"], STATE);
    assert_eq!(landed["params"]["iss"], server.base_url());
    let code = landed["params"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {context}"));
    let landings = app.landings.lock().unwrap().clone();
    assert_eq!(landings.len(), 1, "the application saw one landing");
    assert!(
        landings[0].contains(&format!("code={code}")),
        "{landings:?}"
    );

    // The code is good: the application exchanges it for a token that names the user picked.
    let response = flow.exchange(&client, code, &pkce.verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let mcp = toolgate_tests::mcp_client(&server.mcp_url(), tokens["access_token"].as_str())
        .await
        .unwrap();
    let whoami = mcp
        .call_tool(rmcp::model::CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    assert_eq!(
        whoami.structured_content.unwrap()["subject"],
        "auth0|bob",
        "{context}"
    );
    mcp.cancel().await.unwrap();
}
