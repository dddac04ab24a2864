//! [`TryJoinAll`]: every success in input order, or the first failure.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::branches::CancelRest;
use super::branches::{BranchSet, Branches, Round, Shape};
use super::join_all::Outputs;
use super::wait::WaitWith;
use crate::context::Context;
use crate::error::{TryJoinError, FINISHED, SIBLING_FAILED};

/// **Fan-out: every success, or the first failure** (task-group semantics
/// for futures).
impl Context {
    /// Runs every future made by `fns`, each under its own child of this
    /// context, and resolves to all their values in input order; the first
    /// `Err` cancels the rest (asyncio's `TaskGroup` semantics, for futures).
    ///
    /// The siblings of a failed future are canceled with the cause "a sibling
    /// failed", so tasks they spawned stop too, and dropped. If this context
    /// ends first, the error is [`TryJoinError::Ended`], also when a branch
    /// noticed the end first and failed because of it.
    ///
    /// For a fixed set of closures of different types, use
    /// [`try_join!`](crate::try_join); for a list built at run time, box each
    /// closure and its future (see the [guide](crate::guide)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::{Context, TryJoinError};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let all_good = Context::background()
    ///     .try_join_all([1u8, 2, 3].map(|n| move |_ctx| async move { Ok::<_, String>(n * 10) }))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(all_good, vec![10, 20, 30]);
    ///
    /// let err = Context::background()
    ///     .try_join_all([9u64, 0].map(|secs| move |_ctx| async move {
    ///         if secs == 0 {
    ///             return Err("bad input");
    ///         }
    ///         tokio::time::sleep(Duration::from_secs(secs)).await;
    ///         Ok(())
    ///     }))
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(err, TryJoinError::Failed { index: 1, error: "bad input" }));
    /// # }
    /// ```
    #[track_caller]
    pub fn try_join_all<I, M, F, T, E>(&self, fns: I) -> TryJoinAll<F, T>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future<Output = Result<T, E>>,
    {
        TryJoinAll::from_set(
            Branches::new(self, None, fns, Location::caller()),
            self.clone(),
        )
    }
}

impl<F, T, S: Shape> TryJoinAll<F, T, S> {
    /// A join of the branches already started, under `ctx`.
    pub(crate) fn from_set(branches: S, ctx: Context) -> Self {
        TryJoinAll {
            values: Outputs::new(branches.total()),
            branches,
            ctx,
            wait: WaitWith::new(),
            _branch: PhantomData,
        }
    }
}

pin_project! {
    /// The future returned by [`Context::try_join_all`].
    ///
    /// The futures are polled before the context is checked: the last
    /// success in the poll in which the context ends is reported as such.
    /// A failure once the context has ended is reported as
    /// [`TryJoinError::Ended`]: the branch may only have been giving up
    /// because of that end, as Go code that returns `ctx.Err()` does.
    ///
    /// # Cancel safety
    ///
    /// Dropping it cancels every child and drops every future.
    ///
    /// # Panics
    ///
    /// Polling it after it completed panics. Waiting on a context with a
    /// deadline needs Tokio's timer.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let none = Context::background()
    ///     .try_join_all(Vec::<fn(Context) -> std::future::Ready<Result<u8, ()>>>::new())
    ///     .await;
    /// assert_eq!(none.unwrap(), Vec::<u8>::new());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct TryJoinAll<F, T, S: Shape = Branches<F>> {
        // The list forms' branches, or those of `try_join!` in place.
        #[pin]
        branches: S,
        values: Outputs<T>,
        ctx: Context,
        #[pin]
        wait: WaitWith<S::Timer>,
        _branch: PhantomData<fn() -> F>,
    }
}

impl<F, T, E, S> Future for TryJoinAll<F, T, S>
where
    F: Future<Output = Result<T, E>>,
    S: BranchSet<Branch = F>,
{
    type Output = Result<Vec<T>, TryJoinError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        this.values.assert_pending("TryJoinAll");
        let mut round = Round::default();
        while let Poll::Ready(next) = this.branches.as_mut().poll_next(&mut round, cx) {
            match next {
                Some((index, Ok(value))) => this.values.set(index, value),
                Some((index, Err(error))) => {
                    this.values.discard();
                    // A branch that gives up because the context ended (Go
                    // style, returning its context's error) did not fail on
                    // its own: the end is what happened.
                    if let Some(ended) = this.ctx.err() {
                        this.branches.as_mut().cancel_rest(&FINISHED);
                        return Poll::Ready(Err(TryJoinError::Ended(ended)));
                    }
                    this.branches.as_mut().cancel_rest(&SIBLING_FAILED);
                    return Poll::Ready(Err(TryJoinError::Failed { index, error }));
                }
                None => {
                    if let Some(values) = this.values.take_all() {
                        return Poll::Ready(Ok(values));
                    }
                    break;
                }
            }
        }
        match this.wait.poll_wait(this.ctx, cx) {
            Poll::Ready(err) => {
                this.branches.as_mut().cancel_rest(&FINISHED);
                this.values.discard();
                Poll::Ready(Err(TryJoinError::Ended(err)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F, T, S: Shape> std::fmt::Debug for TryJoinAll<F, T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TryJoinAll")
            .field("branches", &self.branches.total())
            .field("succeeded", &self.values.finished())
            .finish()
    }
}
