//! [`Timeout`]: a future under a child with a tighter deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::step::Step;
use super::wait::{DeadlineWatch, InlineWait};
use crate::context::Context;
use crate::error::Error;

pin_project! {
    /// A future running under its own child context, made by
    /// [`Context::with_timeout`] and [`Context::with_deadline`].
    ///
    /// The child's deadline is the earlier of the step's own limit and the
    /// caller's. Resolves to `Ok` with the future's output, or to `Err` when
    /// the child ends first; [`Error::is_own`] then tells whether the step's
    /// own limit fired (`true`: the caller's budget is intact, the step may
    /// be retried or skipped) or the caller's context ended (`false`: give
    /// up). When the step's limit and the caller's fall on the same instant,
    /// the caller's counts.
    ///
    /// Once it resolves, or when it is dropped, the child is canceled, so
    /// tasks spawned under it stop too.
    ///
    /// # Ordering
    ///
    /// The inner future is polled first, on every poll: an output that is
    /// ready wins over a deadline or cancellation observed in the same poll
    /// (as with [`tokio::time::timeout`]). The caller's own context is not
    /// touched, so a cancellation from above is never swallowed: the caller
    /// still sees it on its next check.
    ///
    /// # Cancel safety
    ///
    /// As cancel safe as the inner future: dropping `Timeout` drops it and
    /// cancels the child.
    ///
    /// # Panics
    ///
    /// Polling after it resolved panics. It needs a Tokio runtime with time
    /// enabled to wait for the deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_millis(3));
    /// let err = request
    ///     .with_timeout(Duration::from_millis(5), |_ctx| std::future::pending::<()>())
    ///     .await
    ///     .unwrap_err();
    /// assert!(!err.is_own(), "the request's 3ms ran out first: not recoverable");
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<F> {
        // The future under its child (`step.rs`): canceling the child before
        // the future is dropped, and finishing it when the future completes,
        // are the step's. Only the child's ancestors and the step can cancel
        // it (nobody else has its handle).
        #[pin]
        step: Step<F>,
        // The timer in place: a step that waits arms one, as
        // `tokio::time::timeout` does, and need not allocate it.
        #[pin]
        wait: InlineWait,
        finished: bool,
    }

    impl<F> PinnedDrop for Timeout<F> {
        fn drop(this: Pin<&mut Self>) {
            // Before the step gives up on its child (S4 of `step.rs`): the
            // registration holds the child too, and would make the step
            // cancel it eagerly. (A finished step has let go of its
            // registration already.)
            let this = this.project();
            if !*this.finished {
                this.wait.clear();
            }
        }
    }
}

impl<Fut: Future> Timeout<Fut> {
    #[inline]
    pub(crate) fn new<F>(child: Context, f: F) -> Self
    where
        F: FnOnce(Context) -> Fut,
    {
        Timeout {
            step: Step::new(child, f),
            wait: InlineWait::new(),
            finished: false,
        }
    }
}

impl<F> Timeout<F> {
    /// The child this step runs under: its deadline is the step's effective
    /// budget.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(2));
    /// let step = request.with_timeout(Duration::from_secs(5), |_ctx| async {});
    /// assert_eq!(step.context().unwrap().remaining(), Some(Duration::from_secs(2)));
    /// step.await.unwrap();
    /// # }
    /// ```
    ///
    /// `None` once the step has finished.
    pub fn context(&self) -> Option<Context> {
        if self.finished {
            return None;
        }
        Some(self.step.context().clone())
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if *this.finished {
            // The documented `# Panics`; after an `Err` the inner future is
            // still there, and must not be polled again.
            panic!("`Timeout` polled after it completed");
        }
        if let Poll::Ready(output) = this.step.as_mut().poll(cx) {
            *this.finished = true;
            // Stop waiting first (S4 of `step.rs`): the registration holds
            // the child, which is not a reason to cancel it.
            this.wait.clear();
            this.step.finish();
            return Poll::Ready(Ok(output));
        }
        let Some(child) = this.step.context().node() else {
            return Poll::Pending;
        };
        // Only an ancestor can cancel the child (its handle is ours), so the
        // waker goes where the parent's waiters go (invariant 9 of the core)
        // and the child needs no wait list; the timer covers both deadlines.
        let parent_target = child.parent().and_then(|parent| parent.wait_target());
        match this
            .wait
            .poll_wait_via(child, parent_target, DeadlineWatch::TimerOnly, cx)
        {
            Poll::Ready(err) => {
                // The child has ended: nothing to cancel. The future is
                // dropped with the step.
                *this.finished = true;
                Poll::Ready(Err(err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> std::fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout")
            .field("child", &self.context())
            .finish_non_exhaustive()
    }
}
