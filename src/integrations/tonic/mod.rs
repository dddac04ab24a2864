//! tonic servers and clients whose every ending is a gRPC status (feature
//! `tonic`).
//!
//! - [`RequestContextLayer`], for `Server::builder().layer(..)`, gives each
//!   call a context with the caller's `grpc-timeout` budget (see the tower
//!   layer of the same name for the options), current in the handler and
//!   in the response stream, and readable with
//!   [`RequestExt::context`]. Every ending reaches the caller as a status
//!   with the context's message, never as a reset stream:
//!   `DEADLINE_EXCEEDED` when the budget runs out, `UNAVAILABLE` when the
//!   server's context ends (the shutdown's cause in the message),
//!   `INVALID_ARGUMENT` for a malformed header when the headers are read
//!   strictly (by default it is ignored, as tonic ignores it), and
//!   `CANCELLED` for a caller who left. A failure a handler reports after
//!   its context ended is replaced by the ending's status: the call failed
//!   because the budget was spent.
//! - [`PropagateBudgetLayer`] wraps a `Channel`: each call carries the
//!   caller's remaining budget, less a margin, in `grpc-timeout`, and when
//!   the caller's context ends the call fails with `DEADLINE_EXCEEDED` or
//!   `CANCELLED` and the context's message, whichever timer fired first
//!   (the channel arms its own from the header). Streaming calls are reset
//!   when the context ends.
//! - `From<Error> for Status`: `?` on a context's error in a handler.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use tokio_ctx::tonic::{PropagateBudgetLayer, RequestContextLayer};
//! use tokio_ctx::Context;
//! use tonic::transport::{Endpoint, Server};
//! use tower::ServiceBuilder;
//!
//! # async fn run(routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
//! // A server whose requests end when it shuts down, and never run past 2 s.
//! let (server_ctx, shutdown) = Context::background().named("server").child();
//! let serving = Server::builder()
//!     .layer(RequestContextLayer::new(server_ctx.clone()).max_budget(Duration::from_secs(2)))
//!     .add_routes(routes)
//!     .serve_with_shutdown("127.0.0.1:50051".parse()?, async move {
//!         let _ = server_ctx.done().await;
//!     });
//!
//! // A client whose calls carry what is left of the caller's context.
//! let channel = Endpoint::from_static("http://127.0.0.1:50052").connect_lazy();
//! let channel = ServiceBuilder::new()
//!     .layer(PropagateBudgetLayer::new().margin(Duration::from_millis(5)))
//!     .service(channel);
//! # let _ = (serving, channel, shutdown);
//! # Ok(())
//! # }
//! ```

mod client;
mod request;
mod server;

use std::sync::Arc;

pub use client::{CallFuture, PropagateBudget, PropagateBudgetLayer};
pub use request::RequestExt;
pub use server::{RequestContext, RequestContextLayer, ResponseFuture};

use tonic::{Code, Status};

use super::server::Ended;
use crate::Error;

/// The status of a call whose context ended, as a client reports it:
/// `DEADLINE_EXCEEDED` for a deadline (the gRPC specification asks clients
/// to report their own expired deadline so) and for work refused because
/// too little of the budget was left ([`Error::is_insufficient_budget`]),
/// `CANCELLED` for a cancellation; the context's message, and the error as
/// the source.
///
/// ```
/// use tokio_ctx::Context;
///
/// let (ctx, cancel) = Context::background().named("lookup").child();
/// cancel.cancel_with("user hung up");
/// let status = tonic::Status::from(ctx.err().unwrap());
/// assert_eq!(status.code(), tonic::Code::Cancelled);
/// assert!(status.message().starts_with(r#"canceled (context "lookup", set at "#));
/// assert!(status.message().ends_with("): user hung up"));
/// ```
impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = if err.is_deadline_exceeded() || err.is_insufficient_budget() {
            Code::DeadlineExceeded
        } else {
            Code::Cancelled
        };
        with_source(code, err)
    }
}

fn with_source(code: Code, err: Error) -> Status {
    let mut status = Status::new(code, err.to_string());
    status.set_source(Arc::new(err));
    status
}

/// The status a server answers a call whose context ended with.
pub(crate) fn ending_status(err: &Error) -> Status {
    let code = match Ended::of(err) {
        Ended::Deadline => Code::DeadlineExceeded,
        Ended::CallerLeft => Code::Cancelled,
        Ended::Unavailable => Code::Unavailable,
    };
    with_source(code, err.clone())
}

/// The error a request body fails with when its call's context ends: a
/// `CANCELLED` status carrying the HTTP/2 reason `CANCEL`, which the
/// connection sends as the stream's reset, as gRPC asks of a client that
/// gives up.
pub(crate) fn reset_status(err: Error) -> Status {
    let mut status = Status::from(err);
    status.set_source(Arc::new(h2::Error::from(h2::Reason::CANCEL)));
    status
}

/// True if `response` is a trailers-only answer with an error status.
fn is_failure<B>(response: &http::Response<B>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .is_some_and(|code| code.as_bytes() != b"0")
}
