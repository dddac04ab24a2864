//! [`Run`]: a future under a context.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::wait::Wait;
use crate::context::Context;
use crate::current::Scoped;
use crate::error::Error;

pin_project! {
    /// A future running under a context, made by [`Context::run`].
    ///
    /// Resolves to `Ok` with the future's output, or to `Err` with the
    /// context's error when the context ends first; the future is then
    /// dropped by whoever drops `Run`. While it is polled, the context is
    /// [`Context::current`].
    ///
    /// # Ordering
    ///
    /// The inner future is polled first, on every poll. An output that is
    /// ready is returned even if the context ended in the same instant
    /// (the work is done; discarding it would be a loss, and the context
    /// still reports its end to whoever checks it next). In particular a
    /// future that is ready on its first poll completes even under a context
    /// that has already ended: check [`Context::check`] first to refuse to
    /// start.
    ///
    /// # Cancel safety
    ///
    /// As cancel safe as the inner future: dropping `Run` drops it.
    ///
    /// # Panics
    ///
    /// Polling after it resolved panics. Waiting on a context with a deadline
    /// needs Tokio's timer, as [`Done`](crate::future::Done) does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let slow = ctx.run(tokio::time::sleep(Duration::from_secs(5)));
    /// assert!(slow.await.unwrap_err().is_deadline_exceeded());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Run<F> {
        // Holds the context too, current while the future is polled.
        #[pin]
        fut: Scoped<F>,
        #[pin]
        wait: Wait,
    }
}

impl<F: Future> Run<F> {
    pub(crate) fn new(ctx: Context, fut: F) -> Self {
        Run {
            fut: Scoped::new(ctx, fut),
            wait: Wait::new(),
        }
    }
}

impl<F: Future> Future for Run<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.fut.as_mut().poll(cx) {
            this.wait.clear();
            return Poll::Ready(Ok(output));
        }
        this.wait
            .poll_wait(this.fut.as_ref().get_ref().context(), cx)
            .map(Err)
    }
}

impl<F> std::fmt::Debug for Run<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("ctx", &self.fut.context())
            .finish_non_exhaustive()
    }
}
