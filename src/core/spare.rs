//! Spare nodes: each thread keeps a few node allocations that its
//! combinators are done with, and the next private child derived on the
//! thread takes one instead of calling the allocator.
//!
//! A step (`with_timeout`) or a branch (`race`, the joins) derives a private
//! child, runs a future under it and drops it: on the hot path that is one
//! allocation and one free per step, between a sixth and a third of a ready
//! step's cost as measured while the cache was built (`benches/peers.rs`,
//! "with_timeout(1h, ready)"). Most such children end
//! the way they began, owned by the combinator alone.
//!
//! # Why a spare is nobody else's
//!
//! - A node enters the cache only through [`Arc::get_mut`], which succeeds
//!   only when no other `Arc` and no `Weak` to it exists: no clone of its
//!   context, no descendant (each holds its parent), no entry in a wait list
//!   (a linked child is held there as a `Weak`).
//! - It enters blank: the node it was is dropped in place first, which
//!   unlinks it and releases its parent, its wait state and its name exactly
//!   as a drop of the last reference would (invariants 4 and 11 of the core),
//!   so a spare holds nothing of anyone's and keeps no ancestor alive.
//! - Taken out, it is overwritten whole, again through `Arc::get_mut`.
//!
//! So a spare is unreachable from anywhere but its thread's cache, and a node
//! derived from it is as new (the loom model
//! `loom_a_recycled_node_is_seen_by_nobody` races a recycling against a
//! cancellation that walks the parent's links).
//!
//! The cache holds at most [`KEEP`] spares per thread, blank nodes of 56
//! bytes: memory that a thread's next steps would allocate anyway. A thread
//! that exits frees them with its other thread-locals.

use std::cell::Cell;
use std::sync::Arc;

use super::Node;

/// The most spares one thread keeps: enough for the children of a few nested
/// steps and a small fan-out finishing in one poll.
const KEEP: usize = 8;

/// A thread's spares: a stack in cells rather than a `RefCell<Vec<_>>`, so
/// that taking and giving back are a few loads and stores with no borrow
/// flag to set and clear (a ready step takes one and gives it back,
/// `benches/peers.rs`, "with_timeout(1h, ready)").
///
/// The slots below `len` hold a spare, those from `len` on hold `None`.
/// Nothing here runs code of anyone's: dropping an emptied spare frees its
/// allocation and nothing else.
struct Spares {
    len: Cell<usize>,
    slots: [Cell<Option<Arc<Node>>>; KEEP],
}

impl Spares {
    const fn new() -> Self {
        // A named constant as the repeat operand: an inline `const { .. }`
        // block there needs Rust 1.79, above the crate's `rust-version`.
        #[allow(clippy::declare_interior_mutable_const)]
        const EMPTY: Cell<Option<Arc<Node>>> = Cell::new(None);
        Spares {
            len: Cell::new(0),
            slots: [EMPTY; KEEP],
        }
    }

    #[inline]
    fn take(&self) -> Option<Arc<Node>> {
        let len = self.len.get().checked_sub(1)?;
        self.len.set(len);
        self.slots.get(len)?.take()
    }

    #[inline]
    fn keep(&self, node: Arc<Node>) {
        let len = self.len.get();
        if let Some(slot) = self.slots.get(len) {
            slot.set(Some(node));
            self.len.set(len + 1);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len.get()
    }
}

#[cfg(not(tokio_ctx_loom))]
thread_local! {
    static SPARES: Spares = const { Spares::new() };
}

#[cfg(tokio_ctx_loom)]
loom::thread_local! {
    static SPARES: Spares = Spares::new();
}

/// Puts `node` into an allocation: a spare of this thread's if there is one.
#[inline]
pub(super) fn place(node: Node) -> Arc<Node> {
    let spare = SPARES.try_with(Spares::take).ok().flatten();
    match spare {
        // Invariant 13: overwritten whole, through `get_mut` again.
        Some(mut spare) => match Arc::get_mut(&mut spare) {
            Some(empty) => {
                debug_assert!(empty.is_empty());
                let emptied = std::mem::replace(empty, node);
                // An emptied node owns nothing (no parent, no wait state):
                // forgetting it leaks nothing and skips a drop that would
                // find nothing to do. Under loom its wait state is a box
                // allocated up front (`loom.rs`), so it is dropped there.
                #[cfg(not(tokio_ctx_loom))]
                std::mem::forget(emptied);
                #[cfg(tokio_ctx_loom)]
                drop(emptied);
                spare
            }
            // Unreachable: a spare is unique when it enters the cache and
            // nothing can reach it there. A fresh allocation is still right.
            None => Arc::new(node),
        },
        None => Arc::new(node),
    }
}

/// Keeps the allocation of `node` as a spare if this was its last reference
/// and nothing ever registered on it; otherwise drops it as usual.
#[inline]
pub(super) fn recycle(mut node: Arc<Node>) {
    // Emptied here, before it enters the cache: releasing the parent chain
    // may run callbacks that were waiting on it (invariant 11), and those are
    // user code that may derive and finish steps of its own.
    // Invariant 13: only a node nobody else holds, and that nothing ever
    // registered on.
    if !Arc::get_mut(&mut node).is_some_and(Node::empty) {
        return;
    }
    let _ = SPARES.try_with(|spares| spares.keep(node));
}

/// How many spares this thread holds (for the tests of the cache).
#[cfg(test)]
pub(super) fn count() -> usize {
    SPARES.with(Spares::len)
}
