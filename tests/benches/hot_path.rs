//! The hot path of one `tools/call`, piece by piece, each beside a baseline measured in the same run:
//!
//! - `verify`: a token whose key is cached (the full RS256 check), a repeated token (the verified-token
//!   cache), a cold key (a fresh provider: its first token runs OpenID discovery, which brings the
//!   JWKS over loopback HTTP from a dev-idp, then the full check: what the first request to a new
//!   server costs); baseline: jsonwebtoken's own decode with a prepared key and the same validation.
//! - `permissions`: `require_permissions`, held and refused; baseline: a bare contains loop.
//! - `arguments`: the wrapper `#[mcp_tool]` generates for `add(a: i64, b: i64)` (guard, unknown-argument
//!   check, typed parse of each argument, the call, the result), with good arguments and with a
//!   string for an integer; baseline: serde's derived `Deserialize` for `{a, b}` alone.
//!
//! `cargo bench -p toolgate-tests --bench hot_path`; `bench/run --micro` adds the table of ratios.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use toolgate::{
    Auth0Provider, Auth0Settings, AuthProvider, Claims, SecretString, Tool, ToolCall, mcp_tool,
    require_permissions,
};
use toolgate_dev_idp::{DevIdp, DevIdpConfig};

/// Add two integers.
#[mcp_tool]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[derive(Deserialize)]
#[allow(dead_code)] // read by serde only
struct AddArguments {
    a: i64,
    b: i64,
}

fn settings(idp: &DevIdp) -> Auth0Settings {
    Auth0Settings {
        domain: url::Url::parse(&idp.url()).unwrap(),
        client_id: idp.client_id().into(),
        client_secret: SecretString::new(idp.client_secret()),
        audience: idp.audience().into(),
        tls_trust: toolgate::TlsTrust::platform(),
    }
}

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (idp, provider, token) = runtime.block_on(async {
        let idp = DevIdp::start(DevIdpConfig::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let provider = Auth0Provider::new(settings(&idp)).unwrap();
        provider.warm_up().await.unwrap();
        let token = idp.user_token("auth0|alice", &["tool:get_user_info", "tool:a", "tool:b"]);
        (idp, provider, token)
    });

    // What jsonwebtoken alone does for the same token: RS256 signature, exp, iss, aud.
    let key = DecodingKey::from_rsa_der(&idp.public_key_pkcs1_der());
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[idp.issuer()]);
    validation.set_audience(&[idp.audience()]);

    let mut group = c.benchmark_group("verify");
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&token), &key, &validation).unwrap());
    });
    // In-memory work only, so a plain executor: a runtime's own overhead would swamp a cache hit.
    group.bench_function("cached_keys_full_check", |b| {
        b.iter(|| block_on(provider.verify_uncached(black_box(&token))).unwrap());
    });
    group.bench_function("repeated_token", |b| {
        b.iter(|| block_on(provider.verify(black_box(&token))).unwrap());
    });
    group.bench_function("cold_key", |b| {
        b.iter_batched_ref(
            || Auth0Provider::new(settings(&idp)).unwrap(),
            |fresh| runtime.block_on(fresh.verify(&token)).unwrap(),
            BatchSize::PerIteration,
        );
    });
    group.finish();

    let verified = block_on(provider.verify(&token)).unwrap();
    let mut group = c.benchmark_group("permissions");
    group.bench_function("plain_contains", |b| {
        let held = verified.permissions();
        b.iter(|| {
            black_box(&["tool:a", "tool:b"])
                .iter()
                .all(|p| held.iter().any(|h| h == p))
        });
    });
    group.bench_function("two_of_three_held", |b| {
        b.iter(|| require_permissions(&verified, black_box(&["tool:a", "tool:b"])).unwrap());
    });
    group.bench_function("one_missing", |b| {
        b.iter(|| require_permissions(&verified, black_box(&["tool:a", "tool:z"])).unwrap_err());
    });
    group.finish();
    drop(idp);
}

fn arguments(c: &mut Criterion) {
    let good = json!({"a": 20, "b": 22});
    let bad = json!({"a": "20", "b": 22});
    let object = |v: &Value| v.as_object().unwrap().clone();
    let handler = add::DEF.handler;

    // The handler must really add, or its timing means nothing.
    let result = block_on(handler(ToolCall::new("add", object(&good), None))).unwrap();
    assert_eq!(
        serde_json::to_value(&result).unwrap()["content"][0]["text"],
        "42"
    );
    assert!(block_on(handler(ToolCall::new("add", object(&bad), None))).is_err());

    let mut group = c.benchmark_group("arguments");
    group.bench_function("serde_derive", |b| {
        b.iter(|| AddArguments::deserialize(black_box(&good)).unwrap());
    });
    // The arguments object is moved into the call, as rmcp hands it over; copying it is setup.
    group.bench_function("generated_handler", |b| {
        b.iter_batched(
            || ToolCall::new("add", object(&good), None),
            |call| block_on(handler(call)).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("generated_handler_bad_type", |b| {
        b.iter_batched(
            || ToolCall::new("add", object(&bad), None),
            |call| block_on(handler(call)).unwrap_err(),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, verify, arguments);
criterion_main!(benches);
