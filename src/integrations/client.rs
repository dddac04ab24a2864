//! What every client layer shares: the budget written on the way out, and
//! the context a call runs under.
//!
//! A call whose context has a deadline runs under a child of its own, whose
//! budget is exactly what the headers tell the next service (after the
//! margin and the rounding of the header's form), and which is derived
//! before the inner client reads those headers. A timer the inner client
//! arms from the same header (tonic's channel does) therefore never fires
//! before the call's own: when both have fired, the call's context has
//! ended, and the context's error is what the caller gets.

use std::panic::Location;
use std::pin::Pin;
use std::time::Duration;

use super::headers::BudgetHeaders;
use crate::context::Limit;
use crate::{CancelHandle, Context, Error};

/// A client layer's settings.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    pub(crate) headers: BudgetHeaders,
    pub(crate) margin: Duration,
    /// Where the layer was built: the location of every call's context.
    pub(crate) location: &'static Location<'static>,
}

/// A call about to be made: its context, and the handle that ends it.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) ctx: Context,
    pub(crate) handle: Option<CancelHandle>,
}

/// The context a request is sent under: the one it carries in its
/// extensions, else the current one.
#[cfg(feature = "tower")]
pub(crate) fn context_of<B>(request: &http::Request<B>) -> Context {
    request
        .extensions()
        .get::<Context>()
        .cloned()
        .unwrap_or_else(Context::current)
}

impl ClientOptions {
    pub(crate) fn new(headers: BudgetHeaders, location: &'static Location<'static>) -> Self {
        ClientOptions {
            headers,
            margin: Duration::ZERO,
            location,
        }
    }

    /// Writes the budget of `ctx` into the request's headers and derives
    /// the call's context, named after `target` (the peer and the path);
    /// the context's error if it has ended (or has no more than the margin
    /// left).
    pub(crate) fn prepare(
        &self,
        ctx: Context,
        target: &str,
        headers: &mut http::HeaderMap,
    ) -> Result<Call, Error> {
        // One clock read serves the check and the header.
        let Some(left) = ctx.remaining() else {
            // No deadline: nothing to write; only a cancellation can end it.
            return match ctx.err() {
                Some(ended) => Err(ended),
                None => Ok(Call { ctx, handle: None }),
            };
        };
        if left.is_zero() || ctx.node().is_some_and(|node| node.is_canceled()) {
            if let Some(ended) = ctx.err() {
                return Err(ended);
            }
        }
        let carried = self
            .headers
            .write(left.saturating_sub(self.margin), headers);
        let (call, handle) = ctx.derive(
            Some(format!("call {target}").into()),
            Limit::Timeout(carried),
            self.location,
        );
        if let Some(ended) = call.err() {
            return Err(ended);
        }
        Ok(Call {
            ctx: call,
            handle: Some(handle),
        })
    }
}

pin_project_lite::pin_project! {
    /// The inner client's call, run under the call's context; what every
    /// client layer's response future is made of.
    #[derive(Debug)]
    pub(crate) struct Calling<F> {
        #[pin]
        call: Option<crate::Run<F>>,
        refused: Option<Error>,
        ctx: Context,
        handle: Option<CancelHandle>,
    }

    impl<F> PinnedDrop for Calling<F> {
        fn drop(this: Pin<&mut Self>) {
            // Given up before the response came: the call's context ends,
            // and with it a request body still being sent.
            if let Some(handle) = this.project().handle.take() {
                handle.cancel_for(crate::core::Cause::Reason(&crate::error::FINISHED));
            }
        }
    }
}

/// How a call came out.
#[derive(Debug)]
pub(crate) enum Called<T, E> {
    /// The response came; the call's context goes with its body.
    Answered(T, Context, Option<CancelHandle>),
    /// The inner client failed while the call's context was alive.
    Failed(E),
    /// The call's context ended: first, or while the inner client was
    /// failing for the same reason (its own timer on the same budget).
    Ended(Error),
}

impl<F> Calling<F> {
    pub(crate) fn start(call: Result<Call, Error>, inner: impl FnOnce() -> F) -> Self
    where
        F: std::future::Future,
    {
        match call {
            Err(ended) => Calling {
                call: None,
                refused: Some(ended),
                ctx: Context::background(),
                handle: None,
            },
            Ok(Call { ctx, handle }) => {
                let call = ctx.attach_sync(inner);
                Calling {
                    call: Some(ctx.run(call)),
                    refused: None,
                    ctx,
                    handle,
                }
            }
        }
    }
}

impl<F, T, E> std::future::Future for Calling<F>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    type Output = Called<T, E>;

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.project();
        let mut slot = this.call;
        let Some(call) = slot.as_mut().as_pin_mut() else {
            return match this.refused.take() {
                Some(ended) => Poll::Ready(Called::Ended(ended)),
                None => panic!("a call's response future was polled after it completed"),
            };
        };
        let outcome = std::task::ready!(call.poll(cx));
        slot.set(None);
        let ctx = std::mem::take(this.ctx);
        let handle = this.handle.take();
        let called = match outcome {
            Ok(Ok(response)) => return Poll::Ready(Called::Answered(response, ctx, handle)),
            // The context decides: a failure when it has ended is its end.
            Ok(Err(failed)) => match ctx.err() {
                Some(ended) => Called::Ended(ended),
                None => Called::Failed(failed),
            },
            Err(ended) => Called::Ended(ended),
        };
        // No answer: the call is over, and a request body still being
        // sent (a streaming call's) goes with it.
        if let Some(handle) = handle {
            handle.cancel_for(crate::core::Cause::Reason(&crate::error::FINISHED));
        }
        Poll::Ready(called)
    }
}

/// What a call's context is named after: the peer, if the request names
/// one, and the path.
#[cfg(feature = "tower")]
pub(crate) fn target_of(uri: &http::Uri) -> String {
    match uri.authority() {
        Some(peer) => format!("{peer}{}", uri.path()),
        None => uri.path().to_owned(),
    }
}
