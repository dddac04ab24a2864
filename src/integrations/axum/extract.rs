//! The request's [`Context`] as an axum extractor.

use std::fmt;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::Context;

/// The context the request runs under, put there by
/// [`RequestContextLayer`](super::RequestContextLayer) (or the tower layer
/// of the same name).
///
/// ```
/// use axum::{routing::get, Router};
/// use tokio_ctx::axum::RequestContextLayer;
/// use tokio_ctx::Context;
///
/// async fn budget(ctx: Context) -> String {
///     format!("{:?}", ctx.remaining())
/// }
///
/// let app: Router = Router::new()
///     .route("/budget", get(budget))
///     .layer(RequestContextLayer::new(Context::background()));
/// # drop(app);
/// ```
impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = MissingContext;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Context>()
            .cloned()
            .ok_or(MissingContext { _private: () })
    }
}

/// The rejection of the [`Context`] extractor on a route that no
/// [`RequestContextLayer`](super::RequestContextLayer) covers: a
/// `500 Internal Server Error` that says so, as axum's own `Extension`
/// extractor answers a missing extension.
///
/// ```
/// use axum_core::extract::FromRequestParts;
/// use axum_core::response::IntoResponse;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (mut parts, ()) = http::Request::new(()).into_parts();
/// let missing = Context::from_request_parts(&mut parts, &()).await.unwrap_err();
/// assert_eq!(missing.into_response().status(), 500);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingContext {
    _private: (),
}

impl fmt::Display for MissingContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no request context: add tokio_ctx::axum::RequestContextLayer to the router")
    }
}

impl std::error::Error for MissingContext {}

impl IntoResponse for MissingContext {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
