//! Carrying a request's budget across services over HTTP and gRPC, as
//! [`tower`](https://docs.rs/tower) middleware (feature `tower`).
//!
//! - [`RequestContextLayer`] (server side) gives every incoming request a
//!   context whose deadline is the caller's remaining budget, read from the
//!   `grpc-timeout` header. The context is current while the handler runs
//!   and sits in the request's extensions. When the budget runs out, the
//!   handler is dropped and the call fails with the context's [`Error`];
//!   when the caller gives up (the call is dropped before it completes),
//!   the context is canceled, so tasks the handler started under it stop
//!   too. A completed call leaves the context to its budget, for a body
//!   that is still streaming.
//! - [`PropagateBudgetLayer`] (client side) writes the remaining budget of
//!   the caller's context into the `grpc-timeout` header of each outgoing
//!   request, refuses to send one whose context has already ended, and
//!   gives up on the call when the context ends.
//!
//! Both work on [`http::Request`], so they fit tonic (servers and channels),
//! axum, hyper and anything else built on `tower::Service`.
//!
//! # Examples
//!
//! A handler that learns its budget from the caller's header:
//!
//! ```
//! use std::convert::Infallible;
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::task::{Context as TaskContext, Poll};
//! use std::time::Duration;
//!
//! use http::{Request, Response};
//! use tokio_ctx::tower::RequestContextLayer;
//! use tokio_ctx::Context;
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! /// Answers with the budget it was given.
//! struct Budget;
//!
//! impl Service<Request<()>> for Budget {
//!     type Response = Response<String>;
//!     type Error = Infallible;
//!     type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;
//!
//!     fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
//!         Poll::Ready(Ok(()))
//!     }
//!
//!     fn call(&mut self, _request: Request<()>) -> Self::Future {
//!         let left = Context::current().remaining();
//!         Box::pin(async move { Ok(Response::new(format!("{left:?}"))) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let mut service = RequestContextLayer::new(Context::background()).layer(Budget);
//! let request = Request::builder().header("grpc-timeout", "250m").body(()).unwrap();
//! let response = service.call(request).await.unwrap();
//! assert_eq!(response.body(), "Some(250ms)");
//! # }
//! ```
//!
//! [`Error`]: crate::Error

mod future;
mod propagate;
mod request_context;

pub use future::ResponseFuture;
pub use propagate::{PropagateBudget, PropagateBudgetLayer};
pub use request_context::{RequestContext, RequestContextLayer};

/// The header gRPC carries a call's budget in.
///
/// ```
/// use tokio_ctx::tower::GRPC_TIMEOUT;
///
/// let request = http::Request::builder().header(GRPC_TIMEOUT, "250m").body(()).unwrap();
/// assert_eq!(request.headers()["grpc-timeout"], "250m");
/// ```
pub const GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// The error both services fail with: the inner service's error, the
/// context's [`Error`](crate::Error), or an
/// [`InvalidGrpcTimeout`](crate::InvalidGrpcTimeout) header; tell them
/// apart with `downcast_ref`, as with tower's own middleware.
///
/// ```
/// use tokio_ctx::tower::BoxError;
/// use tokio_ctx::{Context, Error};
///
/// let (ctx, cancel) = Context::background().child();
/// cancel.cancel();
/// let err: BoxError = Box::new(ctx.err().unwrap());
/// assert!(err.downcast_ref::<Error>().is_some_and(Error::is_canceled));
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl From<crate::GrpcTimeout> for http::HeaderValue {
    /// The `grpc-timeout` header value.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::GrpcTimeout;
    ///
    /// let value = http::HeaderValue::from(GrpcTimeout::from(Duration::from_secs(2)));
    /// assert_eq!(value, "2000000u");
    /// ```
    fn from(budget: crate::GrpcTimeout) -> Self {
        // Digits and a unit letter are always a valid header value. The
        // fallback only keeps this free of a panic path, and errs on the
        // side of less time.
        http::HeaderValue::from_str(&budget.to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("1n"))
    }
}
