//! A Go-style request context for Tokio.
//!
//! One cheap, cloneable [`Context`] carries **cancellation** (with a cause),
//! a **monotonic deadline** and typed **values** through an async call chain.
//! Each step derives a child that can only tighten the budget; combinators
//! run futures under a child and report, when they fail, exactly which limit
//! ended and why.
//!
//! Hand-wiring `CancellationToken`, `tokio::time::timeout` and `select!`
//! loses the budget at every hop, and an `Elapsed` does not say whose limit
//! fired. A context keeps one budget for the whole request.
//!
//! # Examples
//!
//! A request with a 60 s budget whose steps have their own limits. A close
//! step that runs out of its own 5 ms can be shrugged off; the request
//! running out cannot.
//!
//! ```
//! use std::time::Duration;
//! use tokio_ctx::{Context, Error};
//!
//! async fn close(_ctx: Context) {
//!     tokio::time::sleep(Duration::from_millis(50)).await; // a slow peer
//! }
//!
//! async fn handle(request: &Context) -> Result<&'static str, Error> {
//!     let body = request
//!         .named("connect")
//!         .with_timeout(Duration::from_secs(60), |_ctx| async { "hello" })
//!         .await?;
//!     match request.named("close").with_timeout(Duration::from_millis(5), close).await {
//!         Ok(()) => {}
//!         Err(e) if e.is_own() => eprintln!("{e}; the response is complete anyway"),
//!         Err(e) => return Err(e),
//!     }
//!     Ok(body)
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let (request, _cancel) = Context::background().child_with_timeout(Duration::from_secs(60));
//! assert_eq!(handle(&request).await.unwrap(), "hello");
//! # }
//! ```
//!
//! # Operations
//!
//! | to | use |
//! |---|---|
//! | derive a cancellable child | [`Context::child`] → ([`Context`], [`CancelHandle`]) |
//! | derive with a deadline or timeout | [`Context::child_with_deadline`], [`Context::child_with_timeout`] |
//! | name what you derive | [`Context::named`] |
//! | carry a value | [`Context::with_value`], [`Context::value`] |
//! | detach from cancellation | [`Context::without_cancel`] |
//! | check synchronously | [`Context::is_done`], [`Context::err`], [`Context::check`] |
//! | wait for the end | [`Context::done`], [`Context::done_owned`] |
//! | run a callback at the end | [`Context::on_done`] |
//! | run a future under a context | [`Context::run`] |
//! | run a step with its own limit | [`Context::with_timeout`], [`Context::with_deadline`] |
//! | run cleanup after a cancellation | [`Context::cleanup`] |
//! | first of several to complete | [`Context::race`], [`Context::race_either`] |
//! | first success among several | [`Context::select_first`] |
//! | every output, in input order | [`Context::join_all`], [`Context::settle`] |
//! | every success, or the first failure | [`Context::try_join_all`] |
//! | outputs in completion order | [`Context::as_completed`] |
//! | a stream with a per-item limit | [`Context::stream`], [`ContextStream::item_timeout`] |
//! | a group of tasks | [`Context::scope`], [`Scope::spawn`] |
//! | one task, or blocking work | [`Context::spawn`], [`Context::spawn_blocking`] |
//! | find the ambient context | [`Context::current`], [`Context::attach`] |
//! | speak `CancellationToken` | [`Context::cancellation_token`], [`Context::child_with_token`] |
//! | carry the budget to another service | [`Context::grpc_timeout`], [`GrpcTimeout`]; as middleware, the `tower` module (feature `tower`) |
//!
//! Every combinator runs each future under its own child context, passed to
//! the closure that makes it (and [`Context::current`] while it runs), so
//! nested calls inherit the budget. Losers and leftovers are canceled, with a
//! cause that says why, and dropped: nothing keeps running in the
//! background unless it was detached on purpose.
//!
//! # Time
//!
//! Every deadline is a [`tokio::time::Instant`], so `tokio::time::pause()`
//! and `#[tokio::test(start_paused = true)]` make deadline tests exact.
//! Deadlines are lazy: deriving a context never arms a timer; a timer exists
//! only while something waits for the context.
//!
//! # Features
//!
//! - `tracing` (default): a debug-level event, target `tokio_ctx`, when a
//!   context is canceled or its deadline is first observed to have passed,
//!   carrying its name or call site, its budget and the cause.
//! - `tower`: middleware for `http` services (tonic, axum, hyper) that
//!   gives each incoming request a context with the caller's budget from
//!   the `grpc-timeout` header, and writes the caller's remaining budget
//!   into that header on the way out.
//! - `test-util`: `test_util::cancel_at_every_await`, which runs a future
//!   interrupted after each of its polls (dropped, or its context
//!   canceled), in paused time, and checks what you say must hold after
//!   each: for testing your own code the way this crate tests its own.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod cancel;
mod context;
mod core;
mod current;
mod error;
mod future;
mod grpc_timeout;
mod interop;
mod loom;
mod named;
mod on_done;
mod stream;
mod task;
#[cfg(feature = "test-util")]
pub mod test_util;
#[cfg(feature = "tower")]
pub mod tower;
mod value;

pub use cancel::{CancelGuard, CancelHandle};
pub use context::Context;
pub use current::Attached;
pub use error::{Error, ScopeError, SelectError, TryJoinError};
pub use future::{
    AsCompleted, Done, DoneOwned, JoinAll, Race, RaceEither, Run, SelectFirst, Settle, Timeout,
    TryJoinAll,
};
pub use grpc_timeout::{GrpcTimeout, InvalidGrpcTimeout};
pub use named::Named;
pub use on_done::OnDone;
pub use stream::ContextStream;
pub use task::{Scope, ScopeFuture, ScopedHandle, TaskHandle};

// The README's example is compiled with the doctests, so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The output of [`Context::race_either`], re-exported from `futures`.
pub use futures::future::Either;
