//! [`Timeout`]: a future under a child with a tighter deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;

use super::wait::Wait;
use crate::cancel::CancelHandle;
use crate::context::Context;
use crate::core::Cause;
use crate::current;
use crate::error::{Error, FINISHED};

/// Cancels the combinator's child when the combinator finishes or is dropped,
/// so that nothing started under the child outlives the step.
#[derive(Debug)]
struct Finish(Option<CancelHandle>);

/// The references a finished `Timeout` holds to its child: the task-local
/// slot of the finished future, and the handle.
const OWN_REFS: usize = 2;

impl Finish {
    fn now(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.finish(Cause::Reason(&FINISHED), OWN_REFS);
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.cancel_for(Cause::Reason(&FINISHED));
        }
    }
}

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
        // First, so that it is dropped first: the child is canceled before
        // the future is dropped, and the future's drop code sees why.
        finish: Finish,
        #[pin]
        fut: TaskLocalFuture<Context, F>,
        // The parent's values, to rebuild the child for `context()`: the
        // node is in the handle, and a second copy of the child would cost
        // two reference-count operations on every step.
        values: Context,
        #[pin]
        wait: Wait,
    }
}

impl<Fut: Future> Timeout<Fut> {
    pub(crate) fn new<F>((child, handle): (Context, CancelHandle), f: F) -> Self
    where
        F: FnOnce(Context) -> Fut,
    {
        let fut = f(child.clone());
        Timeout {
            values: child.without_cancel(),
            fut: current::scope(child, fut),
            wait: Wait::new(),
            finish: Finish(Some(handle)),
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
        let handle = self.finish.0.as_ref()?;
        Some(self.values.with_node(std::sync::Arc::clone(handle.node())))
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.fut.poll(cx) {
            // Stop waiting first: our own waker and timer are not a reason to
            // cancel the child, and must not be woken by it.
            this.wait.set(Wait::new());
            this.finish.now();
            return Poll::Ready(Ok(output));
        }
        let Some(handle) = this.finish.0.as_ref() else {
            return Poll::Pending;
        };
        // Only an ancestor can cancel the child (its handle is ours), so the
        // waker goes to the parent and the child needs no wait list.
        let child = handle.node();
        match this.wait.poll_wait_via(child, child.parent(), cx) {
            Poll::Ready(err) => {
                this.finish.now();
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
