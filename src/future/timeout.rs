//! [`Timeout`]: a future under a child with a tighter deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::wait::{DeadlineWatch, Wait};
use crate::context::Context;
use crate::core::Cause;
use crate::current::Scoped;
use crate::error::{Error, FINISHED, MAKER_PANICKED};

/// The references a finished `Timeout` holds to its child: the one in its
/// [`Scoped`] future.
const OWN_REFS: usize = 1;

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
        // The child lives in the scoped future, which makes it current while
        // the future is polled: no second copy, so no reference counting on
        // every step. Only the child's ancestors can cancel it (nobody else
        // has its handle).
        #[pin]
        fut: Scoped<F>,
        #[pin]
        wait: Wait,
        finished: bool,
    }

    impl<F> PinnedDrop for Timeout<F> {
        fn drop(this: Pin<&mut Self>) {
            // Before the fields are dropped: the child is canceled before the
            // future is, and the future's drop code sees why.
            let this = this.project();
            if !*this.finished {
                if let Some(child) = this.fut.as_ref().get_ref().context().node() {
                    child.abandon(Cause::Reason(&FINISHED));
                }
            }
        }
    }
}

impl<Fut: Future> Timeout<Fut> {
    pub(crate) fn new<F>(child: Context, f: F) -> Self
    where
        F: FnOnce(Context) -> Fut,
    {
        let fut = make_under(&child, f);
        Timeout {
            fut: Scoped::new(child, fut),
            wait: Wait::new(),
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
        Some(self.fut.context().clone())
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
        if let Poll::Ready(output) = this.fut.as_mut().poll(cx) {
            // Stop waiting first: our own waker and timer are not a reason to
            // cancel the child, and must not be woken by it.
            this.wait.clear();
            *this.finished = true;
            finish(this.fut.as_ref().get_ref());
            return Poll::Ready(Ok(output));
        }
        let Some(child) = this.fut.as_ref().get_ref().context().node() else {
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
                *this.finished = true;
                finish(this.fut.as_ref().get_ref());
                Poll::Ready(Err(err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Calls `f` with a clone of `child`. If `f` panics, `child` is canceled
/// before the panic goes on: `f` may have started work under it (spawned a
/// task, handed it to a library), and nothing else would ever end it.
pub(crate) fn make_under<F, Fut>(child: &Context, f: F) -> Fut
where
    F: FnOnce(Context) -> Fut,
{
    struct CancelOnUnwind<'a>(Option<&'a Context>);

    impl Drop for CancelOnUnwind<'_> {
        fn drop(&mut self) {
            if let Some(node) = self.0.and_then(Context::node) {
                node.cancel(Some(Cause::Reason(&MAKER_PANICKED)));
            }
        }
    }

    let mut guard = CancelOnUnwind(Some(child));
    let fut = f(child.clone());
    guard.0 = None;
    fut
}

/// Cancels the child of a step that has ended, so that nothing started under
/// it outlives the step, unless nobody could tell.
fn finish<F>(fut: &Scoped<F>) {
    if let Some(child) = fut.context().node() {
        child.finish(Cause::Reason(&FINISHED), OWN_REFS);
    }
}

impl<F> std::fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout")
            .field("child", &self.context())
            .finish_non_exhaustive()
    }
}
