//! What only a few nodes carry: a deadline's cause, a movable deadline. It
//! lives in the lazily allocated `Shared`, set
//! at derivation and never replaced, so that a node without any of it (the
//! usual one) stays seven words and derives on the fast path.

use std::borrow::Cow;
use std::sync::Arc;

#[cfg(feature = "tracing")]
use tokio::time::Instant;

use super::{
    Cause, Deadline, Lazy, Meta, Node, Shared, FOLLOWS, HAS_DEADLINE, MOVABLE, OWN_DEADLINE,
};
use crate::loom::AtomicU64;

/// What a derivation asks for beyond a limit: a name, and the options
/// that cost something only when used, boxed so that the usual derivation
/// passes one word for them and tests it once.
#[derive(Debug, Default)]
pub(crate) struct Cold {
    pub(crate) name: Option<Cow<'static, str>>,
    rare: Option<Box<Rare>>,
}

/// The options few derivations ask for.
#[derive(Debug, Default)]
struct Rare {
    /// The cause its own deadline carries (Go's `WithDeadlineCause`).
    deadline_cause: Option<Cause>,
    /// Its own deadline can be moved (invariant 12).
    movable: bool,
}

impl Cold {
    /// Only a name, or nothing.
    #[inline]
    pub(crate) fn named(name: Option<Cow<'static, str>>) -> Cold {
        Cold { name, rare: None }
    }

    fn with(name: Option<Cow<'static, str>>, rare: Rare) -> Cold {
        Cold {
            name,
            rare: Some(Box::new(rare)),
        }
    }

    /// A name, and a cause for the node's own deadline.
    pub(crate) fn with_deadline_cause(name: Option<Cow<'static, str>>, cause: Cause) -> Cold {
        Cold::with(
            name,
            Rare {
                deadline_cause: Some(cause),
                ..Rare::default()
            },
        )
    }

    /// A name, and a deadline its handle can move.
    pub(crate) fn movable(name: Option<Cow<'static, str>>) -> Cold {
        Cold::with(
            name,
            Rare {
                movable: true,
                ..Rare::default()
            },
        )
    }
}

/// The cold part of a node's state.
#[derive(Debug, Default)]
pub(super) struct Extra {
    pub(super) deadline_cause: Option<Cause>,
    /// A `MOVABLE` node's own deadline, packed; its handle moves it
    /// (invariant 12).
    pub(super) own_deadline: Option<AtomicU64>,
}

/// Derives a node that needs its `Extra`: the slow path of `Node::derive`.
#[cold]
#[inline(never)]
pub(super) fn derive(
    parent: Option<&Arc<Node>>,
    requested: Deadline,
    mut deadline: Deadline,
    mut flags: u64,
    cold: Cold,
    meta: Meta,
) -> Arc<Node> {
    let Cold { name, rare } = cold;
    let Rare {
        deadline_cause,
        movable,
    } = rare.map_or_else(Rare::default, |rare| *rare);
    let mut own_deadline = None;
    if movable {
        // Invariant 12: the field keeps only what was inherited; the node's
        // own deadline moves in `Extra`, and it decides who owns an expiry.
        deadline = parent.map_or(Deadline::NONE, |p| p.deadline);
        own_deadline = Some(AtomicU64::new(requested.to_bits()));
        flags = (flags & !OWN_DEADLINE) | MOVABLE | FOLLOWS;
    }
    if flags & FOLLOWS != 0 {
        // A deadline may come or go with a move: the check must look.
        flags |= HAS_DEADLINE;
    }
    let node = Arc::new(Node {
        state: crate::loom::AtomicU64::new(flags),
        parent: parent.cloned(),
        deadline,
        meta,
        shared: Lazy::with(Shared {
            name,
            extra: Some(Box::new(Extra {
                deadline_cause,
                own_deadline,
            })),
            ..Shared::default()
        }),
    });
    #[cfg(feature = "tracing")]
    node.say_if_clipped(flags);
    node
}

/// Tells `tracing` that a derivation asked for more than was left above
/// it: both contexts, the budget asked for and the one granted.
#[cfg(feature = "tracing")]
#[cold]
#[inline(never)]
pub(super) fn clipped(parent: &Node, child: &Node, granted: Deadline) {
    if !tracing::enabled!(target: "tokio_ctx", tracing::Level::DEBUG) {
        return;
    }
    let now = Instant::now();
    let label = |node: &Node| match node.name() {
        Some(name) => name.into_owned(),
        None => crate::error::ShortLocation(node.meta.location).to_string(),
    };
    tracing::debug!(
        target: "tokio_ctx",
        context = %label(child),
        parent = %label(parent),
        asked = ?child.meta.budget(),
        granted = ?granted.get().map(|at| at.saturating_duration_since(now)),
        "context deadline clipped",
    );
}
