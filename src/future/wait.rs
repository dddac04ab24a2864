//! Waiting for a context to end: the one piece every future here shares.
//!
//! A [`Wait`] registers its task's waker on the context's node the first time
//! it would return `Pending` (see `crate::core` for how the registration
//! reaches the ancestors), and arms a timer for the effective deadline only
//! then. Deriving a context therefore never creates a timer; awaiting one
//! creates exactly one.
//!
//! Where the timer lives is the waiter's choice: [`Wait`] boxes it, so that
//! `Done` and the streams stay small and `Unpin`; [`InlineWait`] keeps it in
//! place, for the combinators that are pinned anyway and whose every step
//! that waits would otherwise allocate it (`with_timeout`, `race`: what
//! `tokio::time::timeout`, their peer in `benches/peers.rs`, does too).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::context::Context;
use crate::core::{Entry, Node};
use crate::error::Error;

/// A waker registered on a node, removed again on drop.
///
/// It holds the node *waited on*, and finds the node registered on (that
/// node or an ancestor, which it keeps alive) by its address. Many waiters
/// register on one node: a step's waker goes to its parent, and the
/// waiters on a thousand handle-less children of a request all go to the
/// request (invariant 9 of the core). Holding that node would make every
/// waiter touch its reference count, on a cache line all the workers share,
/// when it registers and again when it is done (`benches/peers.rs`, "cancel
/// a root with 1,000 awaited children until all woke"); the node waited on
/// is usually the waiter's own.
#[derive(Debug)]
struct Registration {
    node: Arc<Node>,
    /// The address of the node registered on: `node` or an ancestor.
    on: usize,
    key: usize,
    /// A copy of the waker in the node's list, so that a poll by the same
    /// task (the usual case) needs no lock to know it is still current.
    waker: Waker,
}

impl Registration {
    /// The node registered on.
    fn target(&self) -> Option<&Arc<Node>> {
        let mut node = &self.node;
        while Arc::as_ptr(node) as usize != self.on {
            node = node.parent()?;
        }
        Some(node)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(target) = self.target() {
            target.deregister(self.key);
        }
    }
}

/// How a waiter watches its deadline before its timer is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeadlineWatch {
    /// Read the clock on the first poll, so that a deadline that has passed
    /// is reported at once: what a `select!` on `done()` expects.
    CheckFirst,
    /// Leave it to the timer from the first poll on, as
    /// `tokio::time::timeout` does: a deadline that has passed is reported
    /// when the timer fires, at once or on the timer driver's next tick.
    /// Saves a clock read on every step that waits.
    TimerOnly,
}

/// A timer armed the first time a waiter would return `Pending` for a
/// context with a deadline.
///
/// Public only so that the futures of the fan-out macros can name it.
#[doc(hidden)]
pub trait Timer {
    /// Not armed.
    fn unarmed() -> Self;
    /// True once armed.
    fn is_armed(&self) -> bool;
    /// Arms the timer for `deadline` if it is not armed, and polls it.
    fn poll_until(self: Pin<&mut Self>, deadline: Instant, cx: &mut TaskContext<'_>) -> Poll<()>;
    /// Moves the timer to `deadline` if it is armed for another instant:
    /// the deadline moved (invariant 14 of the core).
    fn follow(self: Pin<&mut Self>, deadline: Instant);
    /// Disarms it.
    fn disarm(self: Pin<&mut Self>);
}

/// A boxed timer: a `Sleep` is large, and `Done` and the streams carry a
/// waiter that most never arm. Boxing keeps them small and cheap to move,
/// costs one allocation only when a timer is armed, and makes them `Unpin`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Boxed(Option<Pin<Box<Sleep>>>);

impl Timer for Boxed {
    fn unarmed() -> Self {
        Boxed(None)
    }

    fn is_armed(&self) -> bool {
        self.0.is_some()
    }

    fn poll_until(
        mut self: Pin<&mut Self>,
        deadline: Instant,
        cx: &mut TaskContext<'_>,
    ) -> Poll<()> {
        self.0
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)))
            .as_mut()
            .poll(cx)
    }

    fn follow(mut self: Pin<&mut Self>, deadline: Instant) {
        if let Some(sleep) = self.0.as_mut() {
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
        }
    }

    #[inline]
    fn disarm(mut self: Pin<&mut Self>) {
        if self.0.is_some() {
            self.0 = None;
        }
    }
}

pin_project! {
    /// A timer in place, for waiters inside futures that are pinned anyway.
    #[doc(hidden)]
    #[derive(Debug)]
    pub struct Inline {
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl Timer for Inline {
    fn unarmed() -> Self {
        Inline { sleep: None }
    }

    fn is_armed(&self) -> bool {
        self.sleep.is_some()
    }

    fn poll_until(self: Pin<&mut Self>, deadline: Instant, cx: &mut TaskContext<'_>) -> Poll<()> {
        let mut sleep = self.project().sleep;
        if sleep.is_none() {
            sleep.set(Some(tokio::time::sleep_until(deadline)));
        }
        match sleep.as_pin_mut() {
            Some(sleep) => sleep.poll(cx),
            None => Poll::Pending,
        }
    }

    fn follow(self: Pin<&mut Self>, deadline: Instant) {
        if let Some(sleep) = self.project().sleep.as_pin_mut() {
            if sleep.deadline() != deadline {
                sleep.reset(deadline);
            }
        }
    }

    #[inline]
    fn disarm(self: Pin<&mut Self>) {
        let mut sleep = self.project().sleep;
        if sleep.is_some() {
            sleep.set(None);
        }
    }
}

/// A waiter whose timer is boxed: `Unpin`, and small until armed.
pub(crate) type Wait = WaitWith<Boxed>;

/// A waiter whose timer is in place: no allocation to arm it.
pub(crate) type InlineWait = WaitWith<Inline>;

pin_project! {
    /// The state of one waiter: its registration and its lazily armed timer.
    #[derive(Debug)]
    pub(crate) struct WaitWith<T> {
        registration: Option<Registration>,
        #[pin]
        timer: T,
    }
}

impl<T: Timer> WaitWith<T> {
    pub(crate) fn new() -> Self {
        WaitWith {
            registration: None,
            timer: T::unarmed(),
        }
    }

    /// Stops waiting: removes the registration and the timer, if any.
    /// The check is inlined: a step that never waited (a ready one) has
    /// neither, and should not pay a call to find out.
    #[inline]
    pub(crate) fn clear(self: Pin<&mut Self>) {
        if self.registration.is_some() || self.timer.is_armed() {
            self.clear_armed();
        }
    }

    fn clear_armed(self: Pin<&mut Self>) {
        let this = self.project();
        if this.registration.is_some() {
            *this.registration = None;
        }
        this.timer.disarm();
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
        self.poll_wait_via(node, node.wait_target(), DeadlineWatch::CheckFirst, cx)
    }

    /// Waits for `node` to end, with the waker registered on `register_on`,
    /// which is `node` or one of its ancestors.
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
        watch: DeadlineWatch,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Error> {
        let mut this = self.project();
        // Once the timer is armed the deadline is its business: only a
        // cancellation needs checking, without a clock read.
        let ended = if watch == DeadlineWatch::TimerOnly || this.timer.is_armed() {
            node.is_canceled()
        } else {
            node.is_done()
        };
        if ended {
            *this.registration = None;
            return Poll::Ready(Error::ended(node));
        }

        let registered = match (this.registration.as_mut(), register_on) {
            (Some(registration), _) if registration.waker.will_wake(cx.waker()) => true,
            (Some(registration), _) => {
                registration.waker.clone_from(cx.waker());
                match registration.target() {
                    Some(target) => target.update_waker(registration.key, cx.waker()),
                    None => false,
                }
            }
            (None, Some(target)) => match target.register(Entry::Waker(cx.waker().clone())) {
                Ok(key) => {
                    let registration = Registration {
                        node: Arc::clone(node),
                        on: Arc::as_ptr(target) as usize,
                        key,
                        waker: cx.waker().clone(),
                    };
                    debug_assert!(registration.target().is_some(), "not an ancestor");
                    *this.registration = Some(registration);
                    true
                }
                Err(_) => false,
            },
            (None, None) => true,
        };
        if !registered {
            // The wait list is closed: the context was canceled from above.
            *this.registration = None;
            return Poll::Ready(Error::ended(node));
        }
        // A cancellation that raced with the registration either shows here
        // or wakes the waker we just stored. (The deadline was checked above
        // and is the timer's business from here: no second clock read.)
        if node.is_canceled() {
            *this.registration = None;
            return Poll::Ready(Error::ended(node));
        }

        if let Some(deadline) = node.deadline() {
            // Below a movable deadline the timer follows the deadline: a move
            // earlier woke us to get here, a move later finds the timer
            // early (invariant 14 of the core).
            if node.follows_a_move() {
                this.timer.as_mut().follow(deadline);
            }
            if this.timer.as_mut().poll_until(deadline, cx).is_ready() {
                *this.registration = None;
                let ending = node.ending().unwrap_or_else(|| node.deadline_exceeded());
                return Poll::Ready(Error::from_ending(node, ending));
            }
        }
        Poll::Pending
    }
}
