//! axum: a request's context as an extractor, and every ending a response
//! (feature `axum`).
//!
//! - [`RequestContextLayer`], for `Router::layer`, gives each request a
//!   context with the caller's budget (the options and the way the context
//!   ends are those of the tower layer of the same name) and answers every
//!   ending itself, so the router needs no `HandleErrorLayer`.
//! - `IntoResponse` for [`Error`](crate::Error): `504 Gateway Timeout`
//!   when a budget ran out, `499` (client closed request) when the caller
//!   left, `503 Service Unavailable` for any other cancellation (the
//!   server shutting down); the context's message as the body. And for
//!   [`InvalidBudgetHeader`](crate::headers::InvalidBudgetHeader): `400 Bad
//!   Request`.
//! - [`Context`](crate::Context) is an extractor: `async fn handler(ctx:
//!   Context)`.
//! - [`handle_error`], for the other fallible layers (`HandleErrorLayer::new(handle_error)`).
//!
//! A handler that fails with a server error (5xx) after its request's
//! context ended gets the ending's answer instead: a downstream call that
//! failed because the budget was spent is a `504`, not a `502`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use tokio_ctx::axum::RequestContextLayer;
//! use tokio_ctx::{Context, Error};
//!
//! async fn slow(ctx: Context) -> Result<String, Error> {
//!     // 504 with the context's message if the budget runs out first.
//!     ctx.run(tokio::time::sleep(Duration::from_millis(10))).await?;
//!     Ok(format!("done with {:?} to spare", ctx.remaining()))
//! }
//!
//! let (server_ctx, _shutdown) = Context::background().named("api").child();
//! let app: Router = Router::new()
//!     .route("/slow", get(slow))
//!     .layer(RequestContextLayer::new(server_ctx).max_budget(Duration::from_secs(2)));
//! # drop(app);
//! ```

mod extract;
mod layer;
mod response;

pub use extract::MissingContext;
pub use layer::{RequestContext, RequestContextLayer, ResponseFuture};
pub use response::handle_error;
