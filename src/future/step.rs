//! [`Step`]: a future under a private child context that ends with it, the
//! part that `with_timeout` and every branch of the fan-out combinators
//! (`race`, `select_first`, the joins, `as_completed` and the macros) share.
//!
//! The child is derived for the future alone: nobody holds its cancel handle,
//! and only the step (or an ancestor) ends it. The step
//!
//! - makes the child [`Context::current`] while the future is polled and
//!   while it is dropped;
//! - when the future completes, cancels the child ("the operation it was
//!   derived for finished") so that what the future started under it stops
//!   too, unless nobody could tell: no clone of the child is left and
//!   nothing waits on it;
//! - when it gives up on the future ([`abandon`](Step::abandon): a loser, a
//!   sibling's failure, its own drop), cancels the child with the reason and
//!   then drops the future, so that the drop code already sees why. If
//!   nothing but the step holds the child, that drop code can only see the
//!   child through `Context::current()`, and the cancellation is made only
//!   if it looks (`current.rs`, "Ending on sight");
//! - hands the child's node back to the thread's spares once it is the last
//!   one holding it (`core/spare.rs`).
//!
//! # Invariants
//!
//! Numbered as in `docs/design.md` ("The step engine's invariants"), and
//! referred to by number in this module, `branches.rs`, `fixed.rs` and
//! `timeout.rs`:
//!
//! - **S1.** The step holds [`OWN_REFS`] reference to its child, in its
//!   [`Scoped`]; every other reference was handed out by the future (or a
//!   waiter) and shows in the child's strong count.
//! - **S2.** A cancellation of the child is skipped only when nobody could
//!   tell: the strong count is the step's own and nothing waits on the
//!   child ([`observed`]). When giving up, it is deferred rather than
//!   skipped: `Context::current()` makes it if the drop code asks.
//! - **S3.** Giving up cancels before it drops: the child is canceled (or
//!   marked for ending on sight) before the future is dropped, and the
//!   future is dropped with the child current. A set gives up on all its
//!   branches in two passes: every observed child is canceled, then the
//!   futures are dropped.
//! - **S4.** Whatever else the step's owner holds of the child (a waiter's
//!   registration) is let go before the step finishes or gives up, so that
//!   S2 reads a count that means something.
//! - **S5.** The child's node goes back to the spares only through
//!   [`release`], after the step's last use of it, and only if the step's
//!   reference was the last (invariant 13 of the core).
//! - **S6.** A set polls each running branch at most once per [`Round`] and
//!   returns `Pending` only after every running branch was polled in the
//!   round; a round lives on the stack of one poll of the combinator.
//!
//! [`Round`]: super::branches::Round
//!
//! What must stay cheap (`benches/peers.rs`, "with_timeout(1h, ready)" and
//! "race of 2"): a step that completes without sharing its child costs one
//! derivation, two polls' worth of slot swaps and no cancellation; nothing
//! here allocates beyond the node, and the node usually comes from a spare.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use crate::context::Context;
use crate::core::{Cause, Node};
use crate::current::Scoped;
use crate::error::{Reason, FINISHED, MAKER_PANICKED};

/// The references a step holds to its child: the one in its [`Scoped`]
/// (S1).
const OWN_REFS: usize = 1;

pin_project! {
    /// A future under its own private child context.
    pub(crate) struct Step<F> {
        // The child lives in the scoped future, which makes it current while
        // the future is polled: no second copy, so no reference counting on
        // every poll.
        #[pin]
        fut: Scoped<F>,
    }

    impl<F> PinnedDrop for Step<F> {
        fn drop(this: Pin<&mut Self>) {
            // Before the fields: the child is canceled before the future is
            // dropped, and the future's drop code sees why.
            if this.is_running() {
                this.abandon(&FINISHED);
            } else if this.fut.context().node().is_some() {
                // Completed, and its owner did not finish it.
                this.finish();
            }
        }
    }
}

impl<F> Step<F> {
    /// Calls `f` with a clone of `child` and runs the future it makes under
    /// `child`. If `f` panics, `child` is canceled before the panic goes on:
    /// `f` may have started work under it (spawned a task, handed it to a
    /// library), and nothing else would ever end it.
    #[inline]
    pub(crate) fn new<M>(child: Context, f: M) -> Self
    where
        M: FnOnce(Context) -> F,
    {
        let fut = make_under(&child, f);
        Step {
            fut: Scoped::new(child, fut),
        }
    }

    /// The child, until the step has finished (the background context
    /// after).
    pub(crate) fn context(&self) -> &Context {
        self.fut.context()
    }

    /// True until the future has completed or been given up on.
    pub(crate) fn is_running(&self) -> bool {
        self.fut.has_future()
    }

    /// Once the future has completed: cancels the child ("the operation it
    /// was derived for finished") if anyone but the step could tell, so that
    /// what the future started under it stops too, and lets the child go.
    /// Does nothing the second time.
    #[inline]
    pub(crate) fn finish(self: Pin<&mut Self>) {
        let mut fut = self.project().fut;
        if fut.has_future() {
            return;
        }
        let child = fut.as_mut().take_context();
        if let Some(node) = child.node() {
            // S2: skipped when nobody could tell.
            if observed(node) {
                node.cancel(Some(Cause::Reason(&FINISHED)));
            }
        }
        release(child);
    }

    /// Cancels the child with `reason` if the step is running and anyone but
    /// the step could tell (see the module notes): the first half of giving
    /// up on several steps at once.
    pub(crate) fn cancel_if_observed(self: Pin<&mut Self>, reason: &'static Reason) {
        if !self.fut.has_future() {
            return;
        }
        if let Some(node) = self.fut.context().node() {
            node.note_given_up(reason);
            if observed(node) {
                node.cancel(Some(Cause::Reason(reason)));
            }
        }
    }

    /// Gives up on the future: cancels the child with `reason` (when anyone
    /// could tell, see the module notes), drops the future, and lets the
    /// child go. Does nothing once the step has finished.
    pub(crate) fn abandon(self: Pin<&mut Self>, reason: &'static Reason) {
        let mut fut = self.project().fut;
        if !fut.has_future() {
            return;
        }
        if let Some(node) = fut.context().node() {
            node.note_given_up(reason);
        }
        // S3: canceled (or marked to be, S2) before the future is dropped,
        // and the future is dropped with the child current.
        let lazily = match fut.context().node() {
            Some(node) if observed(node) => {
                node.cancel(Some(Cause::Reason(reason)));
                None
            }
            Some(_) => Some(reason),
            None => None,
        };
        fut.as_mut().drop_future(lazily);
        release(fut.take_context());
    }
}

impl<F: Future> Step<F> {
    /// Polls the future under the child. Once it completes (it is dropped
    /// then, with the child current), [`finish`](Self::finish) the step: its
    /// owner first lets go of what else it held of the child (a waiter's
    /// registration), so that the finish sees who else still holds it.
    ///
    /// # Panics
    ///
    /// When polled after it completed or was abandoned.
    #[inline]
    pub(crate) fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        self.project().fut.poll(cx)
    }

    /// [`poll`](Self::poll), and [`finish`](Self::finish) once it completes.
    #[inline]
    pub(crate) fn poll_and_finish(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<F::Output> {
        let output = std::task::ready!(self.as_mut().poll(cx));
        self.finish();
        Poll::Ready(output)
    }
}

impl<F> std::fmt::Debug for Step<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("child", self.context())
            .field("running", &self.is_running())
            .finish()
    }
}

/// True if anyone but the step could tell whether its child is canceled: a
/// clone of the child exists (in the future, a task, a descendant), or
/// something waits on it (S1, S2), or a budget report records how it ended
/// (`crate::report`). A count read while no one else holds the child cannot
/// go up behind our back: only a holder can clone it.
#[inline]
fn observed(node: &Arc<Node>) -> bool {
    Arc::strong_count(node) > OWN_REFS || node.has_waiters() || node.is_recorded()
}

/// Lets the step's child go, into the thread's spares if the step held the
/// last reference (S5).
#[inline]
fn release(child: Context) {
    let (node, values) = child.into_parts();
    drop(values);
    if let Some(node) = node {
        Node::recycle(node);
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
        #[inline]
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
