//! The answers of endings, as axum responses.

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;

use crate::headers::InvalidBudgetHeader;
use crate::integrations::server::Ended;
use crate::tower::BoxError;
use crate::Error;

/// nginx's "client closed request": the caller left before the answer.
fn client_closed() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// `504 Gateway Timeout` for a budget that ran out (or work refused because
/// too little of it was left, [`Error::is_insufficient_budget`]), `499` when the caller
/// left, `503 Service Unavailable` for any other cancellation (the server
/// shutting down, or the request canceled from above); the error's message
/// as a plain-text body.
///
/// ```
/// use axum_core::response::IntoResponse;
/// use tokio_ctx::Context;
///
/// let (ctx, shutdown) = Context::background().named("api").child();
/// shutdown.cancel_with("shutting down");
/// let response = ctx.err().unwrap().into_response();
/// assert_eq!(response.status(), 503);
/// ```
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match Ended::of(&self) {
            Ended::Deadline => StatusCode::GATEWAY_TIMEOUT,
            Ended::CallerLeft => client_closed(),
            Ended::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, self.to_string()).into_response()
    }
}

/// `400 Bad Request`, with the error's message.
///
/// ```
/// use axum_core::response::IntoResponse;
/// use http::HeaderMap;
/// use tokio_ctx::headers::{BudgetHeaders, Parsing};
///
/// let mut request = HeaderMap::new();
/// request.insert("connect-timeout-ms", "-1".parse().unwrap());
/// let err = BudgetHeaders::default().parsing(Parsing::Strict).read(&request).unwrap_err();
/// assert_eq!(err.into_response().status(), 400);
/// ```
impl IntoResponse for InvalidBudgetHeader {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.to_string()).into_response()
    }
}

/// The answer to an error of the tower layers (or any boxed error): the
/// responses above for a context's [`Error`] and an
/// [`InvalidBudgetHeader`], `500 Internal Server Error` with the message
/// for anything else. For `axum::error_handling::HandleErrorLayer::new`,
/// in front of a fallible layer.
///
/// ```
/// use axum::error_handling::HandleErrorLayer;
/// use axum::{routing::get, Router};
/// use tokio_ctx::axum::handle_error;
/// use tokio_ctx::tower::RequestContextLayer;
/// use tokio_ctx::Context;
/// use tower::ServiceBuilder;
///
/// let app: Router = Router::new().route("/", get(|| async { "hello" })).layer(
///     ServiceBuilder::new()
///         .layer(HandleErrorLayer::new(handle_error))
///         .layer(RequestContextLayer::new(Context::background())),
/// );
/// # drop(app);
/// ```
pub async fn handle_error(err: BoxError) -> Response {
    let err = match err.downcast::<Error>() {
        Ok(ended) => return ended.into_response(),
        Err(err) => err,
    };
    match err.downcast::<InvalidBudgetHeader>() {
        Ok(malformed) => malformed.into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}
