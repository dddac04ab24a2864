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
//! | first of several to complete | [`Context::race`], [`Context::race_either`]; [`race!`] for closures of different types |
//! | first success among several | [`Context::select_first`]; [`select_first!`] |
//! | every output, in input order | [`Context::join_all`], [`Context::settle`]; [`join!`] (a tuple) |
//! | every success, or the first failure | [`Context::try_join_all`]; [`try_join!`] (a tuple) |
//! | outputs in completion order | [`Context::as_completed`] |
//! | a stream with a per-item limit | [`Context::stream`], [`ContextStream::item_timeout`] |
//! | a group of tasks (Go's `errgroup`) | [`Context::scope`], [`Scope::spawn`]; at most `n` at once: [`limit`](future::ScopeFuture::limit) |
//! | one task, or blocking work | [`Context::spawn`], [`Context::spawn_blocking`] |
//! | find the ambient context | [`Context::current`], [`Context::attach`] |
//! | speak `CancellationToken` | [`Context::cancellation_token`], [`Context::child_with_token`] |
//! | carry the budget to another service | [`Context::grpc_timeout`], [`GrpcTimeout`]; the `headers`, `tower`, `tonic`, `axum` and `reqwest` modules (features of their names) |
//!
//! Every combinator runs each future under its own child context, passed to
//! the closure that makes it (and [`Context::current`] while it runs), so
//! nested calls inherit the budget. Losers and leftovers are canceled, with a
//! cause that says why, and dropped: nothing keeps running in the
//! background unless it was detached on purpose.
//!
//! The [`guide`] walks through each scenario, and through the Go idioms
//! (`errgroup` with a limit, `signal.NotifyContext`, `defer cancel()`, the
//! token bridge) and where each one lives here.
//!
//! # What dropping a handle does
//!
//! Go makes every cancellation explicit; here some handles cancel when they
//! are dropped and some do not:
//!
//! | value | made by | dropping it |
//! |---|---|---|
//! | [`CancelHandle`] | [`Context::child`] and the other derivations | cancels nothing; the context ends with its parent or its deadline. `#[must_use]`: a handle thrown away unbound warns, like a lost `cancel` in Go |
//! | [`CancelGuard`] | [`CancelHandle::drop_guard`] | cancels the context: Go's `defer cancel()` |
//! | [`TaskHandle`] | [`Context::spawn`], [`Context::spawn_blocking`] | cancels the task, unless [detached](TaskHandle::detach) |
//! | [`ScopedHandle`] | [`Scope::spawn`] | nothing: the scope owns its tasks |
//! | [`OnDone`] | [`Context::on_done`] | nothing: the callback stays registered; [`OnDone::stop`] removes it |
//! | a combinator's future or stream ([`future`]) | [`Context::with_timeout`], [`Context::race`], [`Context::scope`], ... | cancels the children it derived and drops their futures; a scope's tasks stop within its grace period |
//! | [`Context`] | | nothing while another clone, its handle or an [`OnDone`] is left; when the last reference to a context that has not ended goes, its pending [`on_done`](Context::on_done) callbacks run (a token from [`cancellation_token`](Context::cancellation_token) is canceled), since nothing can wait for it any more |
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
//! - `http`: `headers`, the budget in `grpc-timeout`,
//!   `connect-timeout-ms` or a plain header in milliseconds.
//! - `tower`: middleware for `http` services that gives each incoming
//!   request a context with the caller's budget, ending with the request,
//!   and writes the caller's remaining budget into the requests it sends.
//! - `tonic`: the same for tonic servers and channels, every ending a gRPC
//!   status.
//! - `axum`: the same for axum routers, every ending a response; `Context`
//!   as an extractor.
//! - `reqwest`: a reqwest request sent with the caller's budget and
//!   bounded by it.
//! - `test-util`: `test_util::cancel_at_every_await`, which runs a future
//!   interrupted after each of its polls (dropped, or its context
//!   canceled), in paused time, and checks what you say must hold after
//!   each: for testing your own code the way this crate tests its own.
//!
//! The integrations live in one place, each module behind its feature;
//! see the guide's section "Across services".

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
// Shows on docs.rs which feature each gated item needs (`doc_cfg` took in
// `doc_auto_cfg` in Rust 1.92; the explicit `doc(cfg)` below also reads
// right on older nightlies).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cancel;
mod context;
mod core;
mod current;
mod error;
pub mod future;
pub mod guide;
mod integrations;
mod interop;
mod loom;
mod macros;
mod min_budget;
mod movable;
mod named;
mod on_done;
pub mod report;
mod reserve;
mod stream;
mod task;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
mod value;

pub use cancel::{CancelGuard, CancelHandle};
pub use context::Context;
pub use error::{Error, Reason, ScopeError, SelectError, TryJoinError};
pub use integrations::grpc_timeout::{GrpcTimeout, InvalidGrpcTimeout};
pub use min_budget::MinBudget;
pub use movable::DeadlineHandle;
pub use named::Named;
pub use on_done::OnDone;
pub use report::BudgetReport;
pub use reserve::Reserve;
pub use stream::ContextStream;
pub use task::{Scope, ScopedHandle, TaskHandle};

// The futures moved to `future`; inside the crate, `crate::Run` and the
// like still name them, so code written against the old paths builds.
#[allow(unused_imports)]
use future::{
    AsCompleted, Attached, Done, DoneOwned, JoinAll, Race, RaceEither, Run, ScopeFuture,
    SelectFirst, Settle, Timeout, TryJoinAll,
};

/// What the fan-out macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::future::branches::{BranchSet, Branches, GiveUp, Round, Shape, Why};
    pub use crate::future::fanout::*;
    pub use crate::future::fixed::{Abandon, Cons, End, Fixed, List};
    pub use crate::future::wait::{Boxed, Inline, Timer};
}

// The integrations, each behind the feature of its name.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use integrations::axum;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use integrations::headers;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use integrations::reqwest;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub use integrations::tonic;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use integrations::tower;

// The README's example is compiled with the doctests, so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The output of [`Context::race_either`], re-exported from `futures`.
pub use futures::future::Either;
