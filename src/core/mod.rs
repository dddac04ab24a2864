//! The concurrency core: one [`Node`] per derived context.
//!
//! # Shape
//!
//! A node points at its parent with a strong reference; a parent does not own
//! its children. Whether a node is done is *pulled*: a node is done when it or
//! one of its ancestors holds a cancellation record, or when its effective
//! deadline has passed. Deriving therefore touches nothing but the new node,
//! dropping a node leaves no trace in its parent, and cancelling a node with a
//! million descendants costs the same as cancelling a leaf.
//!
//! Waking is *pushed*, but only along the paths where somebody waits. The
//! first waiter (a [`Waker`] or an `on_done` callback) registered on a node
//! links that node into its parent's wait list, and the parent into its own
//! parent, until the walk reaches a node that is already linked or a root.
//! Later waiters on the same path cost one lock. Cancelling a node closes its
//! wait list and every linked list below it and fires what they held.
//!
//! Deadlines are lazy: a node only stores its effective deadline. A waiter that
//! needs to be woken at the deadline arms its own timer (see
//! `crate::future::wait`), and an `on_done` callback sets an alarm (see
//! `alarm.rs`), so no timer exists unless something awaits.
//!
//! What only a few nodes carry (a deadline's cause, a movable deadline, a
//! stage of a budget report) lives in `Extra`, in the lazily allocated
//! `Shared`, and is reached by flag bits in the state word that a
//! derivation or a check loads anyway (`extra.rs`, `moving.rs`); a node
//! without any of it pays a test of those bits, nothing more.
//!
//! # Invariants
//!
//! 1. A node's effective deadline is `min(parent's effective deadline,
//!    requested deadline)`, fixed at derivation (below a movable deadline,
//!    see 14). `OWN_DEADLINE` is set only when the requested deadline is
//!    strictly earlier than the parent's (and the parent's had not passed
//!    yet, invariant 10), so the node named by an expiry is the one whose
//!    own limit actually bound it; a request no earlier than the parent's
//!    is clipped, which `tracing` hears of at derivation and only then.
//! 2. A node holds at most one cancellation [`Record`]. It is written under the
//!    node's lock by a `cancel` that found the node not done, and never removed.
//!    The `CANCELED` bit is set after the record is written, so a reader that
//!    saw the bit reads the record without the lock.
//! 3. The `CLOSED` bit is set under the node's lock when the node or one of
//!    its ancestors is canceled, in the same critical section that takes the
//!    node's wait list. It is never cleared, and a closed node accepts no
//!    entries, so a key into a closed list is dead.
//! 4. A node is linked into its parent's wait list at most once (`Link`), by
//!    the thread that moved it from `Unlinked` to `Linking`; it removes its own
//!    entry when dropped. The parent holds it weakly, so no cycle keeps either
//!    alive. Only a node with the `AWAITED` bit can be linked, and the wait
//!    state (`Shared`, which holds the lock) exists only once something
//!    registered on the node or canceled it, or when the node has a name
//!    or an `Extra`.
//! 5. A thread that tries to link a node into a closed parent closes that
//!    node's subtree itself. Together with 3, every entry registered on a node
//!    whose ancestor gets canceled is fired exactly once: either the canceling
//!    walk takes it, or the linking thread does.
//! 6. At most one lock is held at any time, so there is no lock order to
//!    respect. Wakers and callbacks run after every lock has been released,
//!    and nothing of the user's is cloned or dropped under one: a waker, a
//!    cause or a callback may own the last clone of a context, whose node
//!    then unlinks itself and runs its own callbacks. Replaced wakers,
//!    removed entries and refused causes leave the critical section first.
//! 7. Every walk over the tree (checks, closing, dropping) is a loop, never a
//!    recursion, so a chain of any depth fits in a small stack.
//! 8. The process-wide epoch word counts cancellations in flight in its low
//!    bits and epochs above them. A cancel adds one in flight before its
//!    record can be seen and, once it can, moves the epoch up and takes the
//!    one back: the word never repeats, and its low bits are clear only while
//!    no cancellation is in flight. A node remembers only a word with clear
//!    low bits, at which a walk found no ancestor canceled (or which its
//!    parent vouched for at derivation), and a live check compares that with
//!    the whole word. A thread that has seen a `CANCELED` bit (with acquire)
//!    reads a word from after that cancel's first addition: one with the
//!    cancel in flight, which matches nothing remembered, or one from after
//!    its second, which no walk that missed the record remembered. So a live
//!    check is O(1) at any depth while nothing is canceled, and never calls
//!    a node live below one its thread has seen canceled, nor lets a cancel
//!    made after that write a record of its own.
//! 9. Only a cancel handle cancels a node directly, except the child of a
//!    step, which has no handle and is canceled by the step. `HANDLE_GONE`
//!    is set when a node's only handle is dropped (a cloned handle sets
//!    `HANDLE_SHARED` instead, for good). A node with `HANDLE_GONE` can only
//!    end through an ancestor or its deadline, so a waiter on it registers
//!    on the nearest ancestor that can still be canceled, and the node needs
//!    no wait list of its own.
//! 10. A node derived when an ancestor was already canceled (as its
//!     deriving thread sees it, invariant 8) is `BORN_CANCELED`, fixed at
//!     derivation, and ends as its parent did; one derived with an absolute
//!     deadline under a parent whose deadline had passed does not own its
//!     deadline. Either way a child born under an ended parent reports the
//!     parent's error, never its own limit, which had no chance to fire
//!     first.
//! 11. When the last reference to a node that has not ended goes, the
//!     callbacks still registered on it are due: nothing can end it or wait
//!     for it any more, and what was tied to it (a token handed to a
//!     library) must be released, not left waiting forever. The node's drop
//!     takes them out (and those of the ancestors it releases) and runs them
//!     after every lock is released. No `Arc<Node>` is dropped under a lock
//!     (invariant 6), so they never run under one. A callback's alarm holds
//!     only the deadline and the callback, and is taken out when the
//!     callback is spent.
//! 12. A node's error, once reported, never changes. Records are never
//!     removed, so only a record written nearer than the one an answer was
//!     taken from could change it, and two steps rule that out. A cancel
//!     decides again once its cancellation is in flight (invariant 8): it
//!     reads the ancestors' `CANCELED` bits and the clock after its addition
//!     to the epoch word, and gives up if either says the node already
//!     ended. A reader accepts an answer that is not the node's own record
//!     only if the epoch word had no cancellation in flight before its walk
//!     and did not change by its end, and walks again otherwise. The
//!     addition, the bits and both reads of the word are `SeqCst`, so a
//!     reader who saw an ancestor's bit that a racing cancel missed also
//!     sees that cancel in flight, and walks again until its record shows.
//! 13. A node's allocation is reused (`spare.rs`) only after
//!     [`Arc::get_mut`] proved that no other `Arc` or `Weak` to it exists
//!     (no clone, no descendant, no wait-list entry), and only if nothing
//!     ever registered on it (invariant 4): it is emptied as its drop would
//!     empty it (its parent chain released, callbacks there run, invariant
//!     11), kept in its thread's spares, and overwritten whole by the next
//!     derivation there. A spare is reachable from nowhere else.
//! 14. A node derived with a movable deadline (`MOVABLE`) keeps its own
//!     deadline in an atomic in its `Extra`, where its handle moves it; its
//!     `deadline` field holds only what it inherited. It and every node
//!     derived below it carry `FOLLOWS`, fixed at derivation (a child takes
//!     it from the state word `vouch` loads), and their effective deadline
//!     is the earliest of their field and the moving deadlines of the
//!     `MOVABLE` nodes on the way up to the topmost one; the node that owns
//!     an expiry is the uppermost whose own deadline is the effective one.
//!     A move is clamped to now, so a cancellation recorded before it stays
//!     earlier (2's order), and does nothing once the node has ended. It
//!     stores the deadline, then always walks the wait lists at and below
//!     the node under their locks, as a cancel does: a registration and its
//!     links take the same locks, so the walk finds every waiter that
//!     registered before it passed, and a waiter that registered after
//!     reads the moved deadline, since it reads the deadline after
//!     registering. When the deadline came earlier the walk takes each
//!     waker out (leaving one process-wide placeholder, which another move
//!     leaves alone), wakes it unlocked and puts it back, waking it again
//!     if its list closed meanwhile; every callback's alarm is set again,
//!     and re-read until it stands still. A waiter whose timer fires before
//!     a deadline moved later re-arms it. An expiry once reported stays
//!     (12): a reader reads the clock before the moving deadline, and a
//!     move first replaces the deadline with a marker (`MOVING`) that
//!     readers wait out, then reads the clock, and puts the old deadline
//!     back untouched if it had passed by then. All of it is `SeqCst`, so a
//!     reader that read the old deadline read the clock no later than the
//!     move did.

mod alarm;
mod callback;
mod deadline;
mod extra;
mod moving;
mod slab;
mod spare;

use std::borrow::Cow;
use std::mem;
use std::panic::Location;
use std::sync::{Arc, OnceLock, Weak};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Reason};
use crate::loom::{lock, AtomicU64, Lazy, Mutex, Ordering};
pub(crate) use alarm::set as set_alarm;
pub(crate) use callback::Callback;
use callback::Panics;
use deadline::Budget;
pub(crate) use deadline::Deadline;
pub(crate) use extra::Cold;
use extra::Extra;
pub(crate) use slab::Slab;

// The process-wide epoch word (invariant 8). Its low `LOW` bits count the
// cancellations in flight: a cancel adds one before it makes its record
// visible, and when it is visible adds `EPOCH_UNIT - 1`, which moves the
// epoch above them up by one and takes its one back. So the word changes at
// both ends of every cancellation, never repeats a value (until it wraps,
// see below), and has its low bits clear only while no cancellation is
// between its two additions.
//
// A node's state word has the same layout: flags in the low bits, and above
// them a word with clear low bits at which a walk found no ancestor
// canceled. A live check compares `state & !LOW` with the whole epoch word:
// one load, one mask, one comparison; a cancellation in flight makes every
// remembered answer miss.
//
// Budget: 16 low bits, so 65,535 cancellations may be in flight at once. A
// thread is in at most one (between the two additions it holds the node's
// lock and runs no user code), so that is a limit on threads, not on load.
// The 48 bits above wrap after 2.8 * 10^14 cancellations: nine years at a
// million a second. A wrap could only matter to a node whose remembered
// word was not refreshed for a whole wrap and is checked while the epoch
// word holds that very value again.

/// The low bits: flags in a node's state word, cancellations in flight in
/// the epoch word.
const LOW: u64 = (1 << 16) - 1;
/// One epoch in the epoch word.
const EPOCH_UNIT: u64 = 1 << 16;

/// The epoch word. It starts at epoch 1, so that a remembered word of 0
/// means "never checked".
#[cfg(not(tokio_ctx_loom))]
#[inline]
fn epoch() -> &'static AtomicU64 {
    static EPOCH: AtomicU64 = AtomicU64::new(EPOCH_UNIT);
    &EPOCH
}

/// Under loom, a new epoch word for every execution of a model, so that it
/// is modeled like any other atomic.
#[cfg(tokio_ctx_loom)]
fn epoch() -> &'static AtomicU64 {
    loom::lazy_static! {
        static ref EPOCH: AtomicU64 = AtomicU64::new(EPOCH_UNIT);
    }
    &EPOCH
}

/// The node holds a cancellation record (invariant 2).
const CANCELED: u64 = 1;
/// The node's wait list is closed because it or an ancestor was canceled
/// (invariant 3).
const CLOSED: u64 = 1 << 1;
/// An expiry of this node's own deadline has been reported to `tracing`.
#[cfg(feature = "tracing")]
const EXPIRY_REPORTED: u64 = 1 << 2;
/// Something has registered on the node at least once.
const AWAITED: u64 = 1 << 3;
/// Fixed at derivation: the node has a parent to consult.
const HAS_PARENT: u64 = 1 << 4;
/// Fixed at derivation: the node has an effective deadline.
const HAS_DEADLINE: u64 = 1 << 5;
/// Fixed at derivation: the effective deadline is the node's own, not
/// inherited (invariant 1).
const OWN_DEADLINE: u64 = 1 << 6;
/// The node's cancel handle was cloned: there may be several (invariant 9).
const HANDLE_SHARED: u64 = 1 << 7;
/// The node's only cancel handle was dropped: nothing can cancel the node
/// itself any more, only its ancestors can end it (invariant 9).
const HANDLE_GONE: u64 = 1 << 8;
/// Fixed at derivation: an ancestor was already canceled, so the node ends
/// as its parent did, whatever its own deadline (invariant 10).
const BORN_CANCELED: u64 = 1 << 9;
/// Fixed at derivation: the node asked for a deadline no earlier than the
/// one it inherited, which clipped it (invariant 1), and `tracing` listened.
const CLIPPED: u64 = 1 << 13;
/// Fixed at derivation: the node's own deadline can be moved, by the
/// handle it was derived with; it lives in the node's `Extra` (invariant 14).
const MOVABLE: u64 = 1 << 10;
/// Fixed at derivation: the node is `MOVABLE` or below such a node, so its
/// effective deadline is found by a walk up to it (invariant 14).
const FOLLOWS: u64 = 1 << 11;
/// Fixed at derivation: the node is below a budget report (or is the
/// report's own node), and its `Extra` says where its stage is recorded.
const RECORDED: u64 = 1 << 12;
/// The flags that say a node is canceled, itself or through an ancestor.
const ENDED: u64 = CANCELED | CLOSED | BORN_CANCELED;
/// The flags a child takes from its parent at derivation, from the state
/// word the derivation loads anyway (see `vouch`).
const INHERITED: u64 = FOLLOWS | RECORDED;

/// True when a clipped derivation is worth a `tracing` event: something
/// listens at debug level.
#[cold]
#[inline(never)]
fn clipping_is_heard() -> bool {
    #[cfg(feature = "tracing")]
    return tracing::level_enabled!(tracing::Level::DEBUG);
    #[cfg(not(feature = "tracing"))]
    return false;
}

/// Why a node was canceled: the user's cause, or a reason of this crate's.
#[derive(Debug, Clone)]
pub(crate) enum Cause {
    User(Arc<dyn std::error::Error + Send + Sync + 'static>),
    Reason(&'static Reason),
}

impl Cause {
    pub(crate) fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        match self {
            Cause::User(cause) => &**cause,
            Cause::Reason(reason) => *reason,
        }
    }
}

/// What a context says about itself in errors and events, besides its
/// name: names are rare and cold, so they live in the lazily allocated
/// [`Shared`] instead of in every node.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) location: &'static Location<'static>,
    /// The limit asked for at derivation, when one was.
    budget: Budget,
}

impl Meta {
    #[inline]
    pub(crate) fn new(location: &'static Location<'static>, budget: Option<Duration>) -> Self {
        Meta {
            location,
            budget: Budget::new(budget),
        }
    }

    pub(crate) fn budget(&self) -> Option<Duration> {
        self.budget.get()
    }
}

/// A cancellation: the cause and when it happened (invariant 2).
#[derive(Debug)]
struct Record {
    cause: Option<Cause>,
    at: Instant,
    /// The error every descendant of the node reports for this record, made
    /// by the first one that asks: when a request with a thousand waiters
    /// is canceled, they share one error instead of building one each.
    below: OnceLock<Error>,
}

/// Whether and where a node is linked into its parent's wait list (invariant 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Link {
    #[default]
    Unlinked,
    /// A thread is linking the node; it will store the key when done.
    Linking,
    Linked(usize),
}

/// One thing waiting on a node.
pub(crate) enum Entry {
    Waker(Waker),
    Callback(Arc<Callback>),
    /// A child that has waiters of its own (invariant 4).
    Child(Weak<Node>),
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entry::Waker(_) => "Waker",
            Entry::Callback(_) => "Callback",
            Entry::Child(_) => "Child",
        })
    }
}

/// The state that only cancelling, waiting and naming need, allocated the
/// first time one happens: most contexts are derived, checked and dropped
/// without ever needing it.
#[derive(Debug, Default)]
struct Shared {
    /// Written once, under the lock of `list`, by a cancel that found the
    /// node not done (invariant 2); read without the lock by whoever saw
    /// `CANCELED`, so that a thousand woken waiters do not queue on it.
    record: OnceLock<Record>,
    /// Set at derivation, never changed.
    name: Option<Cow<'static, str>>,
    /// What only a few nodes have (a deadline's cause, a movable deadline,
    /// a stage of a budget report); set at derivation, never replaced.
    extra: Option<Box<Extra>>,
    /// The node's lock. Whether the list is closed is the `CLOSED` bit,
    /// written and read under it.
    list: Mutex<WaitList>,
}

// A panic cannot leave a `Shared` half-updated for anyone to observe: the
// list is behind a lock that ignores poisoning because no crate code panics
// while holding it, and the record is set whole, once. So contexts stay
// unwind safe, as they were when the record sat behind the lock too.
impl std::panic::UnwindSafe for Shared {}
impl std::panic::RefUnwindSafe for Shared {}

/// What waits on a node, and where the node waits on its parent.
#[derive(Debug, Default)]
struct WaitList {
    entries: Slab<Entry>,
    link: Link,
}

/// How a node ended, as seen from that node.
#[derive(Debug)]
pub(crate) enum Ending<'a> {
    /// Canceled itself, the node that was asked, at `at`.
    Canceled { cause: Option<Cause>, at: Instant },
    /// Canceled through an ancestor at the instant given: the error all its
    /// descendants share.
    CanceledAbove(Error, Instant),
    DeadlineExceeded {
        by: &'a Node,
        /// How many levels above the node that was asked `by` is.
        levels: u32,
    },
}

impl Ending<'_> {
    /// When the node ended: the cancellation's instant, or its deadline.
    pub(crate) fn at(&self, node: &Node) -> Instant {
        match self {
            Ending::Canceled { at, .. } | Ending::CanceledAbove(_, at) => *at,
            Ending::DeadlineExceeded { .. } => node.deadline().unwrap_or_else(Instant::now),
        }
    }
}

/// The shared state behind every clone of one derived context.
///
/// Its size is what a live child costs, so every field is eight bytes or
/// folded into another (see `deadline.rs` and the state word).
#[derive(Debug)]
pub(crate) struct Node {
    parent: Option<Arc<Node>>,
    /// Flag bits and the checked epoch (invariant 8).
    state: AtomicU64,
    deadline: Deadline,
    pub(crate) meta: Meta,
    shared: Lazy<Shared>,
}

impl Node {
    /// Derives a node below `parent` (a new root when `None`).
    ///
    /// `now` is the current instant when the caller read it for an
    /// absolute deadline: the one kind of request that can be earlier than
    /// a parent's deadline that has already passed. A node below a movable
    /// deadline or a budget report (a flag its parent passes on) goes the
    /// slow way, as one derived with [`derive_cold`](Self::derive_cold).
    ///
    /// `private`: a combinator's child, whose node goes back to the
    /// thread's spares when the combinator is done with it, and is placed
    /// in a spare when there is one (`spare.rs`). Only the usual
    /// derivation looks there.
    #[inline]
    pub(crate) fn derive(
        parent: Option<&Arc<Node>>,
        requested: Deadline,
        now: Option<Instant>,
        name: Option<Cow<'static, str>>,
        meta: Meta,
        private: bool,
    ) -> Arc<Node> {
        let (deadline, flags) = Node::fix(parent, requested, now);
        // One test for both things the usual derivation does not have to
        // do: inherit a movable deadline or a report, or say it was clipped.
        if flags & (INHERITED | CLIPPED) != 0 {
            return Node::derive_slow(parent, requested, deadline, flags, name, meta);
        }
        let node = Node::plain(parent, deadline, flags, name, meta);
        if private {
            Node::in_spare(node)
        } else {
            Arc::new(node)
        }
    }

    /// The node of a derivation with nothing cold about it.
    #[inline]
    fn plain(
        parent: Option<&Arc<Node>>,
        deadline: Deadline,
        flags: u64,
        name: Option<Cow<'static, str>>,
        meta: Meta,
    ) -> Node {
        Node {
            state: AtomicU64::new(flags),
            parent: parent.cloned(),
            deadline,
            meta,
            shared: match name {
                Some(name) => Lazy::with(Shared {
                    name: Some(name),
                    ..Shared::default()
                }),
                None => Lazy::new(),
            },
        }
    }

    /// A derivation below a movable deadline or a report, or one that was
    /// clipped: out of the way of the usual one.
    #[cold]
    #[inline(never)]
    fn derive_slow(
        parent: Option<&Arc<Node>>,
        requested: Deadline,
        deadline: Deadline,
        flags: u64,
        name: Option<Cow<'static, str>>,
        meta: Meta,
    ) -> Arc<Node> {
        if flags & INHERITED != 0 {
            return extra::derive(parent, requested, deadline, flags, Cold::named(name), meta);
        }
        let node = Arc::new(Node::plain(parent, deadline, flags, name, meta));
        #[cfg(feature = "tracing")]
        node.say_if_clipped(flags);
        node
    }

    /// Derives a node that asks for what only a few do (a deadline's cause,
    /// a movable deadline, a budget report): its `Extra` is allocated with
    /// it.
    #[inline(never)]
    pub(crate) fn derive_cold(
        parent: Option<&Arc<Node>>,
        requested: Deadline,
        now: Option<Instant>,
        cold: Cold,
        meta: Meta,
    ) -> Arc<Node> {
        let (deadline, flags) = Node::fix(parent, requested, now);
        extra::derive(parent, requested, deadline, flags, cold, meta)
    }

    /// The effective deadline a new node starts with and its flags
    /// (invariants 1, 8 and 10).
    #[inline]
    fn fix(
        parent: Option<&Arc<Node>>,
        requested: Deadline,
        now: Option<Instant>,
    ) -> (Deadline, u64) {
        let inherited = parent.map_or(Deadline::NONE, |p| p.deadline);
        // Invariant 1: only a strictly earlier request makes the deadline
        // ours, and only under a parent that had not expired (invariant 10).
        let (deadline, own) = match (inherited.is_some(), requested.is_some()) {
            (true, true) if requested < inherited => {
                let expired = now.is_some_and(|now| inherited.passed_at(now));
                (requested, if expired { 0 } else { OWN_DEADLINE })
            }
            // Clipped: known here, and told to `tracing` only now, if it
            // listens at all (one load of its global level filter).
            (true, true) => (inherited, if clipping_is_heard() { CLIPPED } else { 0 }),
            (true, false) => (inherited, 0),
            (false, true) => (requested, OWN_DEADLINE),
            (false, false) => (Deadline::NONE, 0),
        };
        let flags = own
            | if parent.is_some() { HAS_PARENT } else { 0 }
            | if deadline.is_some() { HAS_DEADLINE } else { 0 }
            | parent.map_or(0, |p| p.vouch());
        (deadline, flags)
    }

    /// Tells `tracing` that the derivation of this node was clipped: known
    /// at derivation, and said only then.
    #[cfg(feature = "tracing")]
    #[inline]
    pub(super) fn say_if_clipped(&self, flags: u64) {
        if flags & CLIPPED != 0 {
            if let Some(parent) = &self.parent {
                extra::clipped(parent, self, self.deadline);
            }
        }
    }

    /// A new root or child with nothing but a deadline, not yet in an
    /// allocation, for the core's own tests.
    #[cfg(test)]
    pub(crate) fn new(
        parent: Option<&Arc<Node>>,
        requested: Deadline,
        now: Option<Instant>,
        name: Option<Cow<'static, str>>,
        meta: Meta,
    ) -> Node {
        let (deadline, flags) = Node::fix(parent, requested, now);
        Node::plain(parent, deadline, flags, name, meta)
    }

    /// Puts a new node into a spare allocation of this thread's when there
    /// is one (see `spare.rs`).
    #[inline]
    pub(crate) fn in_spare(node: Node) -> Arc<Node> {
        spare::place(node)
    }

    /// Drops a combinator's reference to its private child; if it was the
    /// last one, the allocation becomes one of this thread's spares.
    #[inline]
    pub(crate) fn recycle(node: Arc<Node>) {
        spare::recycle(node);
    }

    /// Empties a node that nothing else can reach (`&mut`) and that nothing
    /// ever registered on, releasing what it held as its drop would: its
    /// parent chain (and the callbacks waiting there, invariant 11) and its
    /// wait state. False, with the node untouched, if something registered
    /// on it: that needs the whole of its drop (unlinking, its own
    /// callbacks).
    #[inline]
    fn empty(&mut self) -> bool {
        // Invariant 13: a node that was registered on may still be reached
        // through a wait list it was linked into; only its drop may empty it.
        if self.ever_awaited() {
            return false;
        }
        self.state = AtomicU64::new(0);
        // Its record and name, if it had them; no entry and no link, since
        // nothing ever registered (invariant 4).
        if self.shared.get().is_some() {
            self.shared = Lazy::new();
        }
        release_parent(self.parent.take());
        true
    }

    /// True if the node holds nothing, as [`empty`](Self::empty) leaves it.
    fn is_empty(&self) -> bool {
        self.parent.is_none() && self.shared.get().is_none()
    }

    /// The name given at derivation, if any.
    pub(crate) fn name(&self) -> Option<Cow<'static, str>> {
        self.shared.get().and_then(|shared| shared.name.clone())
    }

    /// The node this one was derived from, if any.
    pub(crate) fn parent(&self) -> Option<&Arc<Node>> {
        self.parent.as_ref()
    }

    /// The effective deadline (invariants 1 and 14).
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.effective().get()
    }

    /// The effective deadline, packed: the one fixed at derivation, or,
    /// below a movable deadline, the earliest along the way up to it
    /// (invariant 14).
    #[inline]
    fn effective(&self) -> Deadline {
        if self.state.load(Ordering::Relaxed) & FOLLOWS != 0 {
            return self.moving_deadline();
        }
        self.deadline
    }

    /// True if the node's deadline may move (invariant 14): a waiter's
    /// timer must then follow it.
    #[inline]
    pub(crate) fn follows_a_move(&self) -> bool {
        self.state.load(Ordering::Relaxed) & FOLLOWS != 0
    }

    /// Whether the wait list is closed (invariant 3); authoritative when read
    /// under the node's lock, where the bit is written.
    #[inline]
    fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// True when this node or an ancestor is canceled, or the deadline passed.
    ///
    /// Always inlined, clock read and all: as a call, the check of a live
    /// context without a deadline (one load) costs as much again, and with
    /// a deadline the call's frame is a fifth of what the check adds to the
    /// clock read (`benches/peers.rs`, "is_done live").
    #[inline(always)]
    pub(crate) fn is_done(&self) -> bool {
        // One load answers the common cases: ended, or a root with nothing
        // more to consult.
        let state = self.state.load(Ordering::Acquire);
        if state & (HAS_PARENT | HAS_DEADLINE) == 0 {
            return state & ENDED != 0;
        }
        self.canceled_given(state) || (state & HAS_DEADLINE != 0 && self.deadline_passed(state))
    }

    /// Reads the clock. `state` is the state word loaded by the check.
    #[inline]
    fn deadline_passed(&self, state: u64) -> bool {
        // The clock before a moving deadline (invariant 14).
        let now = Instant::now();
        let deadline = if state & FOLLOWS != 0 {
            self.moving_deadline()
        } else {
            self.deadline
        };
        deadline.passed_at(now)
    }

    /// True when this node or an ancestor is canceled, without looking at
    /// the clock: for a waiter whose timer watches the deadline.
    #[inline]
    pub(crate) fn is_canceled(&self) -> bool {
        self.canceled_given(self.state.load(Ordering::Acquire))
    }

    /// The cancellation part of a check, from an already loaded state word.
    #[inline]
    fn canceled_given(&self, state: u64) -> bool {
        state & ENDED != 0 || (state & HAS_PARENT != 0 && self.ancestor_canceled(state))
    }

    /// True when an ancestor is canceled; O(1) while the epoch stands still
    /// (invariant 8). `state` is a value of the state word loaded before.
    #[inline]
    fn ancestor_canceled(&self, state: u64) -> bool {
        // A word with cancellations in flight never equals a remembered one.
        let word = epoch().load(Ordering::Acquire);
        if state & !LOW == word {
            return false;
        }
        self.walk_and_remember(state, word)
    }

    /// Walks the ancestors; if none is canceled and no cancellation was in
    /// flight in `word`, remembers `word` (invariant 8).
    #[inline(never)]
    fn walk_and_remember(&self, state: u64, word: u64) -> bool {
        if self.walk_ancestors() {
            return true;
        }
        // Only if no flag changed meanwhile: losing this store costs one
        // more walk later, never a wrong answer.
        if word & LOW == 0 {
            let _ = self.state.compare_exchange(
                state,
                (state & LOW) | word,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        false
    }

    /// [`walk_ancestors`](Self::walk_ancestors) for `cancel`, ordered with
    /// the readers of invariant 12.
    fn walk_ancestors_seq_cst(&self) -> bool {
        let mut node = self;
        while let Some(parent) = &node.parent {
            if parent.state.load(Ordering::SeqCst) & ENDED != 0 {
                return true;
            }
            node = parent;
        }
        false
    }

    fn walk_ancestors(&self) -> bool {
        let mut node = self;
        while let Some(parent) = &node.parent {
            if parent.state.load(Ordering::Acquire) & ENDED != 0 {
                return true;
            }
            node = parent;
        }
        false
    }

    /// What a new child's state word starts with: the current epoch word if
    /// this node is known not to be canceled at it (invariant 8),
    /// `BORN_CANCELED` if it is (invariant 10), otherwise 0 (unchecked).
    ///
    /// The flags a child inherits (`FOLLOWS`, `RECORDED`) come with it,
    /// read from the same load.
    #[inline]
    fn vouch(&self) -> u64 {
        let word = epoch().load(Ordering::Acquire);
        let state = self.state.load(Ordering::Acquire);
        let vouched = if state & ENDED != 0 {
            BORN_CANCELED
        } else {
            let live = state & HAS_PARENT == 0
                || state & !LOW == word
                || !self.walk_and_remember(state, word);
            match (live, word & LOW == 0) {
                (false, _) => BORN_CANCELED,
                (true, true) => word,
                (true, false) => 0,
            }
        };
        vouched | (state & INHERITED)
    }

    /// How this node ended, if it has.
    ///
    /// The nearest cancellation record wins over records further up (a node
    /// is only recorded while it is not yet done, invariant 2), and the
    /// deadline wins over a record made at or after it. A node born under a
    /// canceled ancestor ends as its parent did (invariant 10).
    pub(crate) fn ending(&self) -> Option<Ending<'_>> {
        let mut from = self;
        while from.state.load(Ordering::Relaxed) & BORN_CANCELED != 0 {
            match &from.parent {
                Some(parent) => from = parent,
                None => break,
            }
        }
        // Invariant 12: an answer found while no cancellation was in flight,
        // and none began or ended during the walk, is the final one.
        let mut round = 0;
        loop {
            let before = epoch().load(Ordering::SeqCst);
            let ending = from.ending_as_seen_by(self);
            if let Some(Ending::Canceled { .. }) = ending {
                // The asked node's own record: nothing can come nearer.
                return ending;
            }
            if before & LOW == 0 && epoch().load(Ordering::SeqCst) == before {
                return ending;
            }
            // A cancel is between its check of the ancestors and its record
            // becoming visible: a few instructions under a lock, no user code.
            crate::loom::back_off(round);
            round = round.saturating_add(1);
        }
    }

    /// How this node ended, told to `asked`: itself, or a descendant born
    /// after it had ended.
    fn ending_as_seen_by<'a>(&'a self, asked: &'a Node) -> Option<Ending<'a>> {
        let mut node = self;
        loop {
            // SeqCst, paired with `cancel` (invariant 12).
            if node.state.load(Ordering::SeqCst) & CANCELED != 0 {
                if let Some(ending) = self.ending_by_record_of(node, asked) {
                    return Some(ending);
                }
            }
            match &node.parent {
                Some(parent) => node = parent,
                None => break,
            }
        }
        // The clock before the deadline: a move that missed this read
        // sees it passed and takes itself back (invariant 14).
        let now = Instant::now();
        let deadline = self.effective();
        if deadline.is_some() && deadline.passed_at(now) {
            return Some(self.deadline_exceeded());
        }
        None
    }

    /// How this node ended given the cancellation record of `by` (itself or
    /// an ancestor), if `by` holds one; own only if `by` is `asked`.
    fn ending_by_record_of<'a>(&'a self, by: &'a Node, asked: &Node) -> Option<Ending<'a>> {
        // No lock: the record is written once, before `CANCELED`.
        let shared = by.shared.get()?;
        let Record { cause, at, below } = shared.record.get()?;
        if self.effective().passed_at(*at) {
            return Some(self.deadline_exceeded());
        }
        if std::ptr::eq(asked, by) {
            return Some(Ending::Canceled {
                cause: cause.clone(),
                at: *at,
            });
        }
        let error = below.get_or_init(|| Error::canceled_above(by, cause.clone()));
        Some(Ending::CanceledAbove(error.clone(), *at))
    }

    pub(crate) fn deadline_exceeded(&self) -> Ending<'_> {
        let (by, levels) = if self.state.load(Ordering::Relaxed) & FOLLOWS != 0 {
            self.moving_deadline_owner()
        } else {
            // Invariant 1: the nearest node with its own deadline set the
            // effective one. Counting the levels is the error path's: a
            // clipped step's error says how far up its budget ended.
            let mut by = self;
            let mut levels = 0u32;
            while by.state.load(Ordering::Relaxed) & OWN_DEADLINE == 0 {
                match &by.parent {
                    Some(parent) => {
                        by = parent;
                        levels = levels.saturating_add(1);
                    }
                    None => break,
                }
            }
            (by, levels)
        };
        #[cfg(feature = "tracing")]
        if by.state.fetch_or(EXPIRY_REPORTED, Ordering::Relaxed) & EXPIRY_REPORTED == 0 {
            let cause = by.deadline_cause();
            tracing::debug!(
                target: "tokio_ctx",
                context = by.name().as_deref(),
                location = %crate::error::ShortLocation(by.meta.location),
                budget = ?by.meta.budget(),
                cause = cause.as_ref().map(|c| tracing::field::display(c.as_error())),
                "context deadline exceeded",
            );
        }
        Ending::DeadlineExceeded { by, levels }
    }

    /// The cause given for this node's own deadline, if any (Go's
    /// `WithDeadlineCause`).
    pub(crate) fn deadline_cause(&self) -> Option<Cause> {
        self.extra()?.deadline_cause.clone()
    }

    /// The cold part of the node's state, if it has one.
    fn extra(&self) -> Option<&Extra> {
        self.shared.get()?.extra.as_deref()
    }

    /// Cancels this node; false if it had already ended.
    pub(crate) fn cancel(self: &Arc<Self>, cause: Option<Cause>) -> bool {
        // A repeated cancel (a combinator giving up on steps it already
        // canceled) costs one load. The clock is read again once the cancel
        // is in flight (invariant 12), and that read serves the record.
        if self.is_canceled() || self.effective().passed_at(Instant::now()) {
            return false;
        }
        let shared = self.shared.get_or_default();
        let refused = {
            let _list = lock(&shared.list);
            if self.is_closed() || shared.record.get().is_some() {
                // Dropped after unlocking: a cause is user code.
                Err((cause, false))
            } else {
                // Invariant 8: in flight before the record can be seen, so
                // that no check trusts a remembered word until the epoch
                // has moved past this cancellation.
                epoch().fetch_add(1, Ordering::SeqCst);
                // Invariant 12: decided again once in flight, so that a
                // reader who already answered for this node from an
                // ancestor's record or from the deadline is never
                // contradicted. The clock is read here for the same
                // reason, and serves the record too: descendants compare
                // its instant with their own deadlines.
                let now = Instant::now();
                if self.walk_ancestors_seq_cst() || self.effective().passed_at(now) {
                    Err((cause, true))
                } else {
                    // Under the lock, after the checks above: the only writer.
                    let lost = shared.record.set(Record {
                        cause,
                        at: now,
                        below: OnceLock::new(),
                    });
                    // Invariant 2: the bit after the record, released with
                    // it and with the addition above.
                    self.state.fetch_or(CANCELED, Ordering::SeqCst);
                    Ok(lost.err())
                }
            }
        };
        match refused {
            Err((cause, in_flight)) => {
                if in_flight {
                    // Out of flight again; moving the epoch up keeps the
                    // word from ever repeating (invariant 8).
                    epoch().fetch_add(EPOCH_UNIT - 1, Ordering::Release);
                }
                drop(cause);
                return false;
            }
            Ok(lost) => debug_assert!(lost.is_none(), "a second cancellation record"),
        }
        // Invariant 8: the epoch up, this cancellation out of flight.
        epoch().fetch_add(EPOCH_UNIT - 1, Ordering::Release);
        // A subscriber is user code too: its panic must not keep the walk
        // from waking anyone.
        #[cfg_attr(not(feature = "tracing"), allow(unused_mut))]
        let mut panics = Panics::default();
        #[cfg(feature = "tracing")]
        panics.run(|| {
            let cause = shared.record.get().and_then(|record| record.cause.as_ref());
            tracing::debug!(
                target: "tokio_ctx",
                context = shared.name.as_deref(),
                location = %crate::error::ShortLocation(self.meta.location),
                budget = ?self.meta.budget(),
                cause = cause.map(|c| tracing::field::display(c.as_error())),
                "context canceled",
            );
        });
        close_subtree(Arc::clone(self), panics);
        true
    }

    /// Records that a second cancel handle exists (invariant 9).
    pub(crate) fn handle_cloned(&self) {
        self.state.fetch_or(HANDLE_SHARED, Ordering::Relaxed);
    }

    /// Records that a cancel handle was dropped: if it was the only one,
    /// nothing can cancel this node directly any more (invariant 9).
    #[inline]
    pub(crate) fn handle_dropped(&self) {
        if self.state.load(Ordering::Relaxed) & HANDLE_SHARED == 0 {
            self.state.fetch_or(HANDLE_GONE, Ordering::Relaxed);
        }
    }

    /// Where a waiter on this node registers: the node itself, or the
    /// nearest ancestor that can still be canceled directly when nothing
    /// else can cancel this one (invariant 9). `None` when no node on the
    /// way up can be canceled: only a deadline can end this one.
    pub(crate) fn wait_target(self: &Arc<Self>) -> Option<&Arc<Node>> {
        let mut node = self;
        while node.state.load(Ordering::Acquire) & HANDLE_GONE != 0 {
            node = node.parent.as_ref()?;
        }
        Some(node)
    }

    /// Cancels on behalf of a combinator that is done with this node, unless
    /// nobody could tell: no reference to it exists beyond the combinator's
    /// own `own_refs`, and nothing waits on it. Skipping saves a clock read,
    /// a lock and an epoch bump on every step that finishes without having
    /// shared its context.
    #[inline]
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn finish(self: &Arc<Self>, cause: Cause, own_refs: usize) {
        if Arc::strong_count(self) <= own_refs && !self.has_waiters() {
            return;
        }
        self.cancel(Some(cause));
    }

    /// Records that something registered on this node (invariant 4).
    fn mark_awaited(&self) {
        // Set once: a read is cheaper than a write on every later waiter.
        if self.state.load(Ordering::Relaxed) & AWAITED == 0 {
            self.state.fetch_or(AWAITED, Ordering::Relaxed);
        }
    }

    /// True if something ever registered on this node (a waiter, a
    /// callback, a linked child).
    #[inline]
    pub(crate) fn ever_awaited(&self) -> bool {
        self.state.load(Ordering::Acquire) & AWAITED != 0
    }

    /// True if something waits on this node now: cancelling it has work to
    /// do beyond the record. Inlined: a step asks when it finishes, and the
    /// answer is usually one load away.
    #[inline]
    pub(crate) fn has_waiters(&self) -> bool {
        if !self.ever_awaited() || self.is_closed() {
            return false;
        }
        self.shared
            .get()
            .is_some_and(|shared| lock(&shared.list).entries.len() > 0)
    }

    /// Adds `entry` to this node's wait list and links the node upward.
    ///
    /// Gives the entry back when the list is closed: the node is done.
    pub(crate) fn register(self: &Arc<Self>, entry: Entry) -> Result<usize, Entry> {
        let (key, link) = {
            let mut list = lock(&self.shared.get_or_default().list);
            if self.is_closed() {
                return Err(entry);
            }
            let key = list.entries.insert(entry);
            self.mark_awaited();
            (key, list.claim_link(self.parent.is_some()))
        };
        if link {
            link_upward(Arc::clone(self));
        }
        Ok(key)
    }

    /// Replaces the waker under `key`; false when the list is closed.
    pub(crate) fn update_waker(&self, key: usize, waker: &Waker) -> bool {
        // Closing is final (invariant 3): seen once, no lock is needed.
        if self.is_closed() {
            return false;
        }
        let Some(shared) = self.shared.get() else {
            return true;
        };
        // Cloning and dropping a waker are user code (a waker may own the
        // last clone of a context, whose node then unlinks itself from
        // this very list): both happen unlocked (invariant 6).
        let mut waker = waker.clone();
        {
            let mut list = lock(&shared.list);
            if self.is_closed() {
                return false;
            }
            if let Some(Entry::Waker(old)) = list.entries.get_mut(key) {
                if !old.will_wake(&waker) {
                    mem::swap(old, &mut waker);
                }
            }
        }
        // The replaced waker, or the unused clone.
        drop(waker);
        true
    }

    /// Removes the entry under `key`, unless the list was closed (invariant 3).
    pub(crate) fn deregister(&self, key: usize) {
        // A closed list was taken whole: the key is dead (invariant 3).
        if self.is_closed() {
            return;
        }
        let Some(shared) = self.shared.get() else {
            return;
        };
        let removed = {
            let mut list = lock(&shared.list);
            if self.is_closed() {
                None
            } else {
                list.entries.remove(key)
            }
        };
        // A waker's drop may run arbitrary code: keep it outside the lock.
        drop(removed);
    }

    /// Removes `callback` from under `key`, if it is still there: an
    /// `OnDone` may try more than once, and a key is reused once removed.
    pub(crate) fn deregister_callback(&self, key: usize, callback: &Arc<Callback>) {
        if self.is_closed() {
            return;
        }
        let Some(shared) = self.shared.get() else {
            return;
        };
        let removed = {
            let mut list = lock(&shared.list);
            let ours = matches!(
                list.entries.get_mut(key),
                Some(Entry::Callback(entry)) if Arc::ptr_eq(entry, callback)
            );
            if ours && !self.is_closed() {
                list.entries.remove(key)
            } else {
                None
            }
        };
        drop(removed);
    }

    /// The number of entries waiting on this node (for tests of cleanup).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.shared
            .get()
            .map_or(0, |shared| lock(&shared.list).entries.len())
    }

    /// Takes this node out of its parent's wait list (invariant 4) and, if
    /// it has not ended, takes the callbacks still waiting on it into `due`
    /// (invariant 11).
    #[inline]
    fn release(&mut self, due: &mut Vec<Arc<Callback>>) {
        // Only a node that something registered on can be linked or hold
        // callbacks; only a recorded one has a stage to end. One load.
        let state = self.state.load(Ordering::Acquire);
        if state & (AWAITED | RECORDED) != 0 {
            self.release_cold(state, due);
        }
    }

    #[inline(never)]
    fn release_cold(&mut self, state: u64, due: &mut Vec<Arc<Callback>>) {
        if state & RECORDED != 0 {
            extra::stage_dropped(self);
        }
        if state & AWAITED != 0 {
            self.release_awaited(due);
        }
    }

    fn release_awaited(&mut self, due: &mut Vec<Arc<Callback>>) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        let (link, entries) = {
            let mut list = lock(&shared.list);
            // A closed list was taken whole by the cancellation.
            let entries = if self.is_closed() {
                Slab::default()
            } else {
                mem::take(&mut list.entries)
            };
            (mem::take(&mut list.link), entries)
        };
        if let (Link::Linked(key), Some(parent)) = (link, &self.parent) {
            parent.deregister(key);
        }
        // Nothing but callbacks can be left: every waker's registration and
        // every linked child holds the node.
        for entry in entries.into_values() {
            if let Entry::Callback(callback) = entry {
                due.push(callback);
            }
        }
    }
}

impl WaitList {
    /// Claims the job of linking this node upward, once (invariant 4). A
    /// root has nothing to link into and stays unlinked.
    fn claim_link(&mut self, has_parent: bool) -> bool {
        if has_parent && self.link == Link::Unlinked {
            self.link = Link::Linking;
            true
        } else {
            false
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Invariant 11: callbacks on a node that is gone before it ended are
        // due now; they run once the chain below is released, unlocked.
        let mut due = Vec::new();
        self.release(&mut due);
        if due.is_empty() {
            // The usual drop: nothing of its own was due.
            release_parent(self.parent.take());
        } else {
            release_ancestors(self.parent.take(), &mut due);
        }
    }
}

/// Lets go of a parent reference. The usual case, a parent that others
/// still hold, is one decrement; releasing the last reference goes the
/// iterative way of [`release_ancestors`], kept out of line.
#[inline]
fn release_parent(parent: Option<Arc<Node>>) {
    if let Some(parent) = parent.and_then(Arc::into_inner) {
        release_last(parent);
    }
}

/// [`release_parent`] when the reference was the last one: the node goes as
/// a dropped node's parent chain goes.
#[inline(never)]
fn release_last(mut node: Node) {
    let mut due = Vec::new();
    node.release(&mut due);
    release_ancestors(node.parent.take(), &mut due);
}

/// Releases the chain of parents that only the dropped node kept alive, one
/// by one instead of through nested drops (invariant 7), and then runs the
/// callbacks that were still waiting on any of them, with those of the
/// dropped node in `due` (invariant 11).
#[inline(always)]
fn release_ancestors(mut parent: Option<Arc<Node>>, due: &mut Vec<Arc<Callback>>) {
    while let Some(node) = parent {
        parent = match Arc::into_inner(node) {
            Some(mut node) => {
                node.release(due);
                node.parent.take()
            }
            None => None,
        };
    }
    if !due.is_empty() {
        run_due(std::mem::take(due));
    }
}

/// Runs the callbacks of nodes dropped before they ended (invariant 11).
#[cold]
fn run_due(due: Vec<Arc<Callback>>) {
    let mut panics = Panics::default();
    for callback in due {
        panics.fire(&callback);
    }
    panics.resume();
}

/// Links `child` into its parent's wait list, and onward while each parent
/// was not linked yet (invariants 4 and 5).
fn link_upward(mut child: Arc<Node>) {
    loop {
        let Some(parent) = child.parent.clone() else {
            return;
        };
        let (key, link_parent) = {
            let mut list = lock(&parent.shared.get_or_default().list);
            if parent.is_closed() {
                drop(list);
                close_subtree(child, Panics::default());
                return;
            }
            let key = list.entries.insert(Entry::Child(Arc::downgrade(&child)));
            parent.mark_awaited();
            (key, list.claim_link(parent.parent.is_some()))
        };
        {
            let mut list = lock(&child.shared.get_or_default().list);
            if list.link == Link::Linking {
                list.link = Link::Linked(key);
            }
        }
        if !link_parent {
            return;
        }
        child = parent;
    }
}

/// Closes `start` and every node linked below it, waking what each held as
/// soon as its lock is released, and runs the callbacks once every node is
/// closed (invariants 3, 6 and 7).
///
/// Waking node by node rather than after the whole walk lets the woken tasks
/// start running on other threads while the walk goes on. Wakes and
/// callbacks are user code: a panic in one keeps none of the others from
/// running and leaves no node of the walk open; the first (of those and of
/// what the caller ran before, in `panics`) is resumed at the end (see
/// `callback.rs`).
fn close_subtree(start: Arc<Node>, mut panics: Panics) {
    // Neither vector allocates unless a node had linked children or
    // callbacks.
    let mut stack = Vec::new();
    let mut callbacks = Vec::new();
    let mut next = Some(start);
    while let Some(node) = next.take().or_else(|| stack.pop()) {
        let entries = {
            // Every node here was canceled or linked: its state exists.
            let mut list = lock(&node.shared.get_or_default().list);
            if node.is_closed() {
                continue;
            }
            node.state.fetch_or(CLOSED, Ordering::Release);
            mem::take(&mut list.entries)
        };
        for entry in entries.into_values() {
            match entry {
                Entry::Child(child) => stack.extend(child.upgrade()),
                Entry::Waker(waker) => panics.run(|| waker.wake()),
                Entry::Callback(callback) => callbacks.push(callback),
            }
        }
    }
    for callback in callbacks {
        panics.fire(&callback);
    }
    panics.resume();
}

#[cfg(all(test, tokio_ctx_loom))]
mod loom_tests;

#[cfg(all(test, not(tokio_ctx_loom)))]
mod tests;
