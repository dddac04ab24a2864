//! [`Done`] and [`DoneOwned`]: futures that resolve when a context ends.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::wait::Wait;
use crate::context::Context;
use crate::error::Error;

pin_project! {
    /// Resolves to a context's [`Error`] when the context ends, made by
    /// [`Context::done`].
    ///
    /// It resolves at once for a context that has already ended, on
    /// cancellation (of the context or any ancestor) as soon as the
    /// cancelling thread wakes it, and at the effective deadline. A context
    /// that never ends ([`Context::background`],
    /// [`Context::without_cancel`]) gives a future that never resolves.
    ///
    /// It may be polled again after it resolved, and resolves again.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it before it resolves loses nothing, and removes
    /// its waker from the context.
    ///
    /// # Panics
    ///
    /// Awaiting a context with a deadline needs Tokio's timer: polling
    /// outside a runtime with time enabled panics, as `tokio::time::sleep`
    /// does.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// tokio::select! {
    ///     err = ctx.done() => println!("gave up: {err}"),
    ///     _ = async { cancel.cancel() } => {}
    /// }
    /// assert!(ctx.done().await.is_canceled());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Done<'a> {
        ctx: &'a Context,
        #[pin]
        wait: Wait,
    }
}

impl<'a> Done<'a> {
    pub(crate) fn new(ctx: &'a Context) -> Self {
        Done {
            ctx,
            wait: Wait::new(),
        }
    }
}

impl Future for Done<'_> {
    type Output = Error;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        let this = self.project();
        this.wait.poll_wait(this.ctx, cx)
    }
}

pin_project! {
    /// [`Done`] owning its context, so it can move into a `'static` task;
    /// made by [`Context::done_owned`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`Done`].
    ///
    /// # Panics
    ///
    /// As [`Done`]: awaiting a deadline needs Tokio's timer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let err = tokio::spawn(ctx.done_owned()).await.unwrap();
    /// assert!(err.is_deadline_exceeded());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct DoneOwned {
        ctx: Context,
        #[pin]
        wait: Wait,
    }
}

impl DoneOwned {
    pub(crate) fn new(ctx: Context) -> Self {
        DoneOwned {
            ctx,
            wait: Wait::new(),
        }
    }
}

impl Future for DoneOwned {
    type Output = Error;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        let this = self.project();
        this.wait.poll_wait(this.ctx, cx)
    }
}
