//! [`BudgetReport`]: where a request's budget went, stage by stage.
//!
//! A report is attached to a context with [`Context::with_budget_report`].
//! Every context derived below it after that (each step, branch, task and
//! per-item context) is a [`Stage`]: the report keeps its name, the budget
//! it asked for and the one it was granted, what was left of its parent
//! when it started, when it started, how long it took and how it ended.
//!
//! Collecting costs nothing where nothing collects: a context below a
//! report carries one flag bit, set at derivation from its parent's state
//! word, which the derivation loads anyway; everything else (the
//! collector, each stage's slot) lives in the lazily allocated state that
//! only recorded contexts get.

mod svg;
mod waterfall;

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::context::{Context, Limit};
use crate::core::{Cold, Node};
use crate::error::{Error, Reason, ShortLocation};
use crate::loom::lock_std;

/// How a stage ended, as the report tells it.
///
/// ```
/// use tokio_ctx::report::Outcome;
///
/// assert_eq!(Outcome::InheritedDeadline.to_string(), "inherited deadline");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Still running when the report was read.
    Running,
    /// The work completed (its future resolved, or its context was
    /// dropped without having ended).
    Completed,
    /// Its own limit fired.
    OwnDeadline,
    /// A deadline above it fired first: the caller's budget ran out.
    InheritedDeadline,
    /// Canceled, by a handle or by this crate; [`Stage::error`] has the
    /// cause.
    Canceled,
    /// Another branch won the race it was in.
    LostRace,
    /// Refused before it started: less than its
    /// [`min_budget`](Context::min_budget) was left.
    Refused,
    /// Its step was dropped before it finished (a `select!` that went the
    /// other way, a caller that gave up).
    Dropped,
}

impl Outcome {
    /// The outcome of a stage that ended with `err`, or completed without
    /// one.
    pub(crate) fn of(err: Option<&Error>) -> Outcome {
        let Some(err) = err else {
            return Outcome::Completed;
        };
        if err.is_insufficient_budget() {
            Outcome::Refused
        } else if err.is_deadline_exceeded() {
            if err.is_own() {
                Outcome::OwnDeadline
            } else {
                Outcome::InheritedDeadline
            }
        } else {
            match err.reason() {
                // Its work was done, or handed over to the cleanup it kept
                // time for: either way nothing went wrong with this stage.
                Some(Reason::Finished | Reason::CleanupStarted) => Outcome::Completed,
                Some(Reason::LostRace) => Outcome::LostRace,
                _ => Outcome::Canceled,
            }
        }
    }

    /// Short words for the waterfall and the picture.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Completed => "ok",
            Outcome::OwnDeadline => "own deadline",
            Outcome::InheritedDeadline => "inherited deadline",
            Outcome::Canceled => "canceled",
            Outcome::LostRace => "lost the race",
            Outcome::Refused => "refused",
            Outcome::Dropped => "dropped",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One recorded stage of a [`BudgetReport`].
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::report::Outcome;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (request, _) = Context::background().named("request").child_with_timeout(Duration::from_secs(3));
/// let (request, report) = request.with_budget_report();
/// tokio::time::advance(Duration::from_secs(2)).await;
/// request
///     .named("render")
///     .with_timeout(Duration::from_secs(5), |_ctx| tokio::time::sleep(Duration::from_millis(300)))
///     .await
///     .unwrap();
/// let stages = report.stages();
/// let render = &stages[0];
/// assert_eq!(render.name(), Some("render"));
/// assert_eq!(render.asked(), Some(Duration::from_secs(5)));
/// assert_eq!(render.granted(), Some(Duration::from_secs(1)), "clipped to what was left");
/// assert!(render.is_clipped());
/// assert_eq!(render.started(), Duration::from_secs(2));
/// assert_eq!(render.took(), Some(Duration::from_millis(300)));
/// assert_eq!(render.outcome(), Outcome::Completed);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Stage {
    grant: Grant,
    parent: Option<usize>,
    depth: usize,
    started: Duration,
    took: Option<Duration>,
    outcome: Outcome,
    error: Option<Error>,
}

impl Stage {
    /// The stage's name, given with [`Context::named`].
    ///
    /// ```
    /// # use tokio_ctx::Context;
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (_step, _) = ctx.named("parse").child();
    /// assert_eq!(report.stages()[0].name(), Some("parse"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.grant.name.as_deref()
    }

    /// Where the stage's context was derived.
    ///
    /// ```
    /// # use tokio_ctx::Context;
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (_step, _) = ctx.child();
    /// assert_eq!(report.stages()[0].location().line(), line!() - 1);
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.grant.location
    }

    /// Its name, or else where it was derived (`src/db.rs:42`): what the
    /// waterfall and the picture print.
    ///
    /// ```
    /// # use tokio_ctx::Context;
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (_step, _) = ctx.child();
    /// assert!(report.stages()[0].label().starts_with("src/"));
    /// ```
    pub fn label(&self) -> String {
        self.grant.label()
    }

    /// The index, in [`BudgetReport::stages`], of the recorded stage it was
    /// derived under; `None` directly under the report's context.
    ///
    /// ```
    /// # use tokio_ctx::Context;
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (outer, _) = ctx.named("outer").child();
    /// let (_inner, _) = outer.named("inner").child();
    /// let stages = report.stages();
    /// assert_eq!((stages[0].parent(), stages[1].parent()), (None, Some(0)));
    /// ```
    pub fn parent(&self) -> Option<usize> {
        self.parent
    }

    /// How many recorded stages it is nested in: 0 directly under the
    /// report's context.
    ///
    /// ```
    /// # use tokio_ctx::Context;
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (outer, _) = ctx.child();
    /// let (_inner, _) = outer.child();
    /// assert_eq!(report.stages()[1].depth(), 1);
    /// ```
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The limit the stage asked for (a timeout, or the time to the
    /// deadline it asked for); `None` when it asked for none.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio_ctx::Context;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (_step, _) = ctx.child_with_timeout(Duration::from_secs(2));
    /// assert_eq!(report.stages()[0].asked(), Some(Duration::from_secs(2)));
    /// # }
    /// ```
    pub fn asked(&self) -> Option<Duration> {
        self.grant.asked
    }

    /// The budget it was granted when it started: the time to its effective
    /// deadline, the smaller of what it asked for and what was left above
    /// it. `None` when it had no deadline at all.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio_ctx::Context;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let (request, report) = request.with_budget_report();
    /// let (_step, _) = request.child_with_timeout(Duration::from_secs(2));
    /// assert_eq!(report.stages()[0].granted(), Some(Duration::from_secs(1)));
    /// # }
    /// ```
    pub fn granted(&self) -> Option<Duration> {
        self.grant.granted
    }

    /// What was left of its parent's budget when it started; `None` when
    /// the parent had no deadline.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio_ctx::Context;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let (request, report) = request.with_budget_report();
    /// let (_step, _) = request.child_with_timeout(Duration::from_millis(10));
    /// assert_eq!(report.stages()[0].remaining_at_start(), Some(Duration::from_secs(1)));
    /// # }
    /// ```
    pub fn remaining_at_start(&self) -> Option<Duration> {
        self.grant.remaining
    }

    /// True when a budget above clipped what the stage asked for: it was
    /// granted less than it asked.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio_ctx::Context;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let (request, report) = request.with_budget_report();
    /// let (_clipped, _) = request.child_with_timeout(Duration::from_secs(2));
    /// let (_within, _) = request.child_with_timeout(Duration::from_millis(10));
    /// let stages = report.stages();
    /// assert!(stages[0].is_clipped() && !stages[1].is_clipped());
    /// # }
    /// ```
    pub fn is_clipped(&self) -> bool {
        match (self.grant.asked, self.grant.granted) {
            (Some(asked), Some(granted)) => granted < asked,
            _ => false,
        }
    }

    /// When it started, after the report was attached.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio_ctx::Context;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, report) = Context::background().with_budget_report();
    /// tokio::time::advance(Duration::from_millis(7)).await;
    /// let (_step, _) = ctx.child();
    /// assert_eq!(report.stages()[0].started(), Duration::from_millis(7));
    /// # }
    /// ```
    pub fn started(&self) -> Duration {
        self.started
    }

    /// How long it took, from its start to its end; `None` while running.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio_ctx::Context;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (step, cancel) = ctx.child();
    /// assert_eq!(report.stages()[0].took(), None);
    /// tokio::time::advance(Duration::from_millis(4)).await;
    /// cancel.cancel();
    /// assert_eq!(report.stages()[0].took(), Some(Duration::from_millis(4)));
    /// # drop(step);
    /// # }
    /// ```
    pub fn took(&self) -> Option<Duration> {
        self.took
    }

    /// How it ended.
    ///
    /// ```
    /// # use tokio_ctx::report::Outcome;
    /// # use tokio_ctx::Context;
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (step, cancel) = ctx.child();
    /// cancel.cancel_with("no longer needed");
    /// assert_eq!(report.stages()[0].outcome(), Outcome::Canceled);
    /// # drop(step);
    /// ```
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The error it ended with: the cause of a cancellation, which context's
    /// deadline fired, the refusal. `None` while running and for a stage
    /// that completed.
    ///
    /// ```
    /// # use tokio_ctx::Context;
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (step, cancel) = ctx.child();
    /// cancel.cancel_with("no longer needed");
    /// assert!(report.stages()[0].error().unwrap().cause_is("no longer needed"));
    /// # drop(step);
    /// ```
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Where the stage ends on the report's timeline: its end, or `now`
    /// while it runs.
    fn end_at(&self, now: Duration) -> Duration {
        match self.took {
            Some(took) => self.started + took,
            None => now.max(self.started),
        }
    }
}

/// What a caller collects about one request: every stage derived below the
/// context it was attached to, in the order they started. Made by
/// [`Context::with_budget_report`].
///
/// Read it at any time (a running stage shows as [`Outcome::Running`]),
/// print it as a text waterfall ([`waterfall`](Self::waterfall), also its
/// `Display`), or draw it as one self-contained SVG picture
/// ([`svg`](Self::svg)). Clones share the same collection.
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::report::Outcome;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (request, _) = Context::background().named("request").child_with_timeout(Duration::from_secs(1));
/// let (request, report) = request.with_budget_report();
/// request.named("lookup").with_timeout(Duration::from_millis(50), |_ctx| async {}).await.unwrap();
/// let slow = request
///     .named("render")
///     .with_timeout(Duration::from_millis(20), |_ctx| tokio::time::sleep(Duration::from_secs(1)))
///     .await;
/// assert!(slow.unwrap_err().is_own());
///
/// let outcomes: Vec<_> = report.stages().iter().map(|s| s.outcome()).collect();
/// assert_eq!(outcomes, [Outcome::Completed, Outcome::OwnDeadline]);
/// let text = report.waterfall();
/// assert!(text.contains("render") && text.contains("own deadline"));
/// assert!(report.svg().starts_with("<svg"));
/// # }
/// ```
#[derive(Clone)]
pub struct BudgetReport {
    collector: Arc<Collector>,
}

/// **Where the budget went.** [`with_budget_report`](Context::with_budget_report).
impl Context {
    /// A context that records, in the returned [`BudgetReport`], every
    /// context derived below it: each step's name, the budget it asked for
    /// and was granted, what was left when it started, how long it took
    /// and how it ended.
    ///
    /// The returned context is a child of this one with no limit of its
    /// own and nothing to cancel it but its ancestors; the report's
    /// timeline starts now, and its budget is this context's deadline. With
    /// the `tracing` feature, each recorded stage is also a span (target
    /// `tokio_ctx`, name `stage`, at debug level) whose fields (`name`,
    /// `asked`, `granted`, `remaining`, and at the end `took` and
    /// `outcome`) say the same; it is not entered, so it shows what each
    /// stage was given rather than grouping events.
    ///
    /// Nothing is recorded elsewhere: contexts that are not below a report
    /// pay one flag bit that they test at derivation and drop.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().named("request").child_with_timeout(Duration::from_secs(1));
    /// let (request, report) = request.with_budget_report();
    /// request.named("fetch").with_timeout(Duration::from_secs(5), |_ctx| async {}).await.unwrap();
    /// assert_eq!(report.name(), Some("request"));
    /// assert_eq!(report.budget(), Some(Duration::from_secs(1)));
    /// assert_eq!(report.stages()[0].granted(), Some(Duration::from_secs(1)));
    /// # }
    /// ```
    #[track_caller]
    pub fn with_budget_report(&self) -> (Context, BudgetReport) {
        let now = Instant::now();
        let collector = Arc::new(Collector {
            name: self.node().and_then(|node| node.name()),
            started: now,
            budget: self
                .deadline()
                .map(|deadline| deadline.saturating_duration_since(now)),
            stages: Mutex::new(Vec::new()),
        });
        let cold = Cold::report(Arc::clone(&collector));
        // Nothing but its ancestors ends it: without a handle, its waiters
        // wait where theirs do.
        let (ctx, handle) = self.derive_with(cold, Limit::None, Location::caller());
        drop(handle);
        (ctx, BudgetReport { collector })
    }
}

impl BudgetReport {
    /// The name of the context the report was attached to, if it has one.
    ///
    /// ```
    /// # use tokio_ctx::Context;
    /// let (request, _) = Context::background().named("GET /orders").child();
    /// let (_request, report) = request.with_budget_report();
    /// assert_eq!(report.name(), Some("GET /orders"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.collector.name.as_deref()
    }

    /// What was left of the budget when the report was attached: the
    /// request's deadline on the report's timeline. `None` without a
    /// deadline.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio_ctx::Context;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(3));
    /// let (_request, report) = request.with_budget_report();
    /// assert_eq!(report.budget(), Some(Duration::from_secs(3)));
    /// # }
    /// ```
    pub fn budget(&self) -> Option<Duration> {
        self.collector.budget
    }

    /// How long ago the report was attached: the timeline so far.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio_ctx::Context;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (_request, report) = Context::background().with_budget_report();
    /// tokio::time::advance(Duration::from_millis(12)).await;
    /// assert_eq!(report.elapsed(), Duration::from_millis(12));
    /// # }
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.collector.started.elapsed()
    }

    /// Every stage recorded so far, in the order they started.
    ///
    /// ```
    /// # use tokio_ctx::Context;
    /// let (ctx, report) = Context::background().with_budget_report();
    /// assert!(report.stages().is_empty());
    /// let (_a, _) = ctx.named("a").child();
    /// let (_b, _) = ctx.named("b").child();
    /// let names: Vec<_> = report.stages().iter().map(|s| s.label()).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn stages(&self) -> Vec<Stage> {
        // A stage whose context is alive may still have ended (canceled
        // from above, its deadline passed): ask its node, outside the lock,
        // since a node let go here may record its own end.
        let (mut stages, alive) = {
            let slots = lock_std(&self.collector.stages);
            let alive: Vec<(usize, Arc<Node>)> = slots
                .iter()
                .enumerate()
                .filter_map(|(index, slot)| Some((index, slot.node.as_ref()?.upgrade()?)))
                .collect();
            let stages: Vec<Stage> = slots
                .iter()
                .map(|slot| self.collector.stage(slot))
                .collect();
            (stages, alive)
        };
        for (index, node) in alive {
            if !node.is_done() {
                continue;
            }
            let (outcome, error, at) = node.stage_end();
            if let Some(stage) = stages.get_mut(index) {
                if stage.took.is_none() {
                    let started = self.collector.started + stage.started;
                    stage.took = Some(at.saturating_duration_since(started));
                    stage.outcome = outcome;
                    stage.error = error;
                }
            }
        }
        stages
    }

    /// The report as a text waterfall: a line per stage, indented under the
    /// stage it was derived in, with its budget, the time it took, its
    /// outcome, and a bar on the request's timeline (`#` the time used,
    /// `-` the rest of the budget granted, `|` the request's deadline).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tokio_ctx::Context;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().named("request").child_with_timeout(Duration::from_secs(1));
    /// let (request, report) = request.with_budget_report();
    /// request.named("query").with_timeout(Duration::from_millis(400), |_ctx| {
    ///     tokio::time::sleep(Duration::from_millis(100))
    /// }).await.unwrap();
    /// let text = report.waterfall();
    /// let query = text.lines().find(|l| l.starts_with("query")).unwrap();
    /// assert!(query.contains("400ms") && query.contains("100ms") && query.contains("ok"));
    /// # }
    /// ```
    pub fn waterfall(&self) -> String {
        waterfall::render(&self.snapshot())
    }

    /// The report as one self-contained SVG picture: a bar per stage on the
    /// request's timeline, the request's deadline as a line, each bar
    /// coloured by its outcome, and the budget a clipped stage asked for
    /// drawn faintly behind the one it was granted.
    ///
    /// ```
    /// # use tokio_ctx::Context;
    /// let (ctx, report) = Context::background().with_budget_report();
    /// let (_step, _) = ctx.named("step").child();
    /// let svg = report.svg();
    /// assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    /// assert!(svg.contains(">step</text>"));
    /// ```
    pub fn svg(&self) -> String {
        svg::render(&self.snapshot())
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            name: self.collector.name.clone(),
            budget: self.collector.budget,
            now: self.elapsed(),
            stages: self.stages(),
        }
    }
}

impl fmt::Display for BudgetReport {
    /// The [`waterfall`](Self::waterfall).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.waterfall())
    }
}

impl fmt::Debug for BudgetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetReport")
            .field("name", &self.collector.name)
            .field("budget", &self.collector.budget)
            .field("stages", &lock_std(&self.collector.stages).len())
            .finish()
    }
}

/// A report as read at one moment: what the renderers draw.
#[derive(Debug)]
struct Snapshot {
    name: Option<Cow<'static, str>>,
    budget: Option<Duration>,
    /// When it was read, on the report's timeline.
    now: Duration,
    stages: Vec<Stage>,
}

impl Snapshot {
    /// How far the timeline must reach: the deadline, or the last end.
    fn span(&self) -> Duration {
        let last = self
            .stages
            .iter()
            .map(|stage| stage.end_at(self.now))
            .max()
            .unwrap_or_default();
        self.budget.unwrap_or_default().max(last)
    }
}

/// Where the stages of one report are recorded; shared by the report and
/// the contexts below it.
pub(crate) struct Collector {
    name: Option<Cow<'static, str>>,
    started: Instant,
    budget: Option<Duration>,
    /// Bookkeeping only under this lock: errors are cloned in and out, and
    /// dropped with the collector, never while it is held.
    stages: Mutex<Vec<Slot>>,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a stage was given when it began: the same for the stage being
/// recorded ([`Start`], [`Slot`]) and the one read back ([`Stage`]).
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) asked: Option<Duration>,
    pub(crate) granted: Option<Duration>,
    pub(crate) remaining: Option<Duration>,
}

impl Grant {
    /// The name, or the call site when it has none.
    fn label(&self) -> String {
        match &self.name {
            Some(name) => name.to_string(),
            None => ShortLocation(self.location).to_string(),
        }
    }
}

/// A stage as recorded.
#[derive(Debug)]
struct Slot {
    /// Its context, until it ends or goes: one that ended while alive is
    /// asked when the report is read.
    node: Option<Weak<Node>>,
    grant: Grant,
    parent: Option<usize>,
    depth: usize,
    started: Instant,
    ended: Option<(Instant, Outcome, Option<Error>)>,
}

/// Where a stage is recorded: a report and a slot in it.
#[derive(Debug, Clone)]
pub(crate) struct StageKey {
    collector: Arc<Collector>,
    /// Its slot; `None` for the report's own context, which is no stage.
    index: Option<usize>,
    depth: usize,
}

/// What a context below a report keeps of its stage: where it is
/// recorded and, with `tracing`, its span.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) key: StageKey,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl Recorder {
    /// The report's own context: the stages below it are recorded, not it.
    pub(crate) fn root(collector: Arc<Collector>) -> Recorder {
        Recorder {
            key: StageKey {
                collector,
                index: None,
                depth: 0,
            },
            #[cfg(feature = "tracing")]
            span: tracing::Span::none(),
        }
    }

    /// True for the report's own context.
    pub(crate) fn is_root(&self) -> bool {
        self.key.index.is_none()
    }

    /// Records how the stage ended, unless it already has: the first
    /// ending recorded is the one that counts.
    pub(crate) fn end(&self, at: Instant, outcome: Outcome, err: Option<&Error>) {
        let Some(index) = self.key.index else {
            return;
        };
        let (took, node) = {
            let mut slots = lock_std(&self.key.collector.stages);
            let Some(slot) = slots.get_mut(index) else {
                return;
            };
            if slot.ended.is_some() {
                return;
            }
            slot.ended = Some((at, outcome, err.cloned()));
            (at.saturating_duration_since(slot.started), slot.node.take())
        };
        // A weak reference frees nothing of the user's, but is let go
        // unlocked all the same.
        drop(node);
        #[cfg(feature = "tracing")]
        {
            self.span.record("took", tracing::field::debug(took));
            self.span
                .record("outcome", tracing::field::display(outcome.label()));
        }
        #[cfg(not(feature = "tracing"))]
        let _ = took;
    }
}

/// What a stage is when it starts.
#[derive(Debug)]
pub(crate) struct Start {
    pub(crate) grant: Grant,
    pub(crate) at: Instant,
    pub(crate) node: Weak<Node>,
}

impl Collector {
    /// Records a stage starting under `parent` (the parent's key).
    pub(crate) fn begin(parent: &StageKey, start: Start) -> Recorder {
        let collector = Arc::clone(&parent.collector);
        let depth = if parent.index.is_some() {
            parent.depth + 1
        } else {
            0
        };
        #[cfg(feature = "tracing")]
        let span = tracing::debug_span!(
            target: "tokio_ctx",
            "stage",
            name = %start.grant.label(),
            asked = ?start.grant.asked,
            granted = ?start.grant.granted,
            remaining = ?start.grant.remaining,
            took = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let index = {
            let mut slots = lock_std(&collector.stages);
            slots.push(Slot {
                node: Some(start.node),
                grant: start.grant,
                parent: parent.index,
                depth,
                started: start.at,
                ended: None,
            });
            slots.len() - 1
        };
        Recorder {
            key: StageKey {
                collector,
                index: Some(index),
                depth,
            },
            #[cfg(feature = "tracing")]
            span,
        }
    }

    /// Records a refused stage: it started and ended at once.
    fn refused(parent: &StageKey, err: &Error, at: Instant) {
        let stage = Collector::begin(
            parent,
            Start {
                grant: Grant {
                    name: err.context_name().map(|name| Cow::Owned(name.to_owned())),
                    location: err.location(),
                    asked: err.budget(),
                    granted: err.remaining(),
                    remaining: err.remaining(),
                },
                at,
                node: Weak::new(),
            },
        );
        stage.end(at, Outcome::Refused, Some(err));
    }

    fn stage(&self, slot: &Slot) -> Stage {
        let (took, outcome, error) = match &slot.ended {
            Some((at, outcome, error)) => (
                Some(at.saturating_duration_since(slot.started)),
                *outcome,
                error.clone(),
            ),
            None => (None, Outcome::Running, None),
        };
        Stage {
            grant: slot.grant.clone(),
            parent: slot.parent,
            depth: slot.depth,
            started: slot.started.saturating_duration_since(self.started),
            took,
            outcome,
            error,
        }
    }
}

/// Records a step of `parent` refused by `min_budget`, if `parent` is
/// below a report.
pub(crate) fn refused(parent: &Context, err: &Error) {
    if let Some(stage) = parent.node().and_then(|node| node.stage()) {
        Collector::refused(&stage.key, err, Instant::now());
    }
}

/// Where a cleanup run from `ctx` records its stage: under `ctx`'s, though
/// the cleanup's context is a new root.
pub(crate) fn under(ctx: &Context) -> Option<StageKey> {
    Some(ctx.node()?.stage()?.key.clone())
}
