//! [`Join`] and [`TryJoin`]: every output of a fixed set of closures of
//! different types, as a tuple.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::branches::{BranchSet, Branches, Shape};
use super::fanout::{Collect, Transpose, Transposed};
use super::{JoinAll, TryJoinAll};
use crate::error::{Error, TryJoinError};

pin_project! {
    /// The future returned by [`join!`](crate::join): a
    /// [`JoinAll`] of branches of different types, resolving to the tuple
    /// of their outputs, in input order.
    ///
    /// Fairness, ordering, cancel safety and panics are those of
    /// [`JoinAll`]: every branch runs under its own child of the context,
    /// and the join ends early only when the context ends.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::background();
    /// let (n, s) = tokio_ctx::join!(ctx, |_ctx| async { 1u8 }, |_ctx| async { "two" })
    ///     .await
    ///     .unwrap();
    /// assert_eq!((n, s), (1, "two"));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Join<B: Future, S: Shape = Branches<B>> {
        #[pin]
        inner: JoinAll<B, S>,
    }
}

impl<B: Future, S: Shape> Join<B, S> {
    pub(crate) fn new(inner: JoinAll<B, S>) -> Self {
        Join { inner }
    }
}

impl<B, S> Future for Join<B, S>
where
    B: Future,
    B::Output: Collect,
    S: BranchSet<Branch = B>,
{
    type Output = Result<<B::Output as Collect>::Tuple, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map(|joined| joined.map(Collect::collect))
    }
}

impl<B: Future, S: Shape> fmt::Debug for Join<B, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join").field("inner", &self.inner).finish()
    }
}

pin_project! {
    /// The future returned by [`try_join!`](crate::try_join): a
    /// [`TryJoinAll`] of branches of different types, resolving to the
    /// tuple of their values, in input order, or to the first failure.
    ///
    /// Fairness, ordering, cancel safety and panics are those of
    /// [`TryJoinAll`]: the first `Err` cancels the other branches with the
    /// cause "a sibling failed", and a failure once the context has ended
    /// is reported as [`TryJoinError::Ended`].
    ///
    /// ```
    /// use tokio_ctx::{Context, TryJoinError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::background();
    /// let err = tokio_ctx::try_join!(
    ///     ctx,
    ///     |_ctx| async { Ok::<u8, &str>(1) },
    ///     |_ctx| async { Err::<String, &str>("no profile") },
    /// )
    /// .await
    /// .unwrap_err();
    /// assert!(matches!(err, TryJoinError::Failed { index: 1, error: "no profile" }));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct TryJoin<B, O, S: Shape = Branches<Transposed<B>>> {
        #[pin]
        inner: TryJoinAll<Transposed<B>, O, S>,
    }
}

impl<B, O, S: Shape> TryJoin<B, O, S> {
    pub(crate) fn new(inner: TryJoinAll<Transposed<B>, O, S>) -> Self {
        TryJoin { inner }
    }
}

impl<B, O, S> Future for TryJoin<B, O, S>
where
    B: Future,
    B::Output: Transpose<Ok = O>,
    O: Collect,
    S: BranchSet<Branch = Transposed<B>>,
{
    type Output = Result<O::Tuple, TryJoinError<<B::Output as Transpose>::Err>>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map(|joined| joined.map(Collect::collect))
    }
}

impl<B, O, S: Shape> fmt::Debug for TryJoin<B, O, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoin")
            .field("inner", &self.inner)
            .finish()
    }
}
