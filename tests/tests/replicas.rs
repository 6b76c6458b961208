//! Replicas behind a real load balancer: HAProxy terminates TLS (the test CA), adds
//! `X-Forwarded-For`, and sends each request to the next of two toolgate processes that share one
//! Redis, with `RESOURCE_BASE_URL` the balancer's public https URL. No sticky routing: every step of
//! a sign-in lands on the other replica from the step before, and it still works.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use toolgate::EncryptedStore;
use toolgate_dev_idp::{AutoApprove, DevIdp, DevIdpConfig};
use toolgate_tests::flow::{Flow, Pkce, RegisteredClient, location};
use toolgate_tests::haproxy::Haproxy;
use toolgate_tests::processes::{Spawned, free_port};
use toolgate_tests::redis::RedisServer;
use toolgate_tests::{mcp_post_as, tools_call_body};

const SERVER: &str = env!("CARGO_BIN_EXE_toolgate-test-server");
const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const START: Duration = Duration::from_secs(60);

/// Two replicas behind HAProxy, sharing Redis and keys.
struct Deployment {
    idp: DevIdp,
    _redis: RedisServer,
    replicas: Vec<(Spawned, u16)>,
    proxy: Haproxy,
}

impl Deployment {
    async fn start(extra: &[(&str, &str)]) -> Self {
        let idp = toolgate_tests::start_idp(DevIdpConfig {
            auto_approve: Some(AutoApprove {
                user: "auth0|alice".into(),
                permissions: vec![],
            }),
            ..DevIdpConfig::default()
        })
        .await;
        let redis = RedisServer::start();
        let proxy_port = free_port();
        let public = url::Url::parse(&format!("https://localhost:{proxy_port}")).unwrap();
        let mut vars = toolgate_tests::auth0_vars(&idp, &public);
        vars.extend(redis.vars());
        vars.extend(
            [
                ("JWT_SIGNING_KEY", EncryptedStore::generate_key()),
                ("STORAGE_ENCRYPTION_KEY", EncryptedStore::generate_key()),
                ("TOOLGATE_STATELESS", "true".to_owned()),
                ("TOOLGATE_TRUSTED_PROXIES", "127.0.0.1".to_owned()),
                ("RUST_LOG", "info,rmcp=warn".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut replicas = Vec::new();
        for _ in 0..2 {
            let port = free_port();
            let mut command = Command::new(SERVER);
            command
                .env_clear()
                .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("TOOLGATE_LISTEN", format!("127.0.0.1:{port}"));
            let mut replica = Spawned::start("a replica", command);
            replica
                .wait_for_line(START, |line| line.starts_with("listening"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            replicas.push((replica, port));
        }
        let backends: Vec<_> = replicas
            .iter()
            .map(|(_, port)| ([127, 0, 0, 1], *port).into())
            .collect();
        let proxy = Haproxy::start_on(proxy_port, &backends).await;
        Self {
            idp,
            _redis: redis,
            replicas,
            proxy,
        }
    }

    fn logs(&self) -> String {
        let mut text = format!("haproxy:\n{}\n", self.proxy.log());
        for (i, (replica, _)) in self.replicas.iter().enumerate() {
            text.push_str(&format!("replica r{i}:\n{}\n", replica.log()));
        }
        text
    }
}

fn served_by(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-served-by")
        .expect("HAProxy names the replica")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_a_sign_in_may_land_on_another_replica() {
    let d = Deployment::start(&[]).await;
    let flow = Flow::new(d.proxy.url());
    let mut steps: Vec<(&str, String)> = Vec::new();

    // Register.
    let response = flow
        .register_raw(&json!({
            "redirect_uris": [REDIRECT],
            "client_name": "Behind the balancer",
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    steps.push(("register", served_by(&response)));
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let client = RegisteredClient {
        client_id: body["client_id"].as_str().unwrap().to_owned(),
        client_secret: body["client_secret"].as_str().map(str::to_owned),
        redirect_uri: REDIRECT.to_owned(),
    };

    // Authorize: the consent page and its cookie.
    let pkce = Pkce::new();
    let params = Flow::standard_params(&client, &pkce, "lb", "openid profile email");
    let response = flow.get(&flow.authorize_url(&params)).await;
    steps.push(("authorize", served_by(&response)));
    assert_eq!(response.status(), 200, "{}", d.logs());
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    };
    let (transaction, csrf) = (field("transaction"), field("csrf_token"));

    // Consent, on the other replica.
    let response = flow
        .post_consent(
            &[
                ("transaction", transaction.as_str()),
                ("csrf_token", csrf.as_str()),
                ("decision", "approve"),
            ],
            Some(&cookie),
        )
        .await;
    steps.push(("consent", served_by(&response)));
    assert_eq!(response.status(), 302, "{}", d.logs());
    let to_idp = location(&response);
    assert!(to_idp.starts_with(&d.idp.url()), "{to_idp}");

    // Auth0 (auto-approving) sends the browser to the public callback.
    let response = flow.get(&to_idp).await;
    assert_eq!(response.status(), 302);
    let callback = location(&response);
    assert!(
        callback.starts_with(&format!("{}/auth/callback", d.proxy.url())),
        "{callback}"
    );
    let response = flow.get(&callback).await;
    steps.push(("callback", served_by(&response)));
    assert_eq!(response.status(), 302, "{}", d.logs());
    let redirect = url::Url::parse(&location(&response)).unwrap();
    let code = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code for the client");

    // Token.
    let response = flow.exchange(&client, &code, &pkce.verifier).await;
    steps.push(("token", served_by(&response)));
    assert_eq!(response.status(), 200, "{}", d.logs());
    let tokens: Value = response.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // Calls.
    for _ in 0..2 {
        let response = mcp_post_as(
            &flow.http,
            &format!("{}/mcp", d.proxy.url()),
            tools_call_body("claims", json!({})),
            "2025-11-25",
        )
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
        steps.push(("call", served_by(&response)));
        assert_eq!(response.status(), 200, "{}", d.logs());
        let body = response.text().await.unwrap();
        assert!(body.contains("auth0|alice"), "{body}");
    }

    for pair in steps.windows(2) {
        assert_ne!(
            pair[0].1, pair[1].1,
            "{} and {} landed on the same replica: {steps:?}",
            pair[0].0, pair[1].0
        );
    }
}
