//! Branches of a number fixed at compile time, in place: the set behind
//! [`race_either`](crate::Context::race_either) and the fan-out macros
//! (`race!`, `select_first!`, `join!`, `try_join!`).
//!
//! The branches form a list of types, `Cons<F, Cons<F, End<F>>>` for two, each
//! [`Cons`] holding one [`Step`] in place. Nothing is allocated for the set:
//! a two-way race costs its two children (usually spares, `core/spare.rs`)
//! and nothing else, against a vector, two boxes and, before, a
//! `FuturesUnordered` with a queue and a task per branch. Every poll of the
//! combinator polls every running branch once, in input order, as
//! `tokio::select!` does with its branches: a round walks the list once.
//!
//! Everything here is public only for the macros' expansions.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::branches::{BranchSet, GiveUp, Round, Shape, Why};
use super::step::Step;
use super::wait::Inline;
use crate::error::FINISHED;

/// A list of steps, given up on all at once, in two halves.
pub trait Abandon {
    /// Cancels the child of every running step that anyone could tell about.
    fn cancel_if_observed(self: Pin<&mut Self>, why: Why);

    /// Gives up on every running step.
    fn abandon(self: Pin<&mut Self>, why: Why);
}

/// A list of steps of one future type, walked by position.
pub trait List: Abandon {
    /// The future of every step in the list.
    type Branch: Future;

    /// Polls the step at position `at` if the round has reached it, then
    /// the rest; the first to finish, with its position.
    fn poll_from(
        self: Pin<&mut Self>,
        at: usize,
        round: &mut Round,
        cx: &mut TaskContext<'_>,
    ) -> Poll<(usize, <Self::Branch as Future>::Output)>;
}

pin_project! {
    /// One step, and the rest of the list.
    #[derive(Debug)]
    pub struct Cons<F, R> {
        #[pin]
        head: Step<F>,
        #[pin]
        tail: R,
    }
}

impl<F, R> Cons<F, R> {
    /// `head` in front of `tail`.
    pub(crate) fn new(head: Step<F>, tail: R) -> Self {
        Cons { head, tail }
    }
}

impl<F, R: Abandon> Abandon for Cons<F, R> {
    fn cancel_if_observed(self: Pin<&mut Self>, why: Why) {
        let this = self.project();
        this.head.cancel_if_observed(why.0);
        this.tail.cancel_if_observed(why);
    }

    fn abandon(self: Pin<&mut Self>, why: Why) {
        let this = self.project();
        this.head.abandon(why.0);
        this.tail.abandon(why);
    }
}

impl<F> Abandon for End<F> {
    fn cancel_if_observed(self: Pin<&mut Self>, _: Why) {}

    fn abandon(self: Pin<&mut Self>, _: Why) {}
}

impl<F: Future, R: List<Branch = F>> List for Cons<F, R> {
    type Branch = F;

    #[inline]
    fn poll_from(
        self: Pin<&mut Self>,
        at: usize,
        round: &mut Round,
        cx: &mut TaskContext<'_>,
    ) -> Poll<(usize, F::Output)> {
        let this = self.project();
        // S6 of `step.rs`: once per round.
        if round.reached(at) && this.head.is_running() {
            if let Poll::Ready(output) = this.head.poll_and_finish(cx) {
                return Poll::Ready((at, output));
            }
        }
        this.tail.poll_from(at + 1, round, cx)
    }
}

/// The end of every list of steps of type `F`: a marker with the type.
impl<F: Future> List for End<F> {
    type Branch = F;

    #[inline]
    fn poll_from(
        self: Pin<&mut Self>,
        _: usize,
        _: &mut Round,
        _: &mut TaskContext<'_>,
    ) -> Poll<(usize, F::Output)> {
        Poll::Pending
    }
}

/// The end of a list of steps of type `F`.
pub struct End<F>(std::marker::PhantomData<fn() -> F>);

impl<F> End<F> {
    /// The end.
    pub fn new() -> Self {
        End(std::marker::PhantomData)
    }
}

impl<F> Default for End<F> {
    fn default() -> Self {
        End::new()
    }
}

impl<F> std::fmt::Debug for End<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("End")
    }
}

pin_project! {
    /// A fixed number of branches in place.
    pub struct Fixed<L: Abandon> {
        #[pin]
        list: L,
        total: usize,
        running: usize,
    }

    impl<L: Abandon> PinnedDrop for Fixed<L> {
        fn drop(this: Pin<&mut Self>) {
            // Every child first, then the futures, as for the list forms.
            this.give_up_all(Why(&FINISHED));
        }
    }
}

impl<L: Abandon> Fixed<L> {
    /// The `total` steps of `list`, all running.
    pub(crate) fn new(total: usize, list: L) -> Self {
        Fixed {
            list,
            total,
            running: total,
        }
    }

    fn give_up_all(self: Pin<&mut Self>, why: Why) {
        let this = self.project();
        if *this.running == 0 {
            return;
        }
        *this.running = 0;
        let mut list = this.list;
        // S3 of `step.rs`: every observed child canceled, then the futures
        // dropped.
        list.as_mut().cancel_if_observed(why);
        list.abandon(why);
    }
}

impl<L: Abandon> Shape for Fixed<L> {
    type Timer = Inline;

    fn total(&self) -> usize {
        self.total
    }

    fn running(&self) -> usize {
        self.running
    }
}

impl<L: List> BranchSet for Fixed<L> {
    type Branch = L::Branch;

    #[inline]
    fn poll_next(
        self: Pin<&mut Self>,
        round: &mut Round,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<(usize, <L::Branch as Future>::Output)>> {
        let this = self.project();
        if *this.running == 0 {
            return Poll::Ready(None);
        }
        match this.list.poll_from(0, round, cx) {
            Poll::Ready(next) => {
                *this.running -= 1;
                Poll::Ready(Some(next))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<L: Abandon> GiveUp for Fixed<L> {
    fn give_up(self: Pin<&mut Self>, why: Why) {
        self.give_up_all(why);
    }
}

impl<L: Abandon> std::fmt::Debug for Fixed<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixed")
            .field("total", &self.total)
            .field("running", &self.running)
            .finish()
    }
}
