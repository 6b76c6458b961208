//! A scripted MCP client for the OAuth flow: what a real client does (register, authorize with PKCE,
//! approve the consent page, follow the identity provider back, exchange the code), step by step
//! over real HTTP, with no redirect followed unless the test says so.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

/// A registered client.
#[derive(Clone, Debug)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
}

/// A PKCE pair.
#[derive(Clone, Debug)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// The consent page as a browser holds it: the form's fields and the cookie that came with it.
#[derive(Clone, Debug)]
pub struct ConsentPage {
    pub html: String,
    pub transaction: String,
    pub csrf_token: String,
    /// `name=value`, ready for a `Cookie` header.
    pub cookie: String,
    /// The whole `Set-Cookie` header, for attribute checks.
    pub set_cookie: String,
}

/// Where the client's redirect URI was called with: `code`/`state`/`iss` or `error`.
#[derive(Clone, Debug)]
pub struct ClientRedirect {
    pub url: Url,
}

impl ClientRedirect {
    pub fn param(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// The scripted client for one authorization server.
#[derive(Clone)]
pub struct Flow {
    pub base: String,
    pub http: reqwest::Client,
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header on a {} answer", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn form_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no `{name}` field in the page:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

impl Flow {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            // The identity provider it is sent to serves HTTPS with the test CA's certificate.
            http: crate::tls::http_client_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// `POST /register` with this JSON, raw.
    pub async fn register_raw(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/register", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Registers a client for `redirect_uri`: public (`none`) or confidential (`client_secret_post`).
    pub async fn register(&self, redirect_uri: &str, confidential: bool) -> RegisteredClient {
        let method = if confidential {
            "client_secret_post"
        } else {
            "none"
        };
        let response = self
            .register_raw(&json!({
                "redirect_uris": [redirect_uri],
                "client_name": "Scripted test client",
                "token_endpoint_auth_method": method,
                "grant_types": ["authorization_code", "refresh_token"],
            }))
            .await;
        assert_eq!(response.status(), 201, "registration");
        let body: Value = response.json().await.unwrap();
        RegisteredClient {
            client_id: body["client_id"].as_str().unwrap().to_owned(),
            client_secret: body["client_secret"].as_str().map(str::to_owned),
            redirect_uri: redirect_uri.to_owned(),
        }
    }

    /// The `/authorize` URL for these parameters (each `(name, value)` is added as given).
    pub fn authorize_url(&self, params: &[(&str, &str)]) -> String {
        let mut url = Url::parse(&format!("{}/authorize", self.base)).unwrap();
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
        }
        url.to_string()
    }

    /// The usual parameters of an authorization request.
    pub fn standard_params<'a>(
        client: &'a RegisteredClient,
        pkce: &'a Pkce,
        state: &'a str,
        scope: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", &client.redirect_uri),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", state),
            ("scope", scope),
        ]
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    /// `GET /authorize`, expecting the consent page.
    pub async fn consent_page(&self, params: &[(&str, &str)]) -> ConsentPage {
        self.consent_page_at(&self.authorize_url(params)).await
    }

    /// The consent page at a full authorization URL (one a client built).
    pub async fn consent_page_at(&self, url: &str) -> ConsentPage {
        let response = self.get(url).await;
        assert_eq!(response.status(), 200, "the consent page");
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .expect("the consent page sets a cookie")
            .to_str()
            .unwrap()
            .to_owned();
        let cookie = set_cookie.split(';').next().unwrap().trim().to_owned();
        let html = response.text().await.unwrap();
        ConsentPage {
            transaction: form_value(&html, "transaction"),
            csrf_token: form_value(&html, "csrf_token"),
            html,
            cookie,
            set_cookie,
        }
    }

    /// `POST /authorize/consent` with these fields and cookie, raw.
    pub async fn post_consent(
        &self,
        fields: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/authorize/consent", self.base))
            .form(fields);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// Submits a consent page's own form with `decision`, sending `cookie` with it.
    pub async fn answer(
        &self,
        page: &ConsentPage,
        decision: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        self.post_consent(
            &[
                ("transaction", &page.transaction),
                ("csrf_token", &page.csrf_token),
                ("decision", decision),
            ],
            cookie,
        )
        .await
    }

    /// Approves a consent page; returns the redirect to the identity provider.
    pub async fn approve(&self, page: &ConsentPage) -> String {
        let response = self.answer(page, "approve", Some(&page.cookie)).await;
        assert_eq!(response.status(), 302, "approval redirects to the IdP");
        location(&response)
    }

    /// Follows redirects from `url` (the IdP's auto-approving `/authorize`, then our callback) until
    /// one leads to `redirect_uri`'s origin and path; returns that URL without calling it.
    pub async fn follow_to_client(&self, url: &str, redirect_uri: &str) -> ClientRedirect {
        let target = Url::parse(redirect_uri).unwrap();
        let mut next = url.to_owned();
        for _ in 0..5 {
            let url = Url::parse(&next).unwrap();
            if url.origin() == target.origin() && url.path() == target.path() {
                return ClientRedirect { url };
            }
            let response = self.get(&next).await;
            assert_eq!(
                response.status(),
                302,
                "a redirect at {next}: {}",
                response.text().await.unwrap_or_default()
            );
            next = location(&response);
        }
        panic!("no redirect to the client after five hops");
    }

    /// The whole front channel: authorize, approve, IdP, callback. Returns the client's redirect.
    pub async fn authorize(
        &self,
        client: &RegisteredClient,
        pkce: &Pkce,
        state: &str,
        scope: &str,
    ) -> ClientRedirect {
        let page = self
            .consent_page(&Self::standard_params(client, pkce, state, scope))
            .await;
        let upstream = self.approve(&page).await;
        self.follow_to_client(&upstream, &client.redirect_uri).await
    }

    /// `POST /token` with these fields, authenticating as `client` in the form.
    pub async fn token_raw(
        &self,
        client: &RegisteredClient,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("client_id", &client.client_id));
        if let Some(secret) = &client.client_secret {
            form.push(("client_secret", secret));
        }
        self.http
            .post(format!("{}/token", self.base))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Exchanges a code; returns the raw answer.
    pub async fn exchange(
        &self,
        client: &RegisteredClient,
        code: &str,
        verifier: &str,
    ) -> reqwest::Response {
        self.token_raw(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await
    }

    /// Uses a refresh token; returns the raw answer.
    pub async fn refresh(
        &self,
        client: &RegisteredClient,
        refresh_token: &str,
    ) -> reqwest::Response {
        self.token_raw(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// Register, authorize, exchange: the tokens JSON of a complete sign-in.
    pub async fn sign_in(&self, redirect_uri: &str, scope: &str) -> (RegisteredClient, Value) {
        let client = self.register(redirect_uri, true).await;
        let pkce = Pkce::new();
        let redirect = self.authorize(&client, &pkce, "state-1", scope).await;
        let code = redirect.param("code").expect("a code");
        let response = self.exchange(&client, &code, &pkce.verifier).await;
        assert_eq!(response.status(), 200, "the code exchange");
        (client, response.json().await.unwrap())
    }
}
