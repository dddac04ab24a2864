//! What only a few nodes carry: a deadline's cause, a movable deadline, a
//! stage of a budget report. It lives in the lazily allocated `Shared`, set
//! at derivation and never replaced, so that a node without any of it (the
//! usual one) stays seven words and derives on the fast path.

use std::borrow::Cow;
use std::sync::Arc;

use tokio::time::Instant;

use super::{
    Cause, Deadline, Lazy, Meta, Node, Shared, FOLLOWS, HAS_DEADLINE, MOVABLE, OWN_DEADLINE,
    RECORDED,
};
use crate::error::{Error, Reason, FINISHED};
use crate::loom::AtomicU64;
use crate::report::{Collector, Grant, Outcome, Recorder, StageKey, Start};

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
    /// Its own deadline can be moved (invariant 14).
    movable: bool,
    /// It is the root of a budget report: every node derived below it is
    /// a stage of `report`.
    report: Option<Arc<Collector>>,
    /// It is a stage under this one, though it has no parent to inherit
    /// `RECORDED` from (a cleanup's context is a new root).
    stage_under: Option<StageKey>,
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

    /// The root of the budget report `collector`.
    pub(crate) fn report(collector: Arc<Collector>) -> Cold {
        Cold::with(
            None,
            Rare {
                report: Some(collector),
                ..Rare::default()
            },
        )
    }

    /// A name, and a stage under `under`.
    pub(crate) fn stage_under(name: Option<Cow<'static, str>>, under: StageKey) -> Cold {
        Cold::with(
            name,
            Rare {
                stage_under: Some(under),
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
    /// (invariant 14).
    pub(super) own_deadline: Option<AtomicU64>,
    /// Where the node's stage is recorded, for a `RECORDED` node.
    pub(super) stage: Option<Recorder>,
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
        report,
        stage_under,
    } = rare.map_or_else(Rare::default, |rare| *rare);
    let mut own_deadline = None;
    if movable {
        // Invariant 14: the field keeps only what was inherited; the node's
        // own deadline moves in `Extra`, and it decides who owns an expiry.
        deadline = parent.map_or(Deadline::NONE, |p| p.deadline);
        own_deadline = Some(AtomicU64::new(requested.to_bits()));
        flags = (flags & !OWN_DEADLINE) | MOVABLE | FOLLOWS;
    }
    if flags & FOLLOWS != 0 {
        // A deadline may come or go with a move: the check must look.
        flags |= HAS_DEADLINE;
    }
    let under = stage_under.or_else(|| {
        if flags & RECORDED == 0 {
            return None;
        }
        parent
            .and_then(|p| p.stage())
            .map(|stage| stage.key.clone())
    });
    if report.is_some() || under.is_some() {
        flags |= RECORDED;
    } else {
        flags &= !RECORDED;
    }
    let node = Arc::new_cyclic(|weak| {
        let stage = match (report, under) {
            (Some(collector), _) => Some(Recorder::root(collector)),
            (None, Some(under)) => {
                let now = Instant::now();
                let above = parent
                    .map(|p| p.effective())
                    .and_then(Deadline::get)
                    .map(|d| d.saturating_duration_since(now));
                // What it asked for, unless less was left above: the clock
                // read here is a little later than the derivation's, and
                // must not make every step look clipped.
                let asked = meta.budget();
                let granted = match (asked, above) {
                    (Some(asked), Some(above)) => Some(asked.min(above)),
                    (asked, above) => asked.or(above),
                };
                Some(Collector::begin(
                    &under,
                    Start {
                        grant: Grant {
                            name: name.clone(),
                            location: meta.location,
                            asked,
                            granted,
                            remaining: above,
                        },
                        at: now,
                        node: weak.clone(),
                    },
                ))
            }
            (None, None) => None,
        };
        Node {
            state: crate::loom::AtomicU64::new(flags),
            parent: parent.cloned(),
            deadline,
            meta,
            shared: Lazy::with(Shared {
                name,
                extra: Some(Box::new(Extra {
                    deadline_cause,
                    own_deadline,
                    stage,
                })),
                ..Shared::default()
            }),
        }
    });
    #[cfg(feature = "tracing")]
    node.say_if_clipped(flags);
    node
}

impl Node {
    /// Where this node's stage is recorded, if it is below a report.
    pub(crate) fn stage(&self) -> Option<&Recorder> {
        if self.state.load(crate::loom::Ordering::Relaxed) & RECORDED == 0 {
            return None;
        }
        self.extra()?.stage.as_ref()
    }

    /// Tells this node's stage, if it is below a report, that its step
    /// was given up on for `reason`: a step dropped (`FINISHED`) while its
    /// context still runs was dropped before it finished, which the report
    /// says. Any other ending is the node's own, recorded when it goes.
    #[inline]
    pub(crate) fn note_given_up(&self, reason: &'static Reason) {
        if self.is_recorded() {
            self.note_given_up_cold(reason);
        }
    }

    #[cold]
    #[inline(never)]
    fn note_given_up_cold(&self, reason: &'static Reason) {
        if let Some(stage) = self.stage() {
            if std::ptr::eq(reason, &FINISHED) && !self.is_done() {
                stage.end(Instant::now(), Outcome::Dropped, None);
            }
        }
    }

    /// True if the node is below a budget report (`RECORDED`).
    #[inline]
    pub(crate) fn is_recorded(&self) -> bool {
        self.state.load(crate::loom::Ordering::Relaxed) & RECORDED != 0
    }

    /// How this node ended and when, as a stage: its ending if it has one,
    /// else completed now.
    pub(crate) fn stage_end(&self) -> (Outcome, Option<Error>, Instant) {
        let Some(ending) = self.ending() else {
            return (Outcome::Completed, None, Instant::now());
        };
        let at = ending.at(self);
        let err = Error::from_ending(self, ending);
        match Outcome::of(Some(&err)) {
            Outcome::Completed => (Outcome::Completed, None, at),
            outcome => (outcome, Some(err), at),
        }
    }
}

/// Records the end of a node's stage as the node goes (invariant 11's
/// drop, for a `RECORDED` node).
pub(super) fn stage_dropped(node: &Node) {
    if let Some(stage) = node.stage() {
        if !stage.is_root() {
            let (outcome, err, at) = node.stage_end();
            stage.end(at, outcome, err.as_ref());
        }
    }
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
