//! [`SelectFirst`]: the first success among several futures wins.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::branches::CancelRest;
use super::branches::{BranchSet, Branches, Round, Shape};
use super::wait::WaitWith;
use crate::context::Context;
use crate::error::{SelectError, FINISHED, LOST_RACE};

/// **Fan-out: the first success** among several; every failure is kept.
impl Context {
    /// Runs every future made by `fns`, each under its own child of this
    /// context; the first `Ok` wins (first success among replicas).
    ///
    /// Resolves to the winner's index and value; the others are canceled
    /// with the cause "lost the race" and dropped. Failures are collected:
    /// if every future fails, the [`SelectError`] carries all the failures
    /// in input order; if the context ends first, it carries the context's
    /// error and the failures seen so far. An empty input fails at once with
    /// no failures, as an empty [`race`](Self::race) does. Fairness and ordering are those of [`Race`](crate::future::Race).
    ///
    /// For a fixed set of closures of different types, use
    /// [`select_first!`](crate::select_first); for a list built at run time, box each
    /// closure and its future (see the [guide](crate::guide)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Replica 0 fails fast, replica 1 answers after 50ms, replica 2 after 80ms.
    /// let replicas = [(0, false), (50, true), (80, true)];
    /// let (index, answer) = Context::background()
    ///     .select_first(replicas.map(|(ms, healthy)| move |_ctx| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         if healthy { Ok(ms) } else { Err("connection refused") }
    ///     }))
    ///     .await
    ///     .unwrap();
    /// assert_eq!((index, answer), (1, 50));
    /// # }
    /// ```
    #[track_caller]
    pub fn select_first<I, M, F, T, E>(&self, fns: I) -> SelectFirst<F, E>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future<Output = Result<T, E>>,
    {
        SelectFirst::from_set(
            Branches::new(self, None, fns, Location::caller()),
            self.clone(),
        )
    }
}

impl<F, E, S: Shape> SelectFirst<F, E, S> {
    /// A selection among the branches already started, under `ctx`.
    pub(crate) fn from_set(branches: S, ctx: Context) -> Self {
        SelectFirst {
            branches,
            failures: Some(Vec::new()),
            ctx,
            wait: WaitWith::new(),
            _branch: PhantomData,
        }
    }
}

pin_project! {
    /// The future returned by [`Context::select_first`].
    ///
    /// # Fairness
    ///
    /// As [`Race`](crate::future::Race): up to eight futures, or closures
    /// of different types ([`select_first!`](crate::select_first)), are all
    /// polled in input order on every poll; more, in input order on the
    /// first poll and in wake order after that. Each is polled at most once
    /// per poll; the first success polled wins.
    ///
    /// # Ordering
    ///
    /// The futures are polled before the context is checked: a success in
    /// the poll in which the context ends is returned. When every candidate
    /// has failed and the context has ended by then, the error carries the
    /// context's error as well as the failures: the candidates may only have
    /// been giving up because of that end.
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
    ///     .select_first(Vec::<fn(Context) -> std::future::Ready<Result<u8, ()>>>::new())
    ///     .await;
    /// assert!(none.unwrap_err().failures().is_empty());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct SelectFirst<F, E, S: Shape = Branches<F>> {
        #[pin]
        branches: S,
        // Taken when it completes, which is how it knows it has.
        failures: Option<Vec<(usize, E)>>,
        ctx: Context,
        #[pin]
        wait: WaitWith<S::Timer>,
        _branch: PhantomData<fn() -> F>,
    }
}

impl<F, T, E, S> Future for SelectFirst<F, E, S>
where
    F: Future<Output = Result<T, E>>,
    S: BranchSet<Branch = F>,
{
    type Output = Result<(usize, T), SelectError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(failures) = this.failures.as_mut() else {
            panic!("`SelectFirst` polled after it completed");
        };
        let mut round = Round::default();
        loop {
            match this.branches.as_mut().poll_next(&mut round, cx) {
                Poll::Ready(Some((index, Ok(value)))) => {
                    this.branches.as_mut().cancel_rest(&LOST_RACE);
                    this.wait.clear();
                    *this.failures = None;
                    return Poll::Ready(Ok((index, value)));
                }
                Poll::Ready(Some((index, Err(failure)))) => failures.push((index, failure)),
                Poll::Ready(None) => {
                    let failures = this.failures.take().unwrap_or_default();
                    // Candidates that failed once the context had ended may
                    // only have been giving up: report the end with them.
                    let ended = if failures.is_empty() {
                        None
                    } else {
                        this.ctx.err()
                    };
                    return Poll::Ready(Err(SelectError::new(failures, ended)));
                }
                Poll::Pending => break,
            }
        }
        match this.wait.poll_wait(this.ctx, cx) {
            Poll::Ready(err) => {
                this.branches.as_mut().cancel_rest(&FINISHED);
                let failures = this.failures.take().unwrap_or_default();
                Poll::Ready(Err(SelectError::new(failures, Some(err))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F, E, S: Shape> std::fmt::Debug for SelectFirst<F, E, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectFirst")
            .field("branches", &self.branches.total())
            .field("running", &self.branches.running())
            .field("failed", &self.failures.as_ref().map_or(0, Vec::len))
            .field("ctx", &self.ctx)
            .finish()
    }
}
