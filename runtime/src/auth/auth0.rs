use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use openidconnect::core::{
    CoreClient, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthType, ClientId, ClientSecret, DiscoveryError, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, RevocationUrl,
};

use super::jwks::JwksCache;
use super::userinfo::UserInfoClient;
use super::{AccessToken, AuthError, AuthProvider, Claims};
use crate::config::Auth0Settings;
use crate::net::{ClientTls, OpenIdHttp, OutboundError, OutboundHttp};
use crate::time::unix_now;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;
/// The least time between two JWKS fetches caused by unknown `kid`s.
const JWKS_COOLDOWN: Duration = Duration::from_secs(30);
/// After a failed discovery, requests fail at once (503) for this long before one tries again, so
/// an outage or a certificate problem is not answered with a connection attempt per request.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);
/// Tokens longer than this are refused unread: a JWT from Auth0 is about 1 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Verifies Auth0 access tokens: OpenID discovery, a JWKS cache, RS256 only, and a cache of verified
/// tokens so a repeated token costs no cryptography.
#[derive(Clone)]
pub struct Auth0Provider {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Auth0Settings,
    http: OutboundHttp,
    discovered: tokio::sync::OnceCell<Discovered>,
    /// When discovery last failed, and why.
    discovery_failure: std::sync::Mutex<Option<(Instant, String)>>,
    verified: moka::sync::Cache<String, AccessToken>,
}

/// The tenant as openidconnect's client for the authorization server's leg to Auth0: authorize,
/// code exchange, refresh and revocation, with the client secret posted in the form (Auth0's
/// "Post" method, the default of a Regular Web Application).
pub(crate) type UpstreamClient = CoreClient<
    EndpointSet,      // authorize
    EndpointNotSet,   // device authorization
    EndpointNotSet,   // introspection
    EndpointSet,      // revocation
    EndpointMaybeSet, // token: a resource server alone needs none, so discovery may lack it
    EndpointMaybeSet, // userinfo
>;

struct Discovered {
    metadata: CoreProviderMetadata,
    validation: Validation,
    keys: JwksCache,
    userinfo: Option<Arc<UserInfoClient>>,
    client: UpstreamClient,
}

struct ExpireAtExp;

impl moka::Expiry<String, AccessToken> for ExpireAtExp {
    fn expire_after_create(
        &self,
        _key: &String,
        token: &AccessToken,
        _now: Instant,
    ) -> Option<Duration> {
        let left = token.claims().exp - unix_now();
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

impl Auth0Provider {
    /// Makes the provider; nothing is fetched until the first token (or `warm_up`). Fails when
    /// the CA certificates `settings.tls_trust` names cannot be loaded.
    pub fn new(settings: Auth0Settings) -> Result<Self, crate::Error> {
        let tls = ClientTls::load(&settings.tls_trust).map_err(|error| {
            crate::Error::Config(crate::ConfigError {
                problems: vec![(error.variable.to_owned(), error.problem)],
            })
        })?;
        let verified = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .expire_after(ExpireAtExp)
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                http: OutboundHttp::new(tls),
                discovered: tokio::sync::OnceCell::new(),
                discovery_failure: std::sync::Mutex::new(None),
                verified,
            }),
        })
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &Auth0Settings {
        &self.inner.settings
    }

    /// The issuer, as discovered (Auth0's ends with `/`).
    pub async fn issuer(&self) -> Result<String, AuthError> {
        Ok(self.discovered().await?.metadata.issuer().to_string())
    }

    /// The discovered OpenID metadata.
    pub async fn metadata(&self) -> Result<CoreProviderMetadata, AuthError> {
        Ok(self.discovered().await?.metadata.clone())
    }

    /// Discovery runs once; after a failure, callers get the same error until `DISCOVERY_RETRY`
    /// has passed, then the next one tries again.
    async fn discovered(&self) -> Result<&Discovered, AuthError> {
        if let Some(discovered) = self.inner.discovered.get() {
            return Ok(discovered);
        }
        if let Some((at, reason)) = &*self
            .inner
            .discovery_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < DISCOVERY_RETRY
        {
            return Err(AuthError::Unavailable(reason.clone()));
        }
        self.inner
            .discovered
            .get_or_try_init(|| async {
                let result = self.discover().await;
                if let Err(AuthError::Unavailable(reason) | AuthError::Invalid(reason)) = &result {
                    *self
                        .inner
                        .discovery_failure
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) =
                        Some((Instant::now(), reason.clone()));
                }
                result
            })
            .await
    }

    async fn discover(&self) -> Result<Discovered, AuthError> {
        let base = self
            .inner
            .settings
            .domain
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let http = OpenIdHttp(&self.inner.http);
        // Auth0's issuer ends with a slash; other providers' often does not. The issuer must match
        // the discovery document exactly, so try Auth0's form first.
        let mut last_error = String::new();
        for issuer in [format!("{base}/"), base.clone()] {
            let issuer_url =
                IssuerUrl::new(issuer).map_err(|e| AuthError::Unavailable(e.to_string()))?;
            match CoreProviderMetadata::discover_async(issuer_url, &http).await {
                Ok(metadata) => return Ok(self.discovered_from(metadata)),
                // The network failed: the other issuer form would fail the same way.
                Err(DiscoveryError::Request(error)) => {
                    last_error = error.to_string();
                    break;
                }
                Err(error) => last_error = describe_discovery_error(&error),
            }
        }
        tracing::warn!(domain = %base, error = %last_error, "OpenID discovery failed");
        Err(AuthError::Unavailable(format!(
            "OpenID discovery at {base} failed: {last_error}"
        )))
    }

    fn discovered_from(&self, metadata: CoreProviderMetadata) -> Discovered {
        let issuer = metadata.issuer().to_string();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&self.inner.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // openidconnect fetched the JWKS during discovery; reuse it rather than fetch again.
        let keys = JwksCache::new(
            metadata.jwks(),
            metadata.jwks_uri().to_string(),
            self.inner.http.clone(),
            JWKS_COOLDOWN,
        );
        let userinfo_endpoint = metadata
            .userinfo_endpoint()
            .map(|u| u.to_string())
            .unwrap_or_else(|| format!("{}/userinfo", issuer.trim_end_matches('/')));
        let userinfo = Some(Arc::new(UserInfoClient::new(
            self.inner.http.clone(),
            userinfo_endpoint,
        )));
        let settings = &self.inner.settings;
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(settings.client_id.clone()),
            Some(ClientSecret::new(
                settings.client_secret.secret().to_owned(),
            )),
        )
        .set_auth_type(AuthType::RequestBody)
        .set_revocation_url(
            RevocationUrl::new(self.revocation_endpoint())
                .expect("a checked AUTH0_DOMAIN plus a path is a URL"),
        );
        tracing::info!(%issuer, keys = keys.len(), "OpenID discovery done");
        Discovered {
            metadata,
            validation,
            keys,
            userinfo,
            client,
        }
    }

    /// A token this provider verified before and that has not expired: no cryptography, no parsing.
    pub(crate) fn cached(&self, raw: &str) -> Option<AccessToken> {
        // The cache expires entries at `exp`; this guards the instant between.
        self.inner
            .verified
            .get(raw)
            .filter(|token| token.claims().exp + LEEWAY_SECONDS as i64 > unix_now())
    }

    /// The client every call to the tenant goes through (its trust, no redirects, timeouts).
    pub(crate) fn http(&self) -> &OutboundHttp {
        &self.inner.http
    }

    /// The tenant as an OpenID client, from discovery: for the authorization server's own leg.
    pub(crate) async fn client(&self) -> Result<&UpstreamClient, AuthError> {
        Ok(&self.discovered().await?.client)
    }

    /// Auth0's RFC 7009 endpoint. Auth0 publishes it at a fixed path rather than in discovery.
    fn revocation_endpoint(&self) -> String {
        format!(
            "{}/oauth/revoke",
            self.inner.settings.domain.as_str().trim_end_matches('/')
        )
    }

    /// The tenant's key that signed `raw`: RS256 only, found by `kid` (an unknown `kid` refetches
    /// the JWKS, within its cooldown).
    async fn signing_key_of(
        &self,
        raw: &str,
    ) -> Result<(&Discovered, Arc<jsonwebtoken::DecodingKey>), AuthError> {
        let header = jsonwebtoken::decode_header(raw)
            .map_err(|e| AuthError::Invalid(format!("malformed: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("no `kid` in the header".into()))?;
        let discovered = self.discovered().await?;
        let key = discovered
            .keys
            .key_for(&kid)
            .await?
            .ok_or_else(|| AuthError::Invalid(format!("unknown signing key `{kid}`")))?;
        Ok((discovered, key))
    }

    /// Verifies an ID token from the code exchange with openidconnect: RS256 from the tenant's keys,
    /// the discovered issuer, our client id as audience, and the nonce we sent (which ties it to this
    /// login and no other).
    pub(crate) async fn verify_id_token(
        &self,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<CoreIdTokenClaims, AuthError> {
        // A key rotated in since the JWKS was fetched is fetched now (within the cooldown), as for
        // access tokens: openidconnect verifies against the set it is given and fetches nothing.
        let (discovered, _) = self.signing_key_of(&id_token.to_string()).await?;
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.inner.settings.client_id.clone()),
            discovered.metadata.issuer().clone(),
            discovered.keys.openid_set(),
        )
        // Not the discovery's list: Auth0 offers HS256 too, which would verify with the client secret.
        .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
        id_token
            .claims(&verifier, nonce)
            .cloned()
            .map_err(|error| AuthError::Invalid(format!("ID token: {error}")))
    }

    /// Verifies without consulting or filling the cache of verified tokens: the full check, signature
    /// included (for benchmarks and diagnostics; servers call `verify`).
    pub async fn verify_uncached(&self, raw: &str) -> Result<AccessToken, AuthError> {
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid("the token is too long".into()));
        }
        let (discovered, key) = self.signing_key_of(raw).await?;
        let data =
            jsonwebtoken::decode::<Claims>(raw, &key, &discovered.validation).map_err(|e| {
                AuthError::Invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "expired".to_owned(),
                    ErrorKind::ImmatureSignature => "not valid yet (nbf)".to_owned(),
                    ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
                    ErrorKind::InvalidAudience => "wrong audience".to_owned(),
                    ErrorKind::InvalidSignature => "bad signature".to_owned(),
                    ErrorKind::MissingRequiredClaim(claim) => format!("missing claim `{claim}`"),
                    other => format!("{other:?}"),
                })
            })?;
        Ok(AccessToken::new(
            raw.to_owned(),
            data.claims,
            discovered.userinfo.clone(),
        ))
    }
}

/// A discovery failure that is not the network's, with its cause: openidconnect's own text for a
/// bad document is "Failed to parse server response", which says nothing of what was wrong.
fn describe_discovery_error(error: &DiscoveryError<OutboundError>) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl AuthProvider for Auth0Provider {
    fn name(&self) -> &'static str {
        "auth0"
    }

    fn verify<'a>(&'a self, raw: &'a str) -> BoxFuture<'a, Result<AccessToken, AuthError>> {
        Box::pin(async move {
            if let Some(token) = self.cached(raw) {
                return Ok(token);
            }
            let token = self.verify_uncached(raw).await?;
            self.inner.verified.insert(raw.to_owned(), token.clone());
            Ok(token)
        })
    }

    fn authorization_servers(&self) -> BoxFuture<'_, Result<Vec<String>, AuthError>> {
        Box::pin(async move { Ok(vec![self.issuer().await?]) })
    }

    fn warm_up(&self) -> BoxFuture<'_, Result<(), AuthError>> {
        Box::pin(async move { self.discovered().await.map(|_| ()) })
    }
}

impl std::fmt::Debug for Auth0Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0Provider")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use jsonwebtoken::{EncodingKey, Header};
    use openidconnect::core::{
        CoreJsonWebKey, CoreJsonWebKeySet, CoreResponseType, CoreSubjectIdentifierType,
    };
    use openidconnect::{
        AuthUrl, EmptyAdditionalProviderMetadata, JsonWebKeyId, JsonWebKeySetUrl, ResponseTypes,
    };
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::rand_core::OsRng;
    use rsa::traits::PublicKeyParts;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::{SecretString, TlsTrust};

    const ISSUER: &str = "https://tenant.example/";
    const CLIENT_ID: &str = "our-client";

    /// The tenant's signing key (RSA keys are slow to make: once for every test).
    static KEY: LazyLock<rsa::RsaPrivateKey> =
        LazyLock::new(|| rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap());

    /// A provider that has "discovered" a tenant whose JWKS holds `KEY` as `k1`.
    fn provider() -> Auth0Provider {
        let public = KEY.to_public_key();
        let jwk = CoreJsonWebKey::new_rsa(
            public.n().to_bytes_be(),
            public.e().to_bytes_be(),
            Some(JsonWebKeyId::new("k1".into())),
        );
        let metadata = CoreProviderMetadata::new(
            IssuerUrl::new(ISSUER.into()).unwrap(),
            AuthUrl::new(format!("{ISSUER}authorize")).unwrap(),
            JsonWebKeySetUrl::new(format!("{ISSUER}.well-known/jwks.json")).unwrap(),
            vec![ResponseTypes::new(vec![CoreResponseType::Code])],
            vec![CoreSubjectIdentifierType::Public],
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
            EmptyAdditionalProviderMetadata {},
        )
        .set_jwks(CoreJsonWebKeySet::new(vec![jwk]));
        let provider = Auth0Provider::new(Auth0Settings {
            domain: url::Url::parse(ISSUER).unwrap(),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::new("the-client-secret"),
            audience: "https://api.example".into(),
            tls_trust: TlsTrust::platform(),
        })
        .unwrap();
        let discovered = provider.discovered_from(metadata);
        assert!(provider.inner.discovered.set(discovered).is_ok());
        provider
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "sub": "auth0|alice", "aud": CLIENT_ID, "nonce": "the-nonce",
            "iat": unix_now(), "exp": unix_now() + 600,
            // Auth0 writes this as a string; OpenID says seconds.
            "updated_at": "2026-01-01T00:00:00.000Z",
        })
    }

    fn signed(header: Header, claims: &Value, key: &EncodingKey) -> CoreIdToken {
        jsonwebtoken::encode(&header, claims, key)
            .unwrap()
            .parse()
            .unwrap()
    }

    fn rs256(claims: &Value) -> CoreIdToken {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        let der = KEY.to_pkcs1_der().unwrap();
        signed(header, claims, &EncodingKey::from_rsa_der(der.as_bytes()))
    }

    #[tokio::test]
    async fn an_id_token_opens_only_with_its_nonce_issuer_audience_and_the_tenants_key() {
        let provider = provider();
        let nonce = Nonce::new("the-nonce".into());
        let opened = provider
            .verify_id_token(&rs256(&claims()), &nonce)
            .await
            .unwrap();
        assert_eq!(opened.subject().as_str(), "auth0|alice");

        let mut cases: Vec<(&str, CoreIdToken)> = Vec::new();
        for (case, field, value) in [
            ("another login's nonce", "nonce", json!("other-nonce")),
            ("another client's token", "aud", json!("other-client")),
            (
                "another issuer's token",
                "iss",
                json!("https://evil.example/"),
            ),
            ("an expired token", "exp", json!(unix_now() - 3600)),
        ] {
            let mut claims = claims();
            claims[field] = value;
            cases.push((case, rs256(&claims)));
        }
        let mut hs256 = Header::new(Algorithm::HS256);
        hs256.kid = Some("k1".into());
        cases.push((
            "HS256 under the client secret",
            signed(
                hs256,
                &claims(),
                &EncodingKey::from_secret(b"the-client-secret").unwrap(),
            ),
        ));
        for (case, token) in cases {
            let error = provider.verify_id_token(&token, &nonce).await.unwrap_err();
            assert!(matches!(error, AuthError::Invalid(_)), "{case}: {error:?}");
        }
    }
}
