//! [`JoinAll`] and [`Settle`]: every output, in input order.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::branches::CancelRest;
use super::branches::{BranchSet, Branches, Round, Shape};
use super::wait::{Wait, WaitWith};
use crate::context::Context;
use crate::error::{Error, FINISHED};

/// **Fan-out: every output**, in input order.
impl Context {
    /// Runs every future made by `fns`, each under its own child of this
    /// context, and resolves to all their outputs in input order (asyncio's
    /// `gather`).
    ///
    /// It ends early only if this context ends, with the context's error;
    /// the futures still running are then dropped. Outputs are not
    /// inspected: for futures of `Result`, an `Err` is an output like any
    /// other (asyncio's `return_exceptions=True`); use
    /// [`try_join_all`](Self::try_join_all) to stop at the first failure.
    ///
    /// For a fixed set of closures of different types, use
    /// [`join!`](crate::join); for a list built at run time, box each
    /// closure and its future (see the [guide](crate::guide)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let sizes = Context::background()
    ///     .join_all([30u64, 10, 20].map(|ms| move |_ctx| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms * 2
    ///     }))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(sizes, vec![60, 20, 40], "input order, not completion order");
    /// # }
    /// ```
    #[track_caller]
    pub fn join_all<I, M, F>(&self, fns: I) -> JoinAll<F>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future,
    {
        JoinAll::from_set(
            Branches::new(self, None, fns, Location::caller()),
            self.clone(),
        )
    }

    /// Like [`join_all`](Self::join_all), but never fails as a whole: each
    /// entry is the future's output, or the context's error for a future that
    /// had not finished when the context ended. Every outcome is reported.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(50));
    /// let outcomes = ctx
    ///     .settle([10u64, 100].map(|ms| move |_ctx| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     }))
    ///     .await;
    /// assert_eq!(*outcomes[0].as_ref().unwrap(), 10);
    /// assert!(outcomes[1].as_ref().unwrap_err().is_deadline_exceeded());
    /// # }
    /// ```
    #[track_caller]
    pub fn settle<I, M, F>(&self, fns: I) -> Settle<F>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future,
    {
        Settle::from_set(
            Branches::new(self, None, fns, Location::caller()),
            self.clone(),
        )
    }
}

impl<F: Future, S: BranchSet<Branch = F>> JoinAll<F, S> {
    /// A join of the branches already started, under `ctx`.
    pub(crate) fn from_set(branches: S, ctx: Context) -> Self {
        JoinAll {
            outputs: Outputs::new(branches.total()),
            branches,
            ctx,
            wait: WaitWith::new(),
            _branch: PhantomData,
        }
    }
}

impl<F: Future> Settle<F> {
    /// A settle of the branches already started, under `ctx`.
    pub(crate) fn from_set(branches: Branches<F>, ctx: Context) -> Self {
        Settle {
            outputs: Outputs::new(branches.total()),
            branches,
            ctx,
            wait: Wait::new(),
        }
    }
}

/// Outputs by input position, filled as the futures finish; taken once, when
/// the combinator completes, which is how it knows it has.
pub(crate) struct Outputs<T> {
    slots: Option<Vec<Option<T>>>,
}

impl<T> Outputs<T> {
    pub(crate) fn new(len: usize) -> Self {
        Outputs {
            slots: Some(std::iter::repeat_with(|| None).take(len).collect()),
        }
    }

    /// Panics, naming `what`, if the outputs were taken: the combinator was
    /// polled after it completed (the documented `# Panics`).
    pub(crate) fn assert_pending(&self, what: &str) {
        if self.slots.is_none() {
            panic!("`{what}` polled after it completed");
        }
    }

    pub(crate) fn set(&mut self, index: usize, value: T) {
        if let Some(slot) = self.slots.as_mut().and_then(|slots| slots.get_mut(index)) {
            *slot = Some(value);
        }
    }

    pub(crate) fn finished(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|slot| slot.is_some())
            .count()
    }

    /// Every slot; `missing` fills the ones that never got a value.
    pub(crate) fn take(&mut self, mut missing: impl FnMut() -> T) -> Vec<T> {
        self.slots
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|slot| slot.unwrap_or_else(&mut missing))
            .collect()
    }

    /// Every slot, if every one has a value; otherwise they stay.
    pub(crate) fn take_all(&mut self) -> Option<Vec<T>> {
        if self.slots.as_ref()?.iter().any(Option::is_none) {
            return None;
        }
        self.slots.take()?.into_iter().collect()
    }

    /// Drops what was gathered: the combinator completed another way.
    pub(crate) fn discard(&mut self) {
        self.slots = None;
    }
}

pin_project! {
    /// The future returned by [`Context::join_all`].
    ///
    /// Each future is polled at most once per poll (see
    /// [`Race`](crate::future::Race) for which and in what order). When the
    /// last output arrives in the poll in which the
    /// context ends, the outputs are returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping it cancels every child and drops every future; outputs
    /// already produced are dropped with it.
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
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// let err = ctx.join_all([|_c| std::future::pending::<()>()]).await.unwrap_err();
    /// assert!(err.is_canceled());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct JoinAll<F: Future, S: Shape = Branches<F>> {
        // The list forms' branches, or those of `join!` in place.
        #[pin]
        branches: S,
        outputs: Outputs<F::Output>,
        ctx: Context,
        #[pin]
        wait: WaitWith<S::Timer>,
        _branch: PhantomData<fn() -> F>,
    }
}

impl<F: Future, S: BranchSet<Branch = F>> Future for JoinAll<F, S> {
    type Output = Result<Vec<F::Output>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        this.outputs.assert_pending("JoinAll");
        let mut round = Round::default();
        while let Poll::Ready(next) = this.branches.as_mut().poll_next(&mut round, cx) {
            match next {
                Some((index, output)) => this.outputs.set(index, output),
                None => {
                    if let Some(outputs) = this.outputs.take_all() {
                        return Poll::Ready(Ok(outputs));
                    }
                    break;
                }
            }
        }
        match this.wait.poll_wait(this.ctx, cx) {
            Poll::Ready(err) => {
                this.branches.as_mut().cancel_rest(&FINISHED);
                this.outputs.discard();
                Poll::Ready(Err(err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: Future, S: Shape> std::fmt::Debug for JoinAll<F, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinAll")
            .field("branches", &self.branches.total())
            .field("finished", &self.outputs.finished())
            .finish()
    }
}

pin_project! {
    /// The future returned by [`Context::settle`].
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
    /// let outcomes = Context::background()
    ///     .settle([1u8, 0].map(|n| move |_ctx| async move { if n > 0 { Ok(n) } else { Err("no") } }))
    ///     .await;
    /// assert_eq!(outcomes.len(), 2);
    /// assert_eq!(*outcomes[1].as_ref().unwrap(), Err("no"));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Settle<F: Future> {
        #[pin]
        branches: Branches<F>,
        outputs: Outputs<Result<F::Output, Error>>,
        ctx: Context,
        #[pin]
        wait: Wait,
    }
}

impl<F: Future> Future for Settle<F> {
    type Output = Vec<Result<F::Output, Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        this.outputs.assert_pending("Settle");
        let mut round = Round::default();
        while let Poll::Ready(next) = this.branches.as_mut().poll_next(&mut round, cx) {
            match next {
                Some((index, output)) => this.outputs.set(index, Ok(output)),
                None => {
                    if let Some(outcomes) = this.outputs.take_all() {
                        return Poll::Ready(outcomes);
                    }
                    break;
                }
            }
        }
        match this.wait.poll_wait(this.ctx, cx) {
            Poll::Ready(err) => {
                this.branches.as_mut().cancel_rest(&FINISHED);
                Poll::Ready(this.outputs.take(|| Err(err.clone())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: Future> std::fmt::Debug for Settle<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settle")
            .field("branches", &self.branches.total())
            .field("finished", &self.outputs.finished())
            .finish()
    }
}
