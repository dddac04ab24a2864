//! A set of futures, each under its own child of one context: the engine
//! behind `race`, `select_first`, the joins and `as_completed`.
//!
//! The futures live in a [`FuturesUnordered`], so a poll only touches the
//! futures that were woken, whatever the size of the set. Every branch's child
//! is canceled as soon as the branch is no longer wanted: when it finishes
//! (cause: the operation finished), when the combinator gives up on it (the
//! combinator's cause), or when the combinator is dropped. Its future is
//! dropped at the same moment, so nothing keeps running.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use pin_project_lite::pin_project;

use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::core::Cause;
use crate::current::Scoped;
use crate::error::{Reason, FINISHED};

pin_project! {
    /// One future of the set, tagged with its input position.
    struct Branch<F> {
        index: usize,
        #[pin]
        fut: Scoped<F>,
    }
}

impl<F: Future> Future for Branch<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let index = *this.index;
        this.fut.poll(cx).map(|output| (index, output))
    }
}

/// Futures running under children of one context.
///
/// Public only so that the fan-out macros' hidden traits can name it.
#[doc(hidden)]
pub struct Branches<F> {
    running: FuturesUnordered<Branch<F>>,
    /// The cancel handle of every branch still running, by input position.
    handles: Vec<Option<CancelHandle>>,
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
        let mut branches = Branches::empty();
        for f in fns {
            branches.push(parent, name, f, location);
        }
        branches
    }

    /// A set with no branches yet.
    pub(crate) fn empty() -> Self {
        Branches {
            running: FuturesUnordered::new(),
            handles: Vec::new(),
        }
    }

    /// Adds a branch; its index is the number of branches before it. With
    /// a `name`, the branch's child is named `name[index]`.
    pub(crate) fn push<M>(
        &mut self,
        parent: &Context,
        name: Option<&str>,
        f: M,
        location: &'static Location<'static>,
    ) where
        M: FnOnce(Context) -> F,
    {
        let index = self.handles.len();
        let name = name.map(|name| Cow::Owned(format!("{name}[{index}]")));
        let (child, handle) = parent.derive(name, Limit::None, location);
        // The handle first: if `f` panics, dropping the set on the way out
        // cancels this branch's child with the others, so nothing `f`
        // started under it keeps running.
        self.handles.push(Some(handle));
        let fut = f(child.clone());
        self.running.push(Branch {
            index,
            fut: Scoped::new(child, fut),
        });
    }

    /// The next branch to finish, with its index; `None` once none is left.
    /// The finished branch's child is canceled (invariant: nothing derived
    /// for a branch outlives it).
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<(usize, F::Output)>> {
        let next = self.running.poll_next_unpin(cx);
        if let Poll::Ready(Some((index, _))) = &next {
            // The finished branch's future is gone, and its copy of the
            // context with it. Only the handle is left, unless it was shared.
            if let Some(handle) = self.handles.get_mut(*index).and_then(Option::take) {
                handle.finish(Cause::Reason(&FINISHED), 1);
            }
        }
        next
    }
}

impl<F> Branches<F> {
    /// How many branches there were in all.
    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// Cancels every branch still running with `reason` and drops its future.
    pub(crate) fn cancel_rest(&mut self, reason: &'static Reason) {
        // Cancel before dropping, so that whatever a future owns (a drop
        // guard, a task handle, a spawned sub-task) already sees why.
        for handle in self.handles.iter_mut().filter_map(Option::take) {
            handle.cancel_for(Cause::Reason(reason));
        }
        self.running.clear();
    }
}

impl<F> Drop for Branches<F> {
    fn drop(&mut self) {
        // Dropped before they finished: a budget report says so.
        for handle in self.handles.iter_mut().filter_map(Option::take) {
            handle.node().abandon(Cause::Reason(&FINISHED));
        }
        self.running.clear();
    }
}

impl<F> std::fmt::Debug for Branches<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Branches")
            .field("total", &self.handles.len())
            .field("running", &self.running.len())
            .finish()
    }
}
