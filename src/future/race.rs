//! [`Race`]: the first of several futures to complete wins.

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::future::Either;
use pin_project_lite::pin_project;

use super::branches::CancelRest;
use super::branches::{self, BranchSet, Branches, Round, Shape};
use super::fixed::{Cons, End, Fixed};
use super::step::Step;
use super::wait::WaitWith;
use crate::context::{Context, Limit};
use crate::core::Cause;
use crate::error::{Error, Reason, FINISHED, LOST_RACE};

/// The cause an empty race fails with: no winner can ever come.
static NOTHING_TO_RACE: Reason = Reason::NothingToRace;

/// **Fan-out: the first to complete.** Each future under its own child;
/// the losers are canceled.
impl Context {
    /// Runs every future made by `fns`, each under its own child of this
    /// context; the first to complete wins, whatever its output (asyncio's
    /// `wait(FIRST_COMPLETED)`, Go's first-of-N pattern).
    ///
    /// Resolves to the winner's index and output. Every loser's child is
    /// canceled with the cause "lost the race" (so tasks it spawned stop too)
    /// and its future is dropped. If this context ends first, every child
    /// ends with it and the race resolves to the context's error. An empty
    /// race fails at once. See [`Race`] for fairness and ordering.
    ///
    /// `fns` may be an array, a `Vec` or any iterator of closures of one
    /// type. For a fixed set of closures of different types use
    /// [`race!`](crate::race) (or [`race_either`](Self::race_either) for two
    /// outputs of different types); for a list built at run time, box each
    /// closure and its future (see the [guide](crate::guide)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let delays = [300, 100, 200];
    /// let (index, ms) = Context::background()
    ///     .race(delays.map(|ms| move |_ctx| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     }))
    ///     .await
    ///     .unwrap();
    /// assert_eq!((index, ms), (1, 100));
    /// # }
    /// ```
    #[track_caller]
    pub fn race<I, M, F>(&self, fns: I) -> Race<F>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future,
    {
        Race::new(self, None, fns, Location::caller())
    }

    /// Races two futures of different output types; resolves to
    /// [`Either::Left`] or [`Either::Right`] with the winner's output.
    /// The loser is canceled and dropped, as in [`race`](Self::race).
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::future::Either;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let winner = Context::background()
    ///     .race_either(
    ///         |_ctx| async { tokio::time::sleep(Duration::from_secs(1)).await; "work done" },
    ///         |ctx: Context| async move { ctx.done().await; 0u8 },
    ///     )
    ///     .await
    ///     .unwrap();
    /// assert!(matches!(winner, Either::Left("work done")));
    /// # }
    /// ```
    #[track_caller]
    pub fn race_either<A, B, FA, FB>(&self, a: A, b: B) -> RaceEither<FA, FB>
    where
        A: FnOnce(Context) -> FA,
        B: FnOnce(Context) -> FB,
        FA: Future,
        FB: Future,
    {
        self.race_either_at(None, Location::caller(), a, b)
    }

    /// [`race_either`](Self::race_either) with the children named
    /// `name[0]` and `name[1]`, derived at `location`.
    pub(crate) fn race_either_at<A, B, FA, FB>(
        &self,
        name: Option<&str>,
        location: &'static Location<'static>,
        a: A,
        b: B,
    ) -> RaceEither<FA, FB>
    where
        A: FnOnce(Context) -> FA,
        B: FnOnce(Context) -> FB,
        FA: Future,
        FB: Future,
    {
        // In place, in input order: the children are derived and the
        // closures called one after the other (see `fixed.rs`).
        let left = Step::new(branches::child(self, name, 0, location), |ctx| OneOf {
            inner: Side::Left { fut: a(ctx) },
        });
        let right = Step::new(branches::child(self, name, 1, location), |ctx| OneOf {
            inner: Side::Right { fut: b(ctx) },
        });
        let set = Fixed::new(2, Cons::new(left, Cons::new(right, End::new())));
        RaceEither {
            race: Race::from_set(set, self.clone()),
        }
    }
}

/// Two branches of one type, in place.
type Pair<F> = Fixed<Cons<F, Cons<F, End<F>>>>;

impl<F: Future> Race<F> {
    /// A race of one branch per function, each under a child of `parent`
    /// (named `name[index]` if `name` is given) derived at `location`.
    pub(crate) fn new<I, M>(
        parent: &Context,
        name: Option<&str>,
        fns: I,
        location: &'static Location<'static>,
    ) -> Self
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
    {
        let branches = Branches::new(parent, name, fns, location);
        if branches.total() > 0 {
            return Race::from_set(branches, parent.clone());
        }
        // Waits on a child that is already over, so the race fails at once
        // with an error located at the call.
        let name = name.map(|name| Cow::Owned(name.to_owned()));
        let (empty, handle) = parent.derive(name, Limit::None, location);
        handle.cancel_for(Cause::Reason(&NOTHING_TO_RACE));
        Race::from_set(branches, empty)
    }
}

impl<F, S: Shape> Race<F, S> {
    /// A race of the branches already started, under `ctx`.
    pub(crate) fn from_set(branches: S, ctx: Context) -> Self {
        Race {
            branches,
            ctx,
            wait: WaitWith::new(),
            _branch: PhantomData,
        }
    }
}

pin_project! {
    /// The future returned by [`Context::race_either`]: a [`Race`] of two
    /// futures of different types, resolving to the winner's output.
    ///
    /// Fairness, ordering, cancel safety and panics are those of [`Race`].
    ///
    /// ```
    /// use futures::future::Either;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let out = Context::background()
    ///     .race_either(|_ctx| async { 1u8 }, |_ctx| async { "two" })
    ///     .await
    ///     .unwrap();
    /// assert!(matches!(out, Either::Left(1)), "both ready: input order decides");
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct RaceEither<A, B> {
        #[pin]
        race: Race<OneOf<A, B>, Pair<OneOf<A, B>>>,
    }
}

impl<A: Future, B: Future> Future for RaceEither<A, B> {
    type Output = Result<Either<A::Output, B::Output>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.project()
            .race
            .poll(cx)
            .map(|won| won.map(|(_, output)| output))
    }
}

pin_project! {
    /// One of two futures of different types, so that both fit one set.
    #[derive(Debug)]
    struct OneOf<A, B> {
        #[pin]
        inner: Side<A, B>,
    }
}

pin_project! {
    #[project = SideProj]
    #[derive(Debug)]
    enum Side<A, B> {
        Left { #[pin] fut: A },
        Right { #[pin] fut: B },
    }
}

impl<A: Future, B: Future> Future for OneOf<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            SideProj::Left { fut } => fut.poll(cx).map(Either::Left),
            SideProj::Right { fut } => fut.poll(cx).map(Either::Right),
        }
    }
}

pin_project! {
    /// The future returned by [`Context::race`] (and, inside a [`RaceEither`],
    /// by [`Context::race_either`]).
    ///
    /// # Fairness
    ///
    /// A race of up to eight futures, and every race of closures of
    /// different types ([`race!`](crate::race), [`Context::race_either`]),
    /// polls every running future on every poll of the race, in input order,
    /// as `tokio::select!` polls its branches. A larger race polls them all
    /// on its first poll, in input order, and after that only those that
    /// were woken, in the order they were woken. Either way each future is
    /// polled at most once per poll of the race, so a slow one cannot starve
    /// the others, and when several complete in the same poll, the first one
    /// polled wins: on the first poll, the lowest index.
    ///
    /// # Ordering
    ///
    /// The futures are polled before the context is checked: a future that
    /// completes in the poll in which the context ends still wins, and its
    /// output is returned, not dropped.
    ///
    /// An empty race fails at once, as an empty
    /// [`select_first`](Context::select_first) does: no winner can ever
    /// come. Its error is a cancellation, located at the `race` call, with
    /// the cause "the race was given no futures" (or the context's own
    /// error if it has already ended).
    ///
    /// # Cancel safety
    ///
    /// Dropping the race cancels every child and drops every future.
    ///
    /// # Panics
    ///
    /// Waiting on a context with a deadline needs Tokio's timer. Polling
    /// after it resolved does not panic, but resolves only once the context
    /// ends.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel_with("shutting down");
    /// let err = ctx.race([|_c| std::future::pending::<()>()]).await.unwrap_err();
    /// assert_eq!(err.cause().unwrap().to_string(), "shutting down");
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Race<F, S: Shape = Branches<F>> {
        // The list forms' branches (`branches.rs`), or those of a fixed
        // number in place (`fixed.rs`) for `race_either` and `race!`.
        #[pin]
        branches: S,
        ctx: Context,
        #[pin]
        wait: WaitWith<S::Timer>,
        _branch: PhantomData<fn() -> F>,
    }
}

impl<F: Future, S: BranchSet<Branch = F>> Future for Race<F, S> {
    type Output = Result<(usize, F::Output), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut round = Round::default();
        if let Poll::Ready(Some(winner)) = this.branches.as_mut().poll_next(&mut round, cx) {
            this.branches.as_mut().cancel_rest(&LOST_RACE);
            this.wait.clear();
            return Poll::Ready(Ok(winner));
        }
        match this.wait.poll_wait(this.ctx, cx) {
            Poll::Ready(err) => {
                this.branches.as_mut().cancel_rest(&FINISHED);
                Poll::Ready(Err(err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F, S: Shape> std::fmt::Debug for Race<F, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Race")
            .field("branches", &self.branches.total())
            .field("running", &self.branches.running())
            .field("ctx", &self.ctx)
            .finish()
    }
}
