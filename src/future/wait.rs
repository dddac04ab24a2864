//! Waiting for a context to end: the one piece every future here shares.
//!
//! A [`Wait`] registers its task's waker on the context's node the first time
//! it would return `Pending` (see `crate::core` for how the registration
//! reaches the ancestors), and arms a timer for the effective deadline only
//! then. Deriving a context therefore never creates a timer; awaiting one
//! creates exactly one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::context::Context;
use crate::core::{Ending, Entry, Node};
use crate::error::Error;

/// A waker registered on a node, removed again on drop.
#[derive(Debug)]
struct Registration {
    node: Arc<Node>,
    key: usize,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.node.deregister(self.key);
    }
}

pin_project! {
    /// The state of one waiter: its registration and its lazily armed timer.
    #[derive(Debug)]
    pub(crate) struct Wait {
        registration: Option<Registration>,
        // Boxed: a `Sleep` is large, and every combinator future carries a
        // `Wait` that most never arm. Boxing keeps those futures small and
        // cheap to move, costs one allocation only when a timer is armed,
        // and makes `Wait` (and `Done` and the streams built on it) `Unpin`.
        sleep: Option<Pin<Box<Sleep>>>,
    }
}

impl Wait {
    pub(crate) fn new() -> Self {
        Wait {
            registration: None,
            sleep: None,
        }
    }

    /// Resolves to `ctx`'s error once it has ended; may be polled again after
    /// that, and resolves again.
    pub(crate) fn poll_wait(
        self: Pin<&mut Self>,
        ctx: &Context,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Error> {
        match ctx.node() {
            Some(node) => self.poll_wait_node(node, cx),
            // Background and `without_cancel` contexts never end.
            None => Poll::Pending,
        }
    }

    /// [`poll_wait`](Self::poll_wait) on the node behind a context.
    pub(crate) fn poll_wait_node(
        self: Pin<&mut Self>,
        node: &Arc<Node>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Error> {
        self.poll_wait_via(node, Some(node), cx)
    }

    /// Waits for `node` to end, with the waker registered on `register_on`.
    ///
    /// A combinator whose child nobody but its ancestors can cancel (its
    /// handle is private) registers on the parent instead of the child: the
    /// child then needs no wait list and no link of its own, and its
    /// deadline is covered by the timer. `None` registers nowhere: only the
    /// deadline can end such a node.
    pub(crate) fn poll_wait_via(
        self: Pin<&mut Self>,
        node: &Arc<Node>,
        register_on: Option<&Arc<Node>>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Error> {
        let this = self.project();
        if let Some(err) = error_of(node) {
            *this.registration = None;
            return Poll::Ready(err);
        }

        let registered = match (this.registration.as_ref(), register_on) {
            (Some(registration), _) => registration.node.update_waker(registration.key, cx.waker()),
            (None, Some(target)) => match target.register(Entry::Waker(cx.waker().clone())) {
                Ok(key) => {
                    *this.registration = Some(Registration {
                        node: Arc::clone(target),
                        key,
                    });
                    true
                }
                Err(_) => false,
            },
            (None, None) => true,
        };
        if !registered {
            // The wait list is closed: the context was canceled from above.
            *this.registration = None;
            return Poll::Ready(error_of(node).unwrap_or_else(|| ended_error(node)));
        }
        // A cancellation that raced with the registration either shows here
        // or wakes the waker we just stored. (The deadline was checked above
        // and is the timer's business from here: no second clock read.)
        if node.is_canceled() {
            *this.registration = None;
            return Poll::Ready(error_of(node).unwrap_or_else(|| ended_error(node)));
        }

        if let Some(deadline) = node.deadline() {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            {
                if sleep.as_mut().poll(cx).is_ready() {
                    *this.registration = None;
                    let ending = node.ending().unwrap_or_else(|| node.deadline_exceeded());
                    return Poll::Ready(Error::from_ending(node, ending));
                }
            }
        }
        Poll::Pending
    }
}

/// The node's error, if it has ended.
fn error_of(node: &Node) -> Option<Error> {
    if !node.is_done() {
        return None;
    }
    node.ending().map(|ending| Error::from_ending(node, ending))
}

/// The error of a node known to have ended. Falls back to a plain
/// cancellation of the node itself, so that a woken waiter always has an
/// answer.
fn ended_error(node: &Node) -> Error {
    let ending = node.ending().unwrap_or(Ending::Canceled {
        by: node,
        cause: None,
    });
    Error::from_ending(node, ending)
}
