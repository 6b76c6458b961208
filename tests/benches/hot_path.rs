//! The authentication hot path: verifying a token whose key is cached (full RS256 check), a repeated
//! token (the verified-token cache), and the permission check. `cargo bench -p toolgate-tests`.

use criterion::{Criterion, criterion_group, criterion_main};
use toolgate::{Auth0Provider, Auth0Settings, AuthProvider, SecretString, require_permissions};
use toolgate_dev_idp::{DevIdp, DevIdpConfig};

fn hot_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (idp, provider, token) = runtime.block_on(async {
        let idp = DevIdp::start(DevIdpConfig::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let provider = Auth0Provider::new(Auth0Settings {
            domain: url::Url::parse(&idp.url()).unwrap(),
            client_id: idp.client_id().into(),
            client_secret: SecretString::new(idp.client_secret()),
            audience: idp.audience().into(),
        })
        .unwrap();
        provider.warm_up().await.unwrap();
        let token = idp.user_token("auth0|alice", &["tool:get_user_info", "tool:a", "tool:b"]);
        (idp, provider, token)
    });

    let mut group = c.benchmark_group("verify");
    group.bench_function("cached_keys_full_check", |b| {
        b.iter(|| runtime.block_on(provider.verify_uncached(&token)).unwrap());
    });
    group.bench_function("repeated_token", |b| {
        b.iter(|| runtime.block_on(provider.verify(&token)).unwrap());
    });
    group.finish();

    let verified = runtime.block_on(provider.verify(&token)).unwrap();
    let mut group = c.benchmark_group("permissions");
    group.bench_function("two_of_three_held", |b| {
        b.iter(|| {
            require_permissions(&verified, std::hint::black_box(&["tool:a", "tool:b"])).unwrap()
        });
    });
    group.bench_function("one_missing", |b| {
        b.iter(|| {
            require_permissions(&verified, std::hint::black_box(&["tool:a", "tool:z"])).unwrap_err()
        });
    });
    group.finish();
    drop(idp);
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
