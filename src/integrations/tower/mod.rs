//! Carrying a request's budget across services over HTTP and gRPC, as
//! [`tower`](https://docs.rs/tower) middleware (feature `tower`).
//!
//! - [`RequestContextLayer`] (server side) gives every incoming request a
//!   context whose deadline is the caller's remaining budget, read from the
//!   budget headers (`grpc-timeout`, `connect-timeout-ms`, or one of your
//!   choosing: see [`BudgetHeaders`](crate::headers::BudgetHeaders)), within
//!   the server's own default and maximum. The context is current while
//!   the handler runs and while the response body is produced, and sits in
//!   the request's extensions. It ends with the request: when the budget
//!   runs out (the handler is dropped and the call fails with the
//!   context's [`Error`]), when the response is complete, or when the
//!   caller gives up (the call or the body is dropped before the end).
//!   Tasks the handler started under it stop with it.
//! - [`PropagateBudgetLayer`] (client side) writes the remaining budget of
//!   the caller's context, less a margin, into the headers of each
//!   outgoing request, refuses to send one whose context has already
//!   ended, and gives up on the call when the context ends.
//!
//! Both work on [`http::Request`], so they fit any `tower::Service` over
//! `http`. Both fail with a [`BoxError`], as tower's own middleware does.
//! For tonic and axum, whose callers want a status or a response rather
//! than an error, the `tonic` and `axum` modules (features of the same
//! names) wrap these layers and answer every ending in the protocol's own
//! terms.
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
//! assert_eq!(response.body().get_ref(), Some(&"Some(250ms)".to_owned()));
//! # }
//! ```
//!
//! [`Error`]: crate::Error

mod future;
mod propagate;
mod request_context;

pub use super::body::ContextBody;
pub use future::{CallFuture, ResponseFuture};
pub use propagate::{PropagateBudget, PropagateBudgetLayer};
pub use request_context::{RequestContext, RequestContextLayer};

/// The error both services fail with: the inner service's error, the
/// context's [`Error`](crate::Error), or an
/// [`InvalidBudgetHeader`](crate::headers::InvalidBudgetHeader); tell them
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
