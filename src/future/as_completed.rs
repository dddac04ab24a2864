//! [`AsCompleted`]: outputs in completion order, as a stream.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::branches::CancelRest;
use super::branches::{BranchSet, Branches, Round, Shape};
use super::wait::Wait;
use crate::context::Context;
use crate::error::{Error, FINISHED};

/// **Fan-out: outputs in completion order**, as a stream.
impl Context {
    /// Runs every future made by `fns`, each under its own child of this
    /// context, and yields `(index, output)` in completion order (asyncio's
    /// `as_completed`).
    ///
    /// When this context ends, the stream yields the context's error once
    /// and ends; the futures still running are canceled and dropped.
    /// Dropping the stream does the same, so breaking out of a loop early
    /// leaves nothing running.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut done = Context::background().as_completed([30u64, 10, 20].map(|ms| {
    ///     move |_ctx| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     }
    /// }));
    /// let mut order = Vec::new();
    /// while let Some(next) = done.next().await {
    ///     order.push(next.unwrap());
    /// }
    /// assert_eq!(order, vec![(1, 10), (2, 20), (0, 30)]);
    /// # }
    /// ```
    #[track_caller]
    pub fn as_completed<I, M, F>(&self, fns: I) -> AsCompleted<F>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future,
    {
        AsCompleted::from_set(
            Branches::new(self, None, fns, Location::caller()),
            self.clone(),
        )
    }
}

impl<F> AsCompleted<F> {
    /// A stream of the branches already started, under `ctx`.
    pub(crate) fn from_set(branches: Branches<F>, ctx: Context) -> Self {
        AsCompleted {
            branches,
            ctx,
            wait: Wait::new(),
            ended: false,
        }
    }
}

pin_project! {
    /// The stream returned by [`Context::as_completed`].
    ///
    /// It is `Unpin`: `next()` works on it directly.
    ///
    /// The futures are polled before the context is checked, so an output
    /// ready in the poll in which the context ends is yielded first; the
    /// error follows on the next poll. After the last output or the error
    /// the stream is finished and yields `None` forever
    /// ([`FusedStream`]).
    ///
    /// # Cancel safety
    ///
    /// `next()` is cancel safe: an output is only taken out of its future
    /// when it is yielded. Dropping the stream cancels every child and drops
    /// every future.
    ///
    /// # Panics
    ///
    /// Waiting on a context with a deadline needs Tokio's timer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(15));
    /// let results: Vec<_> = ctx
    ///     .as_completed([10u64, 20].map(|ms| move |_ctx| tokio::time::sleep(Duration::from_millis(ms))))
    ///     .collect()
    ///     .await;
    /// assert_eq!(results.len(), 2);
    /// assert_eq!(*results[0].as_ref().unwrap(), (0, ()));
    /// assert!(results[1].as_ref().unwrap_err().is_deadline_exceeded());
    /// # }
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct AsCompleted<F> {
        #[pin]
        branches: Branches<F>,
        ctx: Context,
        #[pin]
        wait: Wait,
        ended: bool,
    }
}

impl<F: Future> Stream for AsCompleted<F> {
    type Item = Result<(usize, F::Output), Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        // A round per poll of the stream: every branch woken since the last
        // item is polled again.
        let mut round = Round::default();
        match this.branches.as_mut().poll_next(&mut round, cx) {
            Poll::Ready(Some(next)) => return Poll::Ready(Some(Ok(next))),
            Poll::Ready(None) => {
                *this.ended = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        match this.wait.poll_wait(this.ctx, cx) {
            Poll::Ready(err) => {
                *this.ended = true;
                this.branches.as_mut().cancel_rest(&FINISHED);
                Poll::Ready(Some(Err(err)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: Future> FusedStream for AsCompleted<F> {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

impl<F> std::fmt::Debug for AsCompleted<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("branches", &self.branches.total())
            .field("ended", &self.ended)
            .finish()
    }
}
