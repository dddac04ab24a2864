//! What every server layer shares: how a request's context is derived, and
//! how it ends.
//!
//! A request's context ends in exactly one of these ways, each with an
//! honest cause:
//!
//! 1. its budget runs out: a deadline, named after the request and located
//!    where the layer was built;
//! 2. the server's own context (its parent) ends: shutdown, with the cause
//!    given to it;
//! 3. its response is complete: canceled with "the request completed",
//!    unless the layer lets it linger;
//! 4. the call is dropped before its response is complete, while the
//!    budget still had time in it: canceled with "the caller gave up on the
//!    request". A drop at (or within [`SLACK`] of) the deadline is left to
//!    the deadline: an outer timer on the same budget (tonic's own
//!    `grpc-timeout` handling) drops the call then, and the caller has not
//!    left.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use http::Request;

use super::headers::{BudgetHeaders, InvalidBudgetHeader};
use crate::context::Limit;
use crate::core::Cause;
use crate::error::{CALLER_LEFT, REQUEST_COMPLETED};
use crate::{CancelHandle, Context, Error};

/// How close to its deadline a dropped request counts as having run out of
/// time rather than having been left: a timer on the same budget, armed a
/// moment earlier or later, fires within a tick of Tokio's millisecond
/// clock.
pub(crate) const SLACK: Duration = Duration::from_millis(2);

/// A server layer's settings, shared by its services.
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    pub(crate) parent: Context,
    pub(crate) headers: BudgetHeaders,
    pub(crate) default_budget: Option<Duration>,
    pub(crate) max_budget: Option<Duration>,
    pub(crate) linger: bool,
    /// Taken off every budget: the time an outer timer on the same budget
    /// may have had before this layer saw the request.
    pub(crate) head_start: Duration,
    /// Where the layer was built: the location of every request's context.
    pub(crate) location: &'static Location<'static>,
}

impl ServerOptions {
    pub(crate) fn new(parent: Context, location: &'static Location<'static>) -> Self {
        ServerOptions {
            parent,
            headers: BudgetHeaders::default(),
            default_budget: None,
            max_budget: None,
            linger: false,
            head_start: Duration::ZERO,
            location,
        }
    }
}

/// Why a request was not handed to the inner service.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A budget header could not be read.
    Malformed(InvalidBudgetHeader),
    /// The request's context ended before it started: a zero budget, or a
    /// server already shutting down.
    Ended(Error),
}

/// Derives `request`'s context, puts it in the request's extensions, and
/// returns what ends it; or refuses the request.
pub(crate) fn admit<B>(
    options: &Arc<ServerOptions>,
    request: &mut Request<B>,
) -> Result<RequestEnd, Refusal> {
    let asked = options
        .headers
        .read(request.headers())
        .map_err(Refusal::Malformed)?;
    let budget = match (asked.or(options.default_budget), options.max_budget) {
        (Some(asked), Some(max)) => Some(asked.min(max)),
        (budget, None) | (None, budget) => budget,
    };
    let limit = match budget {
        Some(budget) => Limit::Timeout(budget.saturating_sub(options.head_start)),
        None => Limit::None,
    };
    // Named after the route, so that an error says which request ended.
    let name = format!("request {}", request.uri().path());
    let (ctx, handle) = options
        .parent
        .derive(Some(name.into()), limit, options.location);
    if let Some(ended) = ctx.err() {
        return Err(Refusal::Ended(ended));
    }
    request.extensions_mut().insert(ctx.clone());
    Ok(RequestEnd {
        ctx,
        handle: Some(handle),
        linger: options.linger,
    })
}

/// The end of a request's context: canceled as complete, or as left by the
/// caller when dropped unfinished.
#[derive(Debug)]
pub(crate) struct RequestEnd {
    ctx: Context,
    handle: Option<CancelHandle>,
    linger: bool,
}

impl RequestEnd {
    pub(crate) fn context(&self) -> &Context {
        &self.ctx
    }

    /// The response is complete: the context ends, unless it lingers.
    pub(crate) fn complete(mut self) {
        if let Some(handle) = self.handle.take() {
            if !self.linger {
                handle.cancel_for(Cause::Reason(&REQUEST_COMPLETED));
            }
        }
    }
}

impl Drop for RequestEnd {
    fn drop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        // Ended already: by its deadline, or with the server.
        if self.ctx.is_done() {
            return;
        }
        // Out of time all but a tick: the deadline is what ends it.
        if self.ctx.remaining().is_some_and(|left| left <= SLACK) {
            return;
        }
        handle.cancel_for(Cause::Reason(&CALLER_LEFT));
    }
}

/// How a request's context ended, as its protocol would put it.
#[cfg(any(feature = "tonic", feature = "axum"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Its budget ran out.
    Deadline,
    /// The caller went away.
    CallerLeft,
    /// Canceled from above: the server shutting down.
    Unavailable,
}

#[cfg(any(feature = "tonic", feature = "axum"))]
impl Ended {
    pub(crate) fn of(err: &Error) -> Ended {
        // Work refused for too little budget is the budget's end, seen
        // early: the caller gets the same answer a moment sooner.
        if err.is_deadline_exceeded() || err.is_insufficient_budget() {
            Ended::Deadline
        } else if err.is_for(&CALLER_LEFT) {
            Ended::CallerLeft
        } else {
            Ended::Unavailable
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's call, run under the request's context; what
    /// every server layer's response future is made of.
    #[derive(Debug)]
    pub(crate) struct Serving<F> {
        #[pin]
        call: Option<crate::Run<F>>,
        refused: Option<Refusal>,
        // Until the call completes; then handed to the response body.
        end: Option<RequestEnd>,
    }
}

/// How a served call came out.
#[derive(Debug)]
pub(crate) enum Served<T, E> {
    /// The inner service answered; the request's context goes with the
    /// response body.
    Answered(T, RequestEnd),
    /// The inner service failed; its request is over. With the error of
    /// the request's context if it had ended by then: the failure may be
    /// that ending, seen through the inner service.
    Failed(E, Option<Error>),
    /// The request's context ended first; the inner call was dropped.
    Ended(Error),
    /// The request never reached the inner service.
    Refused(Refusal),
}

impl<F> Serving<F> {
    /// Calls the inner service with `request` under the context `admit`
    /// derived for it; or refuses it.
    pub(crate) fn start<B>(
        options: &Arc<ServerOptions>,
        mut request: Request<B>,
        call: impl FnOnce(Request<B>) -> F,
    ) -> Self
    where
        F: std::future::Future,
    {
        match admit(options, &mut request) {
            Err(refusal) => Serving {
                call: None,
                refused: Some(refusal),
                end: None,
            },
            Ok(end) => {
                let ctx = end.context().clone();
                // Current from the call on: a service may read it before
                // its future first runs.
                let call = ctx.attach_sync(|| call(request));
                Serving {
                    call: Some(ctx.run(call)),
                    refused: None,
                    end: Some(end),
                }
            }
        }
    }
}

impl<F, T, E> std::future::Future for Serving<F>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    type Output = Served<T, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.project();
        let mut slot = this.call;
        let Some(call) = slot.as_mut().as_pin_mut() else {
            return match this.refused.take() {
                Some(refusal) => Poll::Ready(Served::Refused(refusal)),
                None => panic!("a request's response future was polled after it completed"),
            };
        };
        let outcome = std::task::ready!(call.poll(cx));
        // Whatever ended it, the inner call goes now, not when the caller
        // gets round to dropping this future.
        slot.set(None);
        let end = this.end.take();
        Poll::Ready(match (outcome, end) {
            (Ok(Ok(response)), Some(end)) => Served::Answered(response, end),
            (Ok(Err(failed)), end) => {
                let ended = end.and_then(|end| {
                    let ended = end.context().err();
                    end.complete();
                    ended
                });
                Served::Failed(failed, ended)
            }
            (Err(ended), _) => Served::Ended(ended),
            (Ok(Ok(_)), None) => unreachable!("a running call keeps its request's end"),
        })
    }
}

/// The builder methods every server layer shares.
macro_rules! server_options {
    ($layer:ident, $module:literal) => {
        impl $layer {
            /// Which headers carry the caller's budget, and how strictly
            /// they are read; by default `grpc-timeout` and
            /// `connect-timeout-ms`, leniently (see
            /// [`BudgetHeaders`](crate::headers::BudgetHeaders)).
            ///
            /// ```
            /// use tokio_ctx::headers::{BudgetHeaders, Parsing};
            #[doc = concat!("use tokio_ctx::", $module, "::", stringify!($layer), ";")]
            /// use tokio_ctx::Context;
            ///
            #[doc = concat!("let layer = ", stringify!($layer), "::new(Context::background())")]
            ///     .headers(BudgetHeaders::default().parsing(Parsing::Strict));
            /// # drop(layer);
            /// ```
            pub fn headers(mut self, headers: crate::headers::BudgetHeaders) -> Self {
                std::sync::Arc::make_mut(&mut self.options).headers = headers;
                self
            }

            /// The budget of a request that brings none; by default it has
            /// none of its own, and only the parent's limits apply. The
            /// [maximum](Self::max_budget) still caps it.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use tokio_ctx::", $module, "::", stringify!($layer), ";")]
            /// use tokio_ctx::Context;
            ///
            #[doc = concat!("let layer = ", stringify!($layer), "::new(Context::background())")]
            ///     .default_budget(Duration::from_secs(5));
            /// # drop(layer);
            /// ```
            pub fn default_budget(mut self, budget: std::time::Duration) -> Self {
                std::sync::Arc::make_mut(&mut self.options).default_budget = Some(budget);
                self
            }

            /// The most time any request gets, whatever its caller asks
            /// for: what `remaining()` shows in the handler, and so what
            /// its own calls tell the services after it. A request without
            /// a budget gets this one.
            ///
            /// Give it the same value as any timeout that sits outside this
            /// layer (tonic's `Server::timeout`, tower-http's
            /// `TimeoutLayer`): then this layer's deadline comes first, and
            /// the caller gets this layer's answer.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use tokio_ctx::", $module, "::", stringify!($layer), ";")]
            /// use tokio_ctx::Context;
            ///
            #[doc = concat!("let layer = ", stringify!($layer), "::new(Context::background())")]
            ///     .max_budget(Duration::from_millis(200));
            /// # drop(layer);
            /// ```
            pub fn max_budget(mut self, budget: std::time::Duration) -> Self {
                std::sync::Arc::make_mut(&mut self.options).max_budget = Some(budget);
                self
            }

            /// Lets a request's context outlive its response, until its
            /// budget runs out or the parent ends; by default it ends when
            /// the response is complete, as Go's servers end a request's
            /// context when the handler returns, so that work started under
            /// it stops. A call dropped before its response is complete
            /// still cancels it.
            ///
            /// ```
            #[doc = concat!("use tokio_ctx::", $module, "::", stringify!($layer), ";")]
            /// use tokio_ctx::Context;
            ///
            #[doc = concat!("let layer = ", stringify!($layer), "::new(Context::background()).linger(true);")]
            /// # drop(layer);
            /// ```
            pub fn linger(mut self, linger: bool) -> Self {
                std::sync::Arc::make_mut(&mut self.options).linger = linger;
                self
            }
        }
    };
}
pub(crate) use server_options;
