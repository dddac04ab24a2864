//! The branches of a fan-out, each a future under its own child of one
//! context: the engine behind `race`, `select_first`, the joins and
//! `as_completed`.
//!
//! Every branch is a [`Step`]: its child is canceled as soon as the branch is
//! no longer wanted, when it finishes (cause: the operation finished), when
//! the combinator gives up on it (the combinator's cause), or when the
//! combinator is dropped, and its future is dropped at the same moment, so
//! nothing keeps running. A combinator polls its branches in *rounds*
//! ([`Round`]): within one poll of the combinator, each branch is polled at
//! most once.
//!
//! Two shapes of set implement [`BranchSet`]:
//!
//! - [`Branches`], for the list forms (`ctx.race(fns)`): a few branches (up
//!   to [`FEW`]) are boxed one by one in a vector and all polled, in input
//!   order, on every poll of the combinator, with the combinator's waker;
//!   more go into a `FuturesUnordered`, which polls only those that were
//!   woken. A set of two costs the vector and two boxes; a set of ten
//!   thousand costs what its woken branches cost.
//! - `Fixed` (`fixed.rs`), for the macros and `race_either`: the branches in
//!   place, no allocation at all.
//!
//! Polling every branch of a small set is what `tokio::select!` does, and
//! for two or three branches it is cheaper than a `FuturesUnordered`, which
//! allocates a queue and a task per branch, wakes through a waker of its own
//! per branch, and, after polling every future once, wakes its task and
//! yields: a second task poll for a race whose branches all had to wait
//! (`benches/peers.rs`, "race of 2").

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use pin_project_lite::pin_project;

use super::step::Step;
use super::wait::{Boxed, Timer};
use crate::context::{Context, Limit};
use crate::error::{Reason, FINISHED};

/// The most branches a list form polls all together; more go into a
/// `FuturesUnordered`.
pub(crate) const FEW: usize = 8;

/// How far one poll of a combinator has got through its branches (S6 of
/// `step.rs`): each branch is polled at most once per round, and a set reports `Pending`
/// only once every running branch was polled in the round.
///
/// A combinator makes a new one on every poll (it lives on the stack), so a
/// branch woken since the last poll is always polled again.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Round {
    next: usize,
}

impl Round {
    /// True, once, when the round reaches the branch at `at`: branches
    /// before the one the round is at were polled in it already.
    #[inline]
    pub(crate) fn reached(&mut self, at: usize) -> bool {
        if self.next == at {
            self.next += 1;
            true
        } else {
            false
        }
    }
}

/// How many branches a set had, how many are still running (what the
/// combinators' `Debug` shows, whatever their futures), and where its
/// combinator keeps its timer.
///
/// Public only so that the futures of the fan-out macros can name it.
#[doc(hidden)]
pub trait Shape {
    /// The timer of the combinator's waiter: boxed for the list forms, so
    /// that they stay `Unpin`; in place for the sets in place, which are
    /// not `Unpin` anyway unless every branch is.
    type Timer: Timer;

    /// How many branches there were in all.
    fn total(&self) -> usize;

    /// How many are still running.
    fn running(&self) -> usize;
}

/// One of the crate's reasons for giving up on branches, opaque outside it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Why(pub(crate) &'static Reason);

/// Giving up on every running branch of a set, whatever its futures.
///
/// Public only so that the futures of the fan-out macros can name it.
#[doc(hidden)]
pub trait GiveUp {
    /// Cancels every branch still running and drops its future: every child
    /// first, so that whatever a future owns (a drop guard, a task handle, a
    /// spawned sub-task) already sees why, and then the futures.
    fn give_up(self: Pin<&mut Self>, why: Why);
}

/// [`GiveUp`] with one of the crate's reasons.
pub(crate) trait CancelRest: GiveUp {
    fn cancel_rest(self: Pin<&mut Self>, reason: &'static Reason) {
        self.give_up(Why(reason));
    }
}

impl<S: GiveUp + ?Sized> CancelRest for S {}

/// A set of branches: futures under children of one context, polled in
/// rounds, whose outputs come with their input position.
///
/// Public only so that the futures of the fan-out macros can name it.
#[doc(hidden)]
pub trait BranchSet: Shape + GiveUp {
    /// The future of one branch.
    type Branch: Future;

    /// The next branch of this round to finish, with its index; `None` once
    /// none is left running.
    fn poll_next(
        self: Pin<&mut Self>,
        round: &mut Round,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<(usize, <Self::Branch as Future>::Output)>>;
}

/// The child of branch `index`, derived at `location`, named `name[index]`
/// when a name is given.
pub(crate) fn child(
    parent: &Context,
    name: Option<&str>,
    index: usize,
    location: &'static Location<'static>,
) -> Context {
    let name = name.map(|name| Cow::Owned(format!("{name}[{index}]")));
    parent.derive_private(name, Limit::None, location)
}

pin_project! {
    /// A branch among many, tagged with its input position.
    #[project = SlotProj]
    enum Slot<F> {
        // Started in a large set.
        Inline { index: usize, #[pin] step: Step<F> },
        // Started in a small set that then grew.
        Boxed { index: usize, step: Pin<Box<Step<F>>> },
    }
}

impl<F: Future> Future for Slot<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project() {
            SlotProj::Inline { index, step } => step.poll_and_finish(cx).map(|out| (*index, out)),
            SlotProj::Boxed { index, step } => {
                step.as_mut().poll_and_finish(cx).map(|out| (*index, out))
            }
        }
    }
}

impl<F> Slot<F> {
    fn step(self: Pin<&mut Self>) -> Pin<&mut Step<F>> {
        match self.project() {
            SlotProj::Inline { step, .. } => step,
            SlotProj::Boxed { step, .. } => step.as_mut(),
        }
    }
}

enum Set<F> {
    /// Polled all together; `None` once finished.
    Few(Vec<Option<Pin<Box<Step<F>>>>>),
    /// Polled when woken.
    Many(FuturesUnordered<Slot<F>>),
}

/// The branches of a list form, started one per closure.
///
/// Public only so that the fan-out macros' hidden traits can name it.
#[doc(hidden)]
pub struct Branches<F> {
    set: Set<F>,
    total: usize,
    running: usize,
}

impl<F: Future> Branches<F> {
    /// Starts one branch per function, each under a fresh child of `parent`
    /// derived at `location`, named `name[index]` if `name` is given.
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
        let fns = fns.into_iter();
        let expected = fns.size_hint().0;
        let mut branches = Branches {
            set: if expected > FEW {
                Set::Many(FuturesUnordered::new())
            } else {
                Set::Few(Vec::with_capacity(expected))
            },
            total: 0,
            running: 0,
        };
        for f in fns {
            // If `f` panics, its own child is canceled by the step, and the
            // branches started before it by the set's drop.
            let index = branches.total;
            let step = Step::new(child(parent, name, index, location), f);
            branches.push(step);
        }
        branches
    }

    fn push(&mut self, step: Step<F>) {
        let index = self.total;
        self.total += 1;
        self.running += 1;
        match &mut self.set {
            Set::Few(steps) if steps.len() < FEW => steps.push(Some(Box::pin(step))),
            Set::Few(steps) => {
                // More than the iterator's hint said: from now on, only
                // woken branches are polled.
                let many: FuturesUnordered<_> = std::mem::take(steps)
                    .into_iter()
                    .enumerate()
                    .filter_map(|(index, step)| Some(Slot::Boxed { index, step: step? }))
                    .collect();
                many.push(Slot::Inline { index, step });
                self.set = Set::Many(many);
            }
            Set::Many(many) => many.push(Slot::Inline { index, step }),
        }
    }
}

impl<F> Shape for Branches<F> {
    type Timer = Boxed;

    fn total(&self) -> usize {
        self.total
    }

    fn running(&self) -> usize {
        self.running
    }
}

impl<F: Future> BranchSet for Branches<F> {
    type Branch = F;

    fn poll_next(
        self: Pin<&mut Self>,
        round: &mut Round,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<(usize, F::Output)>> {
        let this = self.get_mut();
        if this.running == 0 {
            return Poll::Ready(None);
        }
        let next = match &mut this.set {
            Set::Few(steps) => {
                let mut next = Poll::Pending;
                for (index, slot) in steps.iter_mut().enumerate() {
                    // S6 of `step.rs`: once per round.
                    if !round.reached(index) {
                        continue;
                    }
                    let Some(step) = slot else { continue };
                    if let Poll::Ready(output) = step.as_mut().poll_and_finish(cx) {
                        *slot = None;
                        next = Poll::Ready(Some((index, output)));
                        break;
                    }
                }
                next
            }
            Set::Many(many) => many.poll_next_unpin(cx),
        };
        if let Poll::Ready(Some(_)) = next {
            this.running -= 1;
        }
        next
    }
}

impl<F> GiveUp for Branches<F> {
    fn give_up(self: Pin<&mut Self>, why: Why) {
        self.get_mut().give_up_all(why.0);
    }
}

impl<F> Branches<F> {
    /// Cancels every running branch and drops its future (see
    /// [`BranchSet::cancel_rest`]).
    fn give_up_all(&mut self, reason: &'static Reason) {
        if self.running == 0 {
            return;
        }
        self.running = 0;
        // S3: every observed child canceled before any future is dropped.
        self.each(|step| step.cancel_if_observed(reason));
        self.each(|step| step.abandon(reason));
        // Dropped, not cleared: `FuturesUnordered::clear` allocates a new
        // queue.
        self.set = Set::Few(Vec::new());
    }

    fn each(&mut self, mut f: impl FnMut(Pin<&mut Step<F>>)) {
        match &mut self.set {
            Set::Few(steps) => steps.iter_mut().flatten().for_each(|step| f(step.as_mut())),
            Set::Many(many) => Pin::new(many)
                .iter_pin_mut()
                .for_each(|slot| f(slot.step())),
        }
    }
}

impl<F> Drop for Branches<F> {
    fn drop(&mut self) {
        self.give_up_all(&FINISHED);
    }
}

impl<F> std::fmt::Debug for Branches<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Branches")
            .field("total", &self.total)
            .field("running", &self.running)
            .finish()
    }
}
