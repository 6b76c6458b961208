use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value, json};
use url::Url;

use crate::keys::{KeyRing, SigningKey};
use crate::login::{error_page, login_page};
use crate::util::{now_secs, random_token, rfc3339_millis, s256, secret_eq};
use crate::{DevIdpConfig, DevUser};

const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
// Used when a request names no scope, so a bare dev request still yields an ID token and userinfo access.
const DEFAULT_SCOPE: &str = "openid profile email";
const CODE_TTL: Duration = Duration::from_secs(600);
// Auth0's default ID token lifetime.
const ID_TOKEN_TTL_SECS: u64 = 36_000;

pub(crate) struct Shared {
    pub(crate) config: DevIdpConfig,
    pub(crate) url: String,
    pub(crate) keys: RwLock<KeyRing>,
    pub(crate) jwks_available: AtomicBool,
    pub(crate) userinfo_failure: Mutex<Option<u16>>,
    pub(crate) userinfo_delay: Mutex<Duration>,
    pub(crate) jwks_requests: AtomicUsize,
    pub(crate) userinfo_requests: AtomicUsize,
    pub(crate) refresh_grants: AtomicUsize,
    pub(crate) revocations: AtomicUsize,
    pub(crate) discovery_requests: AtomicUsize,
    pending: Mutex<HashMap<String, Pending>>,
    codes: Mutex<HashMap<String, CodeGrant>>,
    refresh: Mutex<RefreshStore>,
    updated_at: String,
}

#[derive(Clone)]
pub(crate) struct AuthorizeRequest {
    /// As sent, because the token request must repeat it byte for byte.
    redirect_uri_raw: String,
    pub(crate) redirect_uri: Url,
    pub(crate) state: Option<String>,
    pub(crate) scope: String,
    pub(crate) audience: String,
    nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
}

struct Pending {
    request: AuthorizeRequest,
    expires: Instant,
}

struct CodeGrant {
    client_id: String,
    request: AuthorizeRequest,
    sub: String,
    permissions: Vec<String>,
    sid: String,
    expires: Instant,
}

/// What a user approved: the basis of every token issued from one sign-in.
struct UserGrant {
    sub: String,
    permissions: Vec<String>,
    scope: String,
    audience: String,
    sid: String,
}

struct RefreshGrant {
    client_id: String,
    grant: UserGrant,
    family: u64,
}

#[derive(Default)]
struct RefreshStore {
    active: HashMap<String, RefreshGrant>,
    /// Spent tokens and their family: presenting one again revokes the family (Auth0 reuse detection).
    rotated: HashMap<String, u64>,
    next_family: u64,
}

impl Shared {
    pub(crate) fn new(config: DevIdpConfig, url: String, key: SigningKey) -> Self {
        let mut keys = KeyRing::default();
        keys.push(key);
        Self {
            config,
            url,
            keys: RwLock::new(keys),
            jwks_available: AtomicBool::new(true),
            userinfo_failure: Mutex::new(None),
            userinfo_delay: Mutex::new(Duration::ZERO),
            jwks_requests: AtomicUsize::new(0),
            userinfo_requests: AtomicUsize::new(0),
            refresh_grants: AtomicUsize::new(0),
            revocations: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
            pending: Mutex::default(),
            codes: Mutex::default(),
            refresh: Mutex::default(),
            updated_at: rfc3339_millis(SystemTime::now()),
        }
    }

    pub(crate) fn issuer(&self) -> String {
        format!("{}/", self.url)
    }

    fn userinfo_url(&self) -> String {
        format!("{}/userinfo", self.url)
    }

    pub(crate) fn current_key(&self) -> Arc<SigningKey> {
        self.keys.read().expect("key ring lock").current()
    }

    fn sign(&self, claims: &Value) -> String {
        self.current_key().sign(claims)
    }

    pub(crate) fn user_access_claims(
        &self,
        sub: &str,
        scope: &str,
        audience: &str,
        permissions: &[String],
    ) -> Value {
        let now = now_secs();
        // Auth0 adds its /userinfo audience whenever `openid` is granted.
        let aud = if has_scope(scope, "openid") {
            json!([audience, self.userinfo_url()])
        } else {
            json!(audience)
        };
        json!({
            "iss": self.issuer(),
            "sub": sub,
            "aud": aud,
            "iat": now,
            "exp": now + self.config.access_token_ttl.as_secs(),
            "scope": scope,
            "azp": self.config.client_id,
            "permissions": permissions,
        })
    }

    fn profile_claims(&self, user: &DevUser, scope: &str) -> Map<String, Value> {
        let mut c = Map::new();
        if has_scope(scope, "profile") {
            c.insert("name".into(), json!(user.name));
            c.insert("nickname".into(), json!(user.nickname));
            c.insert("picture".into(), json!(user.picture));
            c.insert("updated_at".into(), json!(self.updated_at));
        }
        if has_scope(scope, "email") {
            c.insert("email".into(), json!(user.email));
            c.insert("email_verified".into(), json!(user.email_verified));
        }
        c
    }

    fn id_token_claims(&self, user: &DevUser, g: &UserGrant, nonce: Option<&str>) -> Value {
        let now = now_secs();
        let mut c = self.profile_claims(user, &g.scope);
        c.insert("iss".into(), json!(self.issuer()));
        c.insert("aud".into(), json!(self.config.client_id));
        c.insert("sub".into(), json!(user.sub));
        c.insert("iat".into(), json!(now));
        c.insert("exp".into(), json!(now + ID_TOKEN_TTL_SECS));
        c.insert("sid".into(), json!(g.sid));
        if let Some(nonce) = nonce {
            c.insert("nonce".into(), json!(nonce));
        }
        Value::Object(c)
    }

    fn issue_user_tokens(&self, g: UserGrant, nonce: Option<&str>, family: Option<u64>) -> Value {
        let access =
            self.sign(&self.user_access_claims(&g.sub, &g.scope, &g.audience, &g.permissions));
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.config.access_token_ttl.as_secs(),
            "scope": g.scope,
        });
        if has_scope(&g.scope, "openid")
            && let Some(user) = find_user(&self.config.users, &g.sub)
        {
            body["id_token"] = json!(self.sign(&self.id_token_claims(user, &g, nonce)));
        }
        if has_scope(&g.scope, "offline_access") {
            let token = random_token(32);
            let mut store = self.refresh.lock().expect("refresh lock");
            let family = family.unwrap_or_else(|| {
                store.next_family += 1;
                store.next_family
            });
            store.active.insert(
                token.clone(),
                RefreshGrant {
                    client_id: self.config.client_id.clone(),
                    grant: g,
                    family,
                },
            );
            body["refresh_token"] = json!(token);
        }
        body
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/authorize", get(authorize))
        .route("/authorize/decision", post(decision))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/oidc/logout", get(logout))
        .route("/v2/logout", get(logout))
        .with_state(shared)
}

pub(crate) fn find_user<'a>(users: &'a [DevUser], name: &str) -> Option<&'a DevUser> {
    users
        .iter()
        .find(|u| u.sub == name || u.nickname == name || u.email.eq_ignore_ascii_case(name))
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split_whitespace().any(|s| s == wanted)
}

fn split_list(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in s.split_whitespace() {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_string());
        }
    }
    out
}

/// Auth0 keeps the requested scopes that are OIDC scopes or permissions the subject holds.
fn granted_scope(requested: &str, permissions: &[String]) -> String {
    split_list(requested)
        .into_iter()
        .filter(|s| OIDC_SCOPES.contains(&s.as_str()) || permissions.contains(s))
        .collect::<Vec<_>>()
        .join(" ")
}

/// RFC 7636 `43*128unreserved`, for both challenges and verifiers.
fn valid_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Form parameters, refusing repeats (RFC 6749 §3.1); `Err` names the repeated parameter.
fn parse_form_unique(bytes: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(bytes) {
        match out.entry(k.into_owned()) {
            Entry::Occupied(e) => return Err(e.key().clone()),
            Entry::Vacant(e) => {
                e.insert(v.into_owned());
            }
        }
    }
    Ok(out)
}

async fn discovery(State(s): State<Arc<Shared>>) -> Response {
    s.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let u = &s.url;
    let mut scopes: Vec<String> = OIDC_SCOPES.iter().map(|s| s.to_string()).collect();
    for p in &s.config.permissions {
        if !scopes.contains(p) {
            scopes.push(p.clone());
        }
    }
    Json(json!({
        "issuer": s.issuer(),
        "authorization_endpoint": format!("{u}/authorize"),
        "token_endpoint": format!("{u}/oauth/token"),
        "userinfo_endpoint": format!("{u}/userinfo"),
        "jwks_uri": format!("{u}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{u}/oauth/revoke"),
        "end_session_endpoint": format!("{u}/oidc/logout"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password"],
        "claims_supported": [
            "aud", "email", "email_verified", "exp", "iat", "iss", "name", "nickname",
            "picture", "sid", "sub", "updated_at"
        ],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    }))
    .into_response()
}

async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    s.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if !s.jwks_available.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
    }
    let body = s.keys.read().expect("key ring lock").jwks();
    Json(body).into_response()
}

fn redirect_to(target: &Url, params: &[(&str, &str)]) -> Response {
    let mut url = target.clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

fn redirect_error(req_uri: &Url, state: Option<&str>, error: &str, description: &str) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    redirect_to(req_uri, &params)
}

fn bad_authorize(detail: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Invalid authorization request",
        detail,
    )
}

/// Errors before the redirect URI is trusted render a page; never redirect to an unchecked URI.
fn validate_authorize(
    s: &Shared,
    p: &HashMap<String, String>,
) -> Result<AuthorizeRequest, Box<Response>> {
    let bad_authorize = |detail: &str| Box::new(bad_authorize(detail));
    match p.get("client_id") {
        None => return Err(bad_authorize("Missing required parameter: client_id")),
        Some(id) if *id != s.config.client_id => {
            return Err(bad_authorize(
                "Unknown client: the client_id is not registered with this dev IdP.",
            ));
        }
        Some(_) => {}
    }
    let raw = p
        .get("redirect_uri")
        .ok_or_else(|| bad_authorize("Missing required parameter: redirect_uri"))?;
    let redirect_uri = Url::parse(raw)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.has_host() && u.fragment().is_none()
        })
        .ok_or_else(|| {
            bad_authorize("redirect_uri must be an absolute http(s) URI without a fragment.")
        })?;
    let state = p.get("state").cloned();
    let fail = |error: &str, description: &str| {
        Err(Box::new(redirect_error(
            &redirect_uri,
            state.as_deref(),
            error,
            description,
        )))
    };
    match p.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => {
            return fail(
                "invalid_request",
                "Missing required parameter: response_type",
            );
        }
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "Only response_type=code is supported",
            );
        }
    }
    let audience = match p.get("audience") {
        None => s.config.audience.clone(),
        Some(a) if *a == s.config.audience => a.clone(),
        Some(a) => return fail("access_denied", &format!("Service not found: {a}")),
    };
    let code_challenge = match (
        p.get("code_challenge"),
        p.get("code_challenge_method").map(String::as_str),
    ) {
        (None, None) => None,
        (Some(c), Some("S256")) if valid_pkce_value(c) => Some(c.clone()),
        (Some(_), Some("S256")) => {
            return fail(
                "invalid_request",
                "code_challenge must be 43-128 base64url characters",
            );
        }
        (Some(_), _) => return fail("invalid_request", "code_challenge_method must be S256"),
        (None, Some(_)) => {
            return fail(
                "invalid_request",
                "code_challenge_method given without code_challenge",
            );
        }
    };
    let scope = p
        .get("scope")
        .filter(|s| !s.trim().is_empty())
        .map(|s| split_list(s).join(" "))
        .unwrap_or_else(|| DEFAULT_SCOPE.to_string());
    Ok(AuthorizeRequest {
        redirect_uri_raw: raw.clone(),
        redirect_uri,
        state,
        scope,
        audience,
        nonce: p.get("nonce").cloned(),
        code_challenge,
    })
}

fn issue_code(
    s: &Shared,
    request: AuthorizeRequest,
    sub: String,
    permissions: Vec<String>,
) -> Response {
    let code = random_token(32);
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = request.state.as_deref() {
        params.push(("state", state));
    }
    let response = redirect_to(&request.redirect_uri, &params);
    let now = Instant::now();
    let mut codes = s.codes.lock().expect("codes lock");
    codes.retain(|_, c| c.expires > now);
    codes.insert(
        code.clone(),
        CodeGrant {
            client_id: s.config.client_id.clone(),
            request,
            sub,
            permissions,
            sid: random_token(16),
            expires: now + CODE_TTL,
        },
    );
    response
}

async fn authorize(State(s): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = match parse_form_unique(query.as_deref().unwrap_or("").as_bytes()) {
        Ok(p) => p,
        Err(name) => return bad_authorize(&format!("Parameter {name} was given more than once.")),
    };
    let request = match validate_authorize(&s, &params) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if let Some(auto) = &s.config.auto_approve {
        let sub = find_user(&s.config.users, &auto.user)
            .expect("auto_approve user checked at start")
            .sub
            .clone();
        return issue_code(&s, request, sub, auto.permissions.clone());
    }
    if params.get("prompt").is_some_and(|p| has_scope(p, "none")) {
        let state = request.state.as_deref();
        return redirect_error(
            &request.redirect_uri,
            state,
            "login_required",
            "Login required",
        );
    }
    let id = random_token(32);
    let page = login_page(
        &id,
        &s.config.client_id,
        &request,
        &s.config.users,
        &s.config.permissions,
    );
    let now = Instant::now();
    let mut pending = s.pending.lock().expect("pending lock");
    pending.retain(|_, p| p.expires > now);
    pending.insert(
        id,
        Pending {
            request,
            expires: now + CODE_TTL,
        },
    );
    page
}

/// The login page's form. It carries only an unguessable id of the request validated at /authorize,
/// so a cross-site POST cannot mint a code for a redirect URI of its choosing.
async fn decision(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let pending =
        field("request_id").and_then(|id| s.pending.lock().expect("pending lock").remove(id));
    let Some(pending) = pending.filter(|p| p.expires > Instant::now()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in request expired",
            "This sign-in request is unknown, already used or expired. Start the sign-in again from the application.",
        );
    };
    let request = pending.request;
    match field("action") {
        Some("approve") => {
            let Some(user) = field("user").and_then(|u| find_user(&s.config.users, u)) else {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "Unknown user",
                    "Pick one of the listed users.",
                );
            };
            let mut permissions: Vec<String> = Vec::new();
            let chosen = fields
                .iter()
                .filter(|(k, _)| k == "permission")
                .map(|(_, v)| v.as_str());
            for p in chosen.chain(field("extra_permissions").unwrap_or("").split_whitespace()) {
                if !p.is_empty() && !permissions.iter().any(|q| q == p) {
                    permissions.push(p.to_string());
                }
            }
            let sub = user.sub.clone();
            issue_code(&s, request, sub, permissions)
        }
        Some("deny") => redirect_error(
            &request.redirect_uri,
            request.state.as_deref(),
            "access_denied",
            "User did not authorize the request",
        ),
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid decision",
            "Approve or deny the request.",
        ),
    }
}

pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    basic_challenge: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        if self.basic_challenge {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"toolgate-dev-idp\""),
            );
        }
        resp
    }
}

/// Form or JSON body (Auth0 takes both) as single-valued string parameters.
fn token_params(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => parse_form_unique(body).map_err(|name| {
            OAuthError::invalid_request(format!("Parameter {name} was given more than once"))
        }),
        "application/json" => {
            let map: Map<String, Value> = serde_json::from_slice(body).map_err(|_| {
                OAuthError::invalid_request("The request body is not a JSON object")
            })?;
            let mut out = HashMap::new();
            for (k, v) in map {
                let v = match v {
                    Value::Null => continue,
                    Value::String(s) => s,
                    Value::Array(items) => items
                        .iter()
                        .map(|i| {
                            i.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| i.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                    other => other.to_string(),
                };
                out.insert(k, v);
            }
            Ok(out)
        }
        _ => Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        )),
    }
}

// RFC 6749 §2.3.1 form-encodes Basic credentials; many clients do not, so both forms are accepted.
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", s.replace('&', "%26")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn authenticate_client(
    s: &Shared,
    headers: &HeaderMap,
    p: &HashMap<String, String>,
) -> Result<(), OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, creds)| creds.trim());
    let unauthorized = |basic_challenge: bool| {
        let mut e = OAuthError::new(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
        e.basic_challenge = basic_challenge;
        e
    };
    let (id, secret) = match (basic, p.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Use exactly one client authentication method",
            ));
        }
        (Some(creds), None) => {
            let decoded = STANDARD
                .decode(creds)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|c| {
                    c.split_once(':')
                        .map(|(i, s)| (i.to_string(), s.to_string()))
                });
            let Some((id, secret)) = decoded else {
                let mut e = OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Malformed Basic credentials",
                );
                e.basic_challenge = true;
                return Err(e);
            };
            if p.get("client_id")
                .is_some_and(|body_id| *body_id != id && *body_id != form_decode(&id))
            {
                return Err(unauthorized(true));
            }
            let ok = [(&id, &secret), (&form_decode(&id), &form_decode(&secret))]
                .iter()
                .any(|(i, sec)| {
                    **i == s.config.client_id && secret_eq(sec, &s.config.client_secret)
                });
            return if ok { Ok(()) } else { Err(unauthorized(true)) };
        }
        (None, Some(secret)) => (
            p.get("client_id").cloned().unwrap_or_default(),
            secret.clone(),
        ),
        (None, None) => {
            return Err(OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication is required (client_secret_basic or client_secret_post)",
            ));
        }
    };
    if id == s.config.client_id && secret_eq(&secret, &s.config.client_secret) {
        Ok(())
    } else {
        Err(unauthorized(false))
    }
}

fn token_response(body: Value) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response()
}

async fn token(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = token_params(&headers, &body).and_then(|p| {
        authenticate_client(&s, &headers, &p)?;
        match p.get("grant_type").map(String::as_str) {
            Some("authorization_code") => grant_code(&s, &p),
            Some("refresh_token") => grant_refresh(&s, &p).inspect(|_| {
                s.refresh_grants.fetch_add(1, Ordering::SeqCst);
            }),
            Some("client_credentials") => grant_client_credentials(&s, &p),
            Some("password") => grant_password(&s, &p),
            Some(_) => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant type",
            )),
            None => Err(OAuthError::invalid_request(
                "Missing required parameter: grant_type",
            )),
        }
    });
    match result {
        Ok(body) => token_response(body),
        Err(e) => e.into_response(),
    }
}

fn required<'a>(p: &'a HashMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    p.get(name)
        .map(String::as_str)
        .ok_or_else(|| OAuthError::invalid_request(format!("Missing required parameter: {name}")))
}

fn api_audience(
    s: &Shared,
    requested: Option<&String>,
    required: bool,
) -> Result<String, OAuthError> {
    match requested {
        Some(a) if *a == s.config.audience => Ok(a.clone()),
        Some(a) => Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            format!("Service not found: {a}"),
        )),
        None if required => Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "No audience parameter was provided, and no default audience has been configured",
        )),
        None => Ok(s.config.audience.clone()),
    }
}

/// Dev-only `permissions` parameter: a space-separated list that chooses the claim.
fn requested_permissions(s: &Shared, p: &HashMap<String, String>) -> Vec<String> {
    p.get("permissions")
        .map(|list| split_list(list))
        .unwrap_or_else(|| s.config.permissions.clone())
}

fn grant_code(s: &Shared, p: &HashMap<String, String>) -> Result<Value, OAuthError> {
    let code = required(p, "code")?;
    // Removed before any check: a code is spent by its first use, successful or not.
    let grant = s.codes.lock().expect("codes lock").remove(code);
    let grant = grant
        .filter(|g| g.expires > Instant::now() && g.client_id == s.config.client_id)
        .ok_or_else(|| OAuthError::invalid_grant("Invalid authorization code"))?;
    if p.get("redirect_uri") != Some(&grant.request.redirect_uri_raw) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the one in the authorization request",
        ));
    }
    match (&grant.request.code_challenge, p.get("code_verifier")) {
        (None, None) => {}
        (Some(challenge), Some(verifier))
            if valid_pkce_value(verifier) && secret_eq(&s256(verifier), challenge) => {}
        (Some(_), _) => return Err(OAuthError::invalid_grant("Failed to verify code verifier")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier given but the authorization request had no code_challenge",
            ));
        }
    }
    let scope = granted_scope(&grant.request.scope, &grant.permissions);
    let user_grant = UserGrant {
        sub: grant.sub,
        permissions: grant.permissions,
        scope,
        audience: grant.request.audience,
        sid: grant.sid,
    };
    Ok(s.issue_user_tokens(user_grant, grant.request.nonce.as_deref(), None))
}

fn grant_refresh(s: &Shared, p: &HashMap<String, String>) -> Result<Value, OAuthError> {
    let token = required(p, "refresh_token")?;
    let invalid = || OAuthError::invalid_grant("Unknown or invalid refresh token.");
    let mut store = s.refresh.lock().expect("refresh lock");
    let Some(old) = store.active.remove(token) else {
        if let Some(family) = store.rotated.get(token).copied() {
            store.active.retain(|_, g| g.family != family);
        }
        return Err(invalid());
    };
    store.rotated.insert(token.to_string(), old.family);
    drop(store);
    if old.client_id != s.config.client_id {
        return Err(invalid());
    }
    Ok(s.issue_user_tokens(old.grant, None, Some(old.family)))
}

fn grant_client_credentials(s: &Shared, p: &HashMap<String, String>) -> Result<Value, OAuthError> {
    let audience = api_audience(s, p.get("audience"), true)?;
    let mut permissions = requested_permissions(s, p);
    if let Some(scope) = p.get("scope") {
        permissions.retain(|perm| has_scope(scope, perm));
    }
    let now = now_secs();
    let client_id = &s.config.client_id;
    let mut claims = json!({
        "iss": s.issuer(),
        "sub": format!("{client_id}@clients"),
        "aud": audience,
        "iat": now,
        "exp": now + s.config.access_token_ttl.as_secs(),
        "gty": "client-credentials",
        "azp": client_id,
        "permissions": permissions,
    });
    let mut body = json!({
        "access_token": "",
        "token_type": "Bearer",
        "expires_in": s.config.access_token_ttl.as_secs(),
    });
    // Auth0 lists a machine token's granted permissions in `scope` too, and omits it when there are none.
    if !permissions.is_empty() {
        let scope = permissions.join(" ");
        claims["scope"] = json!(scope);
        body["scope"] = json!(scope);
    }
    body["access_token"] = json!(s.sign(&claims));
    Ok(body)
}

fn grant_password(s: &Shared, p: &HashMap<String, String>) -> Result<Value, OAuthError> {
    let username = required(p, "username")?;
    required(p, "password")?;
    let user = find_user(&s.config.users, username).ok_or_else(|| {
        OAuthError::new(
            StatusCode::FORBIDDEN,
            "invalid_grant",
            "Wrong email or password.",
        )
    })?;
    let audience = api_audience(s, p.get("audience"), false)?;
    let permissions = requested_permissions(s, p);
    let requested = p
        .get("scope")
        .filter(|s| !s.trim().is_empty())
        .map(String::as_str)
        .unwrap_or(DEFAULT_SCOPE);
    let grant = UserGrant {
        sub: user.sub.clone(),
        scope: granted_scope(requested, &permissions),
        permissions,
        audience,
        sid: random_token(16),
    };
    Ok(s.issue_user_tokens(grant, None, None))
}

async fn revoke(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = token_params(&headers, &body).and_then(|p| {
        authenticate_client(&s, &headers, &p)?;
        let token = required(&p, "token")?;
        let mut store = s.refresh.lock().expect("refresh lock");
        // Revoking a refresh token ends its whole rotation family, as in Auth0.
        if let Some(family) = store.active.get(token).map(|g| g.family) {
            store.active.retain(|_, g| g.family != family);
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            s.revocations.fetch_add(1, Ordering::SeqCst);
            StatusCode::OK.into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn bearer_error(description: &'static str) -> Response {
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "Unauthorized",
    )
        .into_response()
}

async fn userinfo(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    s.userinfo_requests.fetch_add(1, Ordering::SeqCst);
    let delay = *s.userinfo_delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let failure = *s.userinfo_failure.lock().expect("lock");
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = status.canonical_reason().unwrap_or("Error");
        let mut resp = (status, reason).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        return resp;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"toolgate-dev-idp\"",
            )],
            "Unauthorized",
        )
            .into_response();
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_audience(&[s.userinfo_url()]);
    validation.set_issuer(&[s.issuer()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let verified = s
        .keys
        .read()
        .expect("key ring lock")
        .verify(token, &validation);
    let claims = match verified {
        Ok(c) => c,
        Err(reason) => {
            tracing::debug!(%reason, "userinfo rejected a token");
            return bearer_error("The access token is invalid or expired");
        }
    };
    let sub = claims["sub"].as_str().unwrap_or_default();
    if sub.is_empty() || sub.ends_with("@clients") {
        return bearer_error("The access token does not belong to a user");
    }
    let scope = claims["scope"].as_str().unwrap_or_default();
    let mut profile = Map::new();
    profile.insert("sub".into(), json!(sub));
    // Tokens forged for a sub outside the configured users still get their `sub` back.
    if let Some(user) = find_user(&s.config.users, sub).filter(|u| u.sub == sub) {
        profile.extend(s.profile_claims(user, scope));
    }
    Json(Value::Object(profile)).into_response()
}

async fn logout(RawQuery(query): RawQuery) -> Response {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let target = params
        .get("post_logout_redirect_uri")
        .or_else(|| params.get("returnTo"))
        .and_then(|u| Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    match target {
        Some(url) => {
            let state = params
                .get("state")
                .map(|s| vec![("state", s.as_str())])
                .unwrap_or_default();
            redirect_to(&url, &state)
        }
        None => error_page(
            StatusCode::OK,
            "Signed out",
            "You are signed out of the toolgate dev IdP.",
        ),
    }
}
