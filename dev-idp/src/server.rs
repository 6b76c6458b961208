//! The routes, Auth0's paths. Each endpoint lives in its own module; this one only composes them.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::state::Shared;
use crate::{authorize, discovery, logout, revoke, token, userinfo};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let well_known = Router::new()
        .route("/openid-configuration", get(discovery::discovery))
        .route("/jwks.json", get(discovery::jwks));
    let oauth = Router::new()
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke));
    Router::new()
        .nest("/.well-known", well_known)
        .nest("/oauth", oauth)
        .route("/authorize", get(authorize::authorize))
        .route("/authorize/decision", post(authorize::decision))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        // OpenID's RP-initiated logout, and Auth0's own path for it.
        .route("/oidc/logout", get(logout::logout))
        .route("/v2/logout", get(logout::logout))
        .with_state(shared)
}
