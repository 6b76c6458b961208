//! TLS on the Auth0 leg fails closed, and says why: an identity provider whose certificate must be
//! refused (an unknown authority, another host's name, expired) gets every request a 503 with
//! `Retry-After`, and the log names the host and the problem in words a person can act on, never a
//! token. Its own binary: it captures the process's log.

use serde_json::json;
use toolgate::{Config, Server, mcp_tool};
use toolgate_dev_idp::tls::Validity;
use toolgate_dev_idp::{DevIdp, DevIdpConfig};
use toolgate_tests::logs::CapturedLogs;
use toolgate_tests::tls::{pki, untrusted_ca};
use toolgate_tests::{TestServer, mcp_post, tools_call_body};

#[mcp_tool(description = "Needs tool:x", permissions = ["tool:x"])]
async fn needs_x() -> String {
    "x".into()
}

fn auth_vars(idp: &DevIdp, base: &url::Url) -> Vec<(String, String)> {
    toolgate_tests::auth0_vars(idp, base)
}

/// Auth0 behind a certificate toolgate must refuse: every request fails closed, and the log says
/// what is wrong with the certificate, for which host, without the token.
#[tokio::test]
async fn an_identity_provider_with_a_bad_certificate_fails_closed_and_the_log_says_why() {
    let cases = [
        (
            "an unknown authority",
            untrusted_ca().localhost().unwrap(),
            "is signed by an unknown authority; set SSL_CERT_FILE if you use a private CA",
        ),
        (
            "another host's certificate",
            pki().issue(&["other.example.com"], Validity::Current),
            "is not valid for that name",
        ),
        (
            "an expired certificate",
            pki().issue(&["localhost", "127.0.0.1"], Validity::Expired),
            "has expired",
        ),
    ];
    for (case, certificate, explanation) in cases {
        let logs = CapturedLogs::global();
        let idp = DevIdp::start(
            DevIdpConfig {
                tls: Some(certificate),
                ..DevIdpConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let token = idp.user_token("auth0|alice", &["tool:x"]);
        let server = TestServer::start(|base| {
            Server::builder()
                .config(Config::from_vars(auth_vars(&idp, &base)).unwrap())
                .tool::<needs_x>()
        })
        .await;
        let response = mcp_post(
            &toolgate_tests::tls::http_client(),
            &server.mcp_url(),
            tools_call_body("needs_x", json!({})),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), 503, "{case}");
        assert!(response.headers().contains_key("retry-after"), "{case}");
        let body = response.text().await.unwrap();
        assert!(body.contains("temporarily_unavailable"), "{case}: {body}");

        let log = logs.text();
        let host = idp.domain();
        assert!(
            log.lines()
                .any(|line| line.contains(&host) && line.contains(explanation)),
            "{case}: the log names {host} and the problem:\n{log}"
        );
        assert!(!log.contains(&token), "{case}: the token reached the log");
    }
}
