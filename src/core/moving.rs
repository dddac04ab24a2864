//! Movable deadlines (invariant 14): asyncio's `Timeout.reschedule`,
//! Trio's assignable `deadline`.
//!
//! Every other node computes its effective deadline once, at derivation
//! (invariant 1). A node derived as movable keeps its own deadline in an
//! atomic in its `Extra`, and it and every node below it carry `FOLLOWS`:
//! their effective deadline is the earliest of the deadline fixed at their
//! derivation and the moving deadlines on the way up. Nothing else pays:
//! the flag is tested on the state word a check has loaded anyway.
//!
//! Waiters and callbacks follow a move. Timers are armed lazily by the
//! waiters (`crate::future::wait`), so a move earlier wakes every waker on
//! the wait lists at and below the node, and each re-arms its timer at the
//! new deadline; a move later wakes nobody (a timer that fires early finds
//! the deadline later and re-arms). An `on_done` callback's alarm is set
//! again on every move.

use std::mem;
use std::sync::{Arc, OnceLock};
use std::task::{Wake, Waker};

use tokio::time::Instant;

use super::callback::{Callback, Panics};
use super::{set_alarm, Deadline, Entry, Node, FOLLOWS, MOVABLE, OWN_DEADLINE};
use crate::loom::{lock, Ordering};

/// What a movable node's own deadline holds while a move is deciding
/// (invariant 14): a packing no deadline uses, below the earliest one and
/// above `Deadline::NONE`.
const MOVING: u64 = (i64::MIN + 1) as u64;

/// The earlier of two deadlines; `Deadline::NONE` is later than any.
#[inline]
pub(super) fn earlier(a: Deadline, b: Deadline) -> Deadline {
    match (a.is_some(), b.is_some()) {
        (true, true) => a.min(b),
        (true, false) => a,
        (false, _) => b,
    }
}

/// The waker a move leaves in a wait list while it wakes the one it took
/// out: one for the whole process, so that any move recognizes it, and a
/// second move leaves that waker alone while the first wakes it.
fn placeholder() -> &'static Waker {
    struct Placeholder;

    impl Wake for Placeholder {
        fn wake(self: Arc<Self>) {}
        fn wake_by_ref(self: &Arc<Self>) {}
    }

    static PLACEHOLDER: OnceLock<Waker> = OnceLock::new();
    PLACEHOLDER.get_or_init(|| Waker::from(Arc::new(Placeholder)))
}

impl Node {
    /// The effective deadline of a `FOLLOWS` node: its own field and the
    /// moving deadlines of the `MOVABLE` nodes up to the topmost one
    /// (invariant 14). A loop, as every walk (invariant 7).
    #[cold]
    #[inline(never)]
    pub(super) fn moving_deadline(&self) -> Deadline {
        let mut best = self.deadline;
        let mut node = self;
        loop {
            if let Some(own) = node.own_deadline() {
                best = earlier(best, own);
            }
            match &node.parent {
                Some(parent) if parent.state.load(Ordering::Relaxed) & FOLLOWS != 0 => {
                    node = parent;
                }
                _ => return best,
            }
        }
    }

    /// A `MOVABLE` node's own deadline as it is now.
    fn own_deadline(&self) -> Option<Deadline> {
        if self.state.load(Ordering::Relaxed) & MOVABLE == 0 {
            return None;
        }
        let own = self.extra()?.own_deadline.as_ref()?;
        // SeqCst, paired with `move_deadline`; a move in flight is waited
        // out (a clock read and a store, no user code).
        let mut round = 0;
        loop {
            let bits = own.load(Ordering::SeqCst);
            if bits != MOVING {
                return Some(Deadline::from_bits(bits));
            }
            crate::loom::back_off(round);
            round = round.saturating_add(1);
        }
    }

    /// Which node's deadline is the effective one of a `FOLLOWS` node, and
    /// how many levels up it is: the uppermost whose own deadline equals it
    /// (a tie goes to the ancestor, as in invariant 1). The error path's
    /// walk, to the root.
    pub(super) fn moving_deadline_owner(&self) -> (&Node, u32) {
        let effective = self.moving_deadline();
        let mut owner = None;
        let mut node = self;
        let mut level = 0u32;
        loop {
            let state = node.state.load(Ordering::Relaxed);
            let own = if state & MOVABLE != 0 {
                node.own_deadline()
            } else if state & OWN_DEADLINE != 0 {
                Some(node.deadline)
            } else {
                None
            };
            if effective.is_some() && own == Some(effective) {
                owner = Some((node, level));
            }
            match &node.parent {
                Some(parent) => {
                    node = parent;
                    level = level.saturating_add(1);
                }
                None => break,
            }
        }
        owner.unwrap_or((node, level))
    }

    /// Moves this `MOVABLE` node's own deadline to `to` (none: only the
    /// inherited one is left) and returns the effective deadline after the
    /// move, never later than the parent's. A deadline in the past is now.
    /// Does nothing once the node has ended.
    pub(crate) fn move_deadline(self: &Arc<Self>, to: Option<Instant>) -> Option<Instant> {
        let Some(own) = self.extra().and_then(|extra| extra.own_deadline.as_ref()) else {
            return self.deadline();
        };
        if self.is_done() {
            return self.deadline();
        }
        // Invariant 14: the old deadline is replaced by `MOVING` before the
        // clock is read, and readers wait while they see it, so a reader
        // that read the old deadline read the clock before this move does.
        let from_bits = loop {
            let bits = own.load(Ordering::SeqCst);
            if bits != MOVING
                && own
                    .compare_exchange(bits, MOVING, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                break bits;
            }
            crate::loom::back_off(0);
        };
        let from = Deadline::from_bits(from_bits);
        let now = Instant::now();
        if from.passed_at(now) {
            // The deadline passed before this move took hold, and a reader
            // may have reported it: an ended context stays ended.
            own.store(from_bits, Ordering::SeqCst);
            return self.deadline();
        }
        // Never into the past: a cancellation recorded before the move must
        // stay earlier than the deadline (invariant 14, and 2's order).
        let to = Deadline::new(to.map(|to| to.max(now)));
        own.store(to.to_bits(), Ordering::SeqCst);
        if to != from {
            #[cfg(feature = "tracing")]
            tracing::debug!(
                target: "tokio_ctx",
                context = self.name().as_deref(),
                location = %crate::error::ShortLocation(self.meta.location),
                from = ?from.get().map(|at| at.saturating_duration_since(now)),
                to = ?to.get().map(|at| at.saturating_duration_since(now)),
                "context deadline moved",
            );
            // Always, even when nothing seems to wait: a registration
            // takes the same locks as the walk, so the walk finds its
            // waiter or the waiter reads the deadline after the walk; a
            // flag read here could miss a registration in flight.
            self.follow_move(earlier(to, from) == to);
        }
        self.deadline()
    }

    /// Makes what waits at and below this node follow a move (invariant
    /// 14): wakes every waker when the deadline came `earlier`, and sets
    /// every callback's alarm again.
    fn follow_move(self: &Arc<Self>, earlier: bool) {
        let placeholder = placeholder();
        let mut stack = vec![Arc::clone(self)];
        let mut taken = Vec::new();
        let mut callbacks = Vec::new();
        while let Some(node) = stack.pop() {
            let Some(shared) = node.shared.get() else {
                continue;
            };
            let mut list = lock(&shared.list);
            // A closed list was taken whole by a cancellation: nothing left
            // to follow.
            if node.is_closed() {
                continue;
            }
            for (key, entry) in list.entries.iter_mut() {
                match entry {
                    // Moved out, not cloned: the user's waker is neither
                    // cloned nor dropped under the lock (invariant 6). A
                    // placeholder is another move's, which wakes it.
                    Entry::Waker(waker) if earlier && !waker.will_wake(placeholder) => {
                        let waker = mem::replace(waker, placeholder.clone());
                        taken.push((Arc::clone(&node), key, waker));
                    }
                    Entry::Waker(_) => {}
                    Entry::Child(child) => stack.extend(child.upgrade()),
                    Entry::Callback(callback) => {
                        callbacks.push((Arc::clone(&node), Arc::clone(callback)));
                    }
                }
            }
            drop(list);
            // `node` goes here, unlocked.
        }
        let mut panics = Panics::default();
        for (node, key, waker) in taken {
            panics.run(|| waker.wake_by_ref());
            node.put_back(key, waker, &mut panics);
        }
        for (node, callback) in callbacks {
            node.arm_alarm(&callback);
        }
        panics.resume();
    }

    /// Puts a waker a move took out back under `key`, where the move left
    /// the placeholder. If the list closed meanwhile, the cancellation woke
    /// only the placeholder, so the waker is woken here; if the entry was
    /// replaced or removed, it is no longer wanted.
    fn put_back(&self, key: usize, waker: Waker, panics: &mut Panics) {
        let mut waker = waker;
        let closed = match self.shared.get() {
            None => false,
            Some(shared) => {
                let mut list = lock(&shared.list);
                if self.is_closed() {
                    true
                } else {
                    if let Some(Entry::Waker(slot)) = list.entries.get_mut(key) {
                        if slot.will_wake(placeholder()) {
                            mem::swap(slot, &mut waker);
                        }
                    }
                    false
                }
            }
        };
        // Unlocked: the placeholder, or a waker nobody wants, goes here.
        if closed {
            panics.run(|| waker.wake());
        }
    }

    /// Sets `callback`'s alarm at this node's effective deadline, and again
    /// while a concurrent move changes it: whatever the order of moves and
    /// sets, the last set is followed by a read of the deadline it used.
    pub(crate) fn arm_alarm(&self, callback: &Arc<Callback>) {
        let mut at = self.deadline();
        loop {
            match at {
                Some(at) => set_alarm(at, callback),
                None => callback.clear_alarm(),
            }
            if self.state.load(Ordering::Relaxed) & FOLLOWS == 0 {
                return;
            }
            let now = self.deadline();
            if now == at {
                return;
            }
            at = now;
        }
    }
}
