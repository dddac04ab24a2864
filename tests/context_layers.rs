//! Random layered trees of contexts checked against a reference model, in
//! the spirit of Go's `TestLayersCancel` and `TestLayersTimeout`.
//!
//! Each seed builds a tree by random derivations (cancellable children with
//! and without names, timeouts and deadlines including zero, past,
//! `Duration::MAX` and far-future ones, values, `without_cancel`, and steps
//! run by `with_timeout` / `with_deadline`), interleaved with cancels (with
//! and without causes), dropped handles, contexts and steps, waiters and
//! advances of the paused clock. After every operation, every live context
//! is compared with a model a few lines long: `is_done`, `err()` (kind,
//! cause, `is_own`, the name and budget of the context named), `deadline()`,
//! `remaining()` and values; every waiter and step whose context the model
//! says has ended must have been woken and must report the same error.
//!
//! The seeds are fixed, so a failure replays: it prints its seed and the
//! operations that led to it. `TOKIO_CTX_SEED=n` runs one seed,
//! `TOKIO_CTX_SEEDS=n` changes how many run.
//!
//! The multi-threaded tests below (Go's `TestSimultaneousCancels` and
//! `TestInterlockedCancels`) cannot predict which of two racing cancels
//! wins, so they check what must hold whichever does, and bound every wait
//! with a timeout so that a lost wakeup fails instead of hanging.

use std::future::{pending, Pending};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::future::{DoneOwned, Timeout};
use tokio_ctx::{CancelHandle, Context, Error};
use tokio_test::task::{self, Spawn};

mod common;
use common::Rng;

const MS: Duration = Duration::from_millis(1);

/// Taken by every test here: cancellations in one test move the global
/// epoch under another, which would hide the window the last test looks
/// for (defect 1), and the threaded tests want the cores to themselves.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
const HOUR: Duration = Duration::from_secs(3600);
/// Far enough ahead that no deadline is stored (see `Context::child_with_timeout`).
const MILLENNIUM: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);
/// The cause a step leaves on its child when it is dropped.
const FINISHED: &str = "the operation it was derived for finished";

// ---------------------------------------------------------------------------
// The reference model.

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Canceled(Option<String>),
    DeadlineExceeded,
}

/// How a context ended, according to the model.
#[derive(Debug, Clone)]
struct Ending {
    kind: Kind,
    /// The model node whose cancellation or deadline it was.
    by: usize,
    own: bool,
}

#[derive(Debug)]
struct ModelNode {
    parent: Option<usize>,
    /// The effective deadline: the earlier of the parent's and the one
    /// asked for.
    deadline: Option<Instant>,
    /// The deadline asked for is strictly earlier than the parent's.
    own_deadline: bool,
    name: Option<String>,
    budget: Option<Duration>,
    /// When it was canceled while not yet ended, and with what cause.
    record: Option<(Instant, Option<String>)>,
    /// Derived under a parent that had already ended: it takes that end.
    born_ended: Option<Ending>,
}

#[derive(Debug, Default)]
struct Model {
    nodes: Vec<ModelNode>,
}

impl Model {
    /// The rules, in full:
    ///
    /// - a context derived under an ended parent is born ended with the
    ///   parent's error, never its own;
    /// - otherwise the earliest end along its chain wins: a cancellation of
    ///   it or an ancestor, or its effective deadline; at the same instant
    ///   a deadline counts first (a cancel at the deadline changes nothing);
    /// - a deadline is named after the nearest context whose own deadline
    ///   it is; an equal deadline asked for below does not count as own.
    fn ending(&self, n: usize, now: Instant) -> Option<Ending> {
        let node = &self.nodes[n];
        if let Some(born) = &node.born_ended {
            return Some(Ending {
                own: false,
                ..born.clone()
            });
        }
        let record = std::iter::successors(Some(n), |&c| self.nodes[c].parent)
            .find_map(|c| self.nodes[c].record.as_ref().map(|r| (c, r)));
        let expired_by = |t: Instant| node.deadline.is_some_and(|d| d <= t);
        match record {
            Some((by, (at, cause))) if !expired_by(*at) => Some(Ending {
                kind: Kind::Canceled(cause.clone()),
                by,
                own: by == n,
            }),
            _ if expired_by(now) => {
                let by = std::iter::successors(Some(n), |&c| self.nodes[c].parent)
                    .find(|&c| self.nodes[c].own_deadline)
                    .expect("an effective deadline was asked for somewhere");
                Some(Ending {
                    kind: Kind::DeadlineExceeded,
                    by,
                    own: by == n,
                })
            }
            _ => None,
        }
    }

    fn derive(
        &mut self,
        parent: Option<usize>,
        requested: Option<Instant>,
        budget: Option<Duration>,
        name: Option<String>,
        now: Instant,
    ) -> usize {
        let inherited = parent.and_then(|p| self.nodes[p].deadline);
        let (deadline, own_deadline) = match (inherited, requested) {
            (Some(i), Some(r)) if r < i => (Some(r), true),
            (Some(i), _) => (Some(i), false),
            (None, Some(r)) => (Some(r), true),
            (None, None) => (None, false),
        };
        let born_ended = parent.and_then(|p| self.ending(p, now));
        self.nodes.push(ModelNode {
            parent,
            deadline,
            own_deadline,
            name,
            budget,
            record: None,
            born_ended,
        });
        self.nodes.len() - 1
    }

    /// A cancel records only on a context that has not ended.
    fn cancel(&mut self, n: usize, cause: Option<String>, now: Instant) {
        if self.ending(n, now).is_none() {
            self.nodes[n].record = Some((now, cause));
        }
    }
}

/// The budget an error reports: what was asked, saturated as stored.
fn budget_of(asked: Duration) -> Duration {
    if asked.as_nanos() >= u128::from(u64::MAX - 1) {
        Duration::MAX
    } else {
        asked
    }
}

/// The deadline a request stores: none when too far ahead to represent.
fn stored(at: Option<Instant>, now: Instant) -> Option<Instant> {
    at.filter(|at| at.saturating_duration_since(now) < 200 * 365 * 24 * HOUR)
}

// ---------------------------------------------------------------------------
// The real thing, and the comparison.

struct V0(u64);
struct V1(u64);
struct V2(u64);

fn with_value(ctx: &Context, slot: usize, value: u64) -> Context {
    match slot {
        0 => ctx.with_value(V0(value)),
        1 => ctx.with_value(V1(value)),
        _ => ctx.with_value(V2(value)),
    }
}

fn values(ctx: &Context) -> [Option<u64>; 3] {
    [
        ctx.value::<V0>().map(|v| v.0),
        ctx.value::<V1>().map(|v| v.0),
        ctx.value::<V2>().map(|v| v.0),
    ]
}

#[derive(Clone)]
struct Live {
    ctx: Context,
    node: Option<usize>,
    values: [Option<u64>; 3],
}

struct Handle {
    handle: CancelHandle,
    node: usize,
}

struct Step {
    task: Spawn<Timeout<Pending<()>>>,
    node: usize,
    polled: bool,
}

struct Waiter {
    task: Spawn<DoneOwned>,
    node: usize,
    polled: bool,
}

/// Prints the seed and the operations so far if the test panics.
struct Replay {
    seed: u64,
    log: Vec<String>,
}

impl Drop for Replay {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "failed with seed {}; replay: TOKIO_CTX_SEED={} cargo test --test context_layers \
                 random_layers\noperations:\n  {}",
                self.seed,
                self.seed,
                self.log.join("\n  ")
            );
        }
    }
}

/// Prints the seed of a threaded test if it panics: the tree it built
/// replays, the threads' interleaving does not.
struct Seed(u64);

impl Drop for Seed {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "failed with seed {} (of the tree; threads interleave anew)",
                self.0
            );
        }
    }
}

/// The runtime of the threaded tests: two workers, as on CI.
fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn assert_matches(err: &Error, expected: &Ending, model: &Model, what: &str) {
    let by = &model.nodes[expected.by];
    match &expected.kind {
        Kind::Canceled(cause) => {
            assert!(err.is_canceled(), "{what}: {err:?}, expected {expected:?}");
            let got = err.cause().map(|c| c.to_string());
            assert_eq!(&got, cause, "{what}: cause of {err:?}");
        }
        Kind::DeadlineExceeded => {
            assert!(
                err.is_deadline_exceeded(),
                "{what}: {err:?}, expected {expected:?}"
            );
            assert!(err.cause().is_none(), "{what}: {err:?}");
        }
    }
    assert_eq!(err.is_own(), expected.own, "{what}: is_own of {err:?}");
    assert_eq!(
        err.context_name(),
        by.name.as_deref(),
        "{what}: the context named by {err:?}, expected node {}",
        expected.by
    );
    assert_eq!(err.budget(), by.budget, "{what}: budget of {err:?}");
    assert!(err.location().file().ends_with("context_layers.rs"));
}

struct World {
    model: Model,
    lives: Vec<Live>,
    handles: Vec<Handle>,
    steps: Vec<Step>,
    waiters: Vec<Waiter>,
    rng: Rng,
    replay: Replay,
}

impl World {
    fn name(&mut self) -> Option<String> {
        self.rng
            .chance(50)
            .then(|| format!("n{}", self.model.nodes.len()))
    }

    fn pick_parent(&mut self) -> Live {
        match self.rng.below(self.lives.len() + 1) {
            i if i == self.lives.len() => Live {
                ctx: Context::background(),
                node: None,
                values: [None; 3],
            },
            i => self.lives[i].clone(),
        }
    }

    fn timeout(&mut self) -> Duration {
        self.rng.pick(&[
            Duration::ZERO,
            MS,
            2 * MS,
            5 * MS,
            10 * MS,
            30 * MS,
            HOUR,
            MILLENNIUM,
            Duration::MAX,
        ])
    }

    fn deadline(&mut self, now: Instant) -> Instant {
        match self.rng.below(7) {
            0 => now - 5 * MS,
            1 => now,
            2 => now + MS,
            3 => now + 3 * MS,
            4 => now + 10 * MS,
            5 => now + 40 * MS,
            _ => now + MILLENNIUM,
        }
    }

    /// Derives a context of a random kind from a random live one.
    fn derive(&mut self) {
        let parent = self.pick_parent();
        let now = Instant::now();
        let name = self.name();
        let (ctx, requested, budget, handle, step, what) = match self.rng.below(8) {
            0 | 1 => {
                let (ctx, handle) = match &name {
                    Some(name) => parent.ctx.named(name.clone()).child(),
                    None => parent.ctx.child(),
                };
                (ctx, None, None, Some(handle), None, "child".to_owned())
            }
            2 => {
                let timeout = self.timeout();
                let (ctx, handle) = match &name {
                    Some(name) => parent.ctx.named(name.clone()).child_with_timeout(timeout),
                    None => parent.ctx.child_with_timeout(timeout),
                };
                let requested = now.checked_add(timeout);
                let what = format!("child_with_timeout({timeout:?})");
                (
                    ctx,
                    requested,
                    Some(budget_of(timeout)),
                    Some(handle),
                    None,
                    what,
                )
            }
            3 => {
                let at = self.deadline(now);
                let (ctx, handle) = match &name {
                    Some(name) => parent.ctx.named(name.clone()).child_with_deadline(at),
                    None => parent.ctx.child_with_deadline(at),
                };
                let budget = budget_of(at.saturating_duration_since(now));
                let what = format!(
                    "child_with_deadline(now + {:?})",
                    at.checked_duration_since(now)
                );
                (ctx, Some(at), Some(budget), Some(handle), None, what)
            }
            4 => {
                let (slot, value) = (self.rng.below(3), self.rng.next() % 1000);
                let ctx = with_value(&parent.ctx, slot, value);
                let mut values = parent.values;
                values[slot] = Some(value);
                self.lives.push(Live {
                    ctx,
                    node: parent.node,
                    values,
                });
                self.log(format!(
                    "with_value(slot {slot} = {value}) of {:?}",
                    parent.node
                ));
                return;
            }
            5 => {
                self.lives.push(Live {
                    ctx: parent.ctx.without_cancel(),
                    node: None,
                    values: parent.values,
                });
                self.log(format!("without_cancel of {:?}", parent.node));
                return;
            }
            kind => {
                let mut child = None;
                let capture = |ctx: Context| {
                    child = Some(ctx);
                    pending::<()>()
                };
                let (step, requested, budget, what) = if kind == 6 {
                    let timeout = self.timeout();
                    let step = match &name {
                        Some(name) => parent
                            .ctx
                            .named(name.clone())
                            .with_timeout(timeout, capture),
                        None => parent.ctx.with_timeout(timeout, capture),
                    };
                    let what = format!("with_timeout({timeout:?})");
                    (step, now.checked_add(timeout), budget_of(timeout), what)
                } else {
                    let at = self.deadline(now);
                    let step = match &name {
                        Some(name) => parent.ctx.named(name.clone()).with_deadline(at, capture),
                        None => parent.ctx.with_deadline(at, capture),
                    };
                    let budget = budget_of(at.saturating_duration_since(now));
                    let what = format!("with_deadline(now + {:?})", at.checked_duration_since(now));
                    (step, Some(at), budget, what)
                };
                let ctx = child.expect("the step's closure runs at once");
                (ctx, requested, Some(budget), None, Some(step), what)
            }
        };
        let index = self.model.derive(
            parent.node,
            stored(requested, now),
            budget,
            name.clone(),
            now,
        );
        self.log(format!(
            "n{index} = {what} of {:?}{}",
            parent.node,
            if name.is_some() { ", named" } else { "" }
        ));
        self.lives.push(Live {
            ctx,
            node: Some(index),
            values: parent.values,
        });
        if let Some(handle) = handle {
            self.handles.push(Handle {
                handle,
                node: index,
            });
        }
        if let Some(step) = step {
            self.steps.push(Step {
                task: task::spawn(step),
                node: index,
                polled: false,
            });
        }
    }

    fn log(&mut self, op: String) {
        self.replay.log.push(op);
    }

    async fn step(&mut self) {
        let roll = self.rng.below(100);
        let crowded = self.lives.len() > 40;
        match roll {
            _ if crowded && roll < 30 => {
                let i = self.rng.below(self.lives.len());
                let gone = self.lives.swap_remove(i);
                self.log(format!("drop a context of {:?}", gone.node));
            }
            0..=34 => self.derive(),
            35..=49 if !self.handles.is_empty() => {
                let i = self.rng.below(self.handles.len());
                let node = self.handles[i].node;
                let cause = self
                    .rng
                    .chance(60)
                    .then(|| format!("cause {}", self.replay.log.len()));
                match &cause {
                    Some(cause) => self.handles[i].handle.cancel_with(cause.clone()),
                    None => self.handles[i].handle.cancel(),
                }
                self.model.cancel(node, cause.clone(), Instant::now());
                self.log(format!("cancel n{node} with {cause:?}"));
            }
            50..=57 if !self.handles.is_empty() => {
                let i = self.rng.below(self.handles.len());
                let gone = self.handles.swap_remove(i);
                self.log(format!("drop the handle of n{}", gone.node));
            }
            58..=63 if !self.lives.is_empty() => {
                let i = self.rng.below(self.lives.len());
                let gone = self.lives.swap_remove(i);
                self.log(format!("drop a context of {:?}", gone.node));
            }
            64..=67 if !self.steps.is_empty() => {
                let i = self.rng.below(self.steps.len());
                let gone = self.steps.swap_remove(i);
                drop(gone.task);
                self.model
                    .cancel(gone.node, Some(FINISHED.to_owned()), Instant::now());
                self.log(format!("drop the step of n{}", gone.node));
            }
            68..=77 => {
                let with_node: Vec<_> = self
                    .lives
                    .iter()
                    .filter_map(|l| l.node.map(|n| (n, l)))
                    .collect();
                if with_node.is_empty() {
                    return;
                }
                let (node, live) = with_node[self.rng.below(with_node.len())];
                let task = task::spawn(live.ctx.done_owned());
                self.waiters.push(Waiter {
                    task,
                    node,
                    polled: false,
                });
                self.log(format!("wait for n{node}"));
            }
            _ => {
                let now = Instant::now();
                let next_deadline = self
                    .model
                    .nodes
                    .iter()
                    .filter_map(|n| n.deadline)
                    .filter(|&d| d > now)
                    .min()
                    .map(|d| d - now);
                let by = match (self.rng.below(6), next_deadline) {
                    (0, _) => Duration::ZERO,
                    (1, _) => MS,
                    (2, Some(next)) => next,
                    (3, Some(next)) => next.saturating_sub(MS),
                    (4, _) => 7 * MS,
                    _ if self.rng.chance(20) => HOUR,
                    _ => 3 * MS,
                };
                time::advance(by).await;
                self.log(format!("advance {by:?}"));
            }
        }
    }

    /// Every live context, step and waiter against the model.
    async fn check(&mut self) {
        let now = Instant::now();
        for (i, live) in self.lives.iter().enumerate() {
            let what = format!("context {i} (node {:?})", live.node);
            assert_eq!(values(&live.ctx), live.values, "{what}: values");
            let Some(node) = live.node else {
                assert!(!live.ctx.is_done(), "{what}");
                assert!(
                    live.ctx.err().is_none() && live.ctx.deadline().is_none(),
                    "{what}"
                );
                continue;
            };
            let deadline = self.model.nodes[node].deadline;
            assert_eq!(live.ctx.deadline(), deadline, "{what}: deadline");
            assert_eq!(
                live.ctx.remaining(),
                deadline.map(|d| d.saturating_duration_since(now)),
                "{what}: remaining"
            );
            let expected = self.model.ending(node, now);
            assert_eq!(
                live.ctx.is_done(),
                expected.is_some(),
                "{what}: is_done, expected {expected:?}"
            );
            match (&expected, live.ctx.err()) {
                (None, None) => assert!(live.ctx.check().is_ok()),
                (Some(expected), Some(err)) => {
                    assert_matches(&err, expected, &self.model, &what);
                    assert!(live.ctx.check().is_err());
                }
                (expected, err) => panic!("{what}: err() is {err:?}, expected {expected:?}"),
            }
        }

        let mut i = 0;
        while i < self.steps.len() {
            let node = self.steps[i].node;
            let what = format!("the step of n{node}");
            let expected = self.model.ending(node, now);
            let step = &mut self.steps[i];
            let woken = step.task.is_woken();
            let first = !step.polled;
            step.polled = true;
            let mut poll = step.task.poll();
            if poll.is_pending() && first && expected.is_some() {
                // A step leaves its deadline to its timer: a deadline that
                // has passed when it first waits shows on the next tick.
                tokio::task::yield_now().await;
                assert!(step.task.is_woken(), "{what}: its timer woke it");
                poll = step.task.poll();
            }
            match (expected, poll) {
                (None, Poll::Pending) => i += 1,
                (Some(expected), Poll::Ready(Err(err))) => {
                    assert!(first || woken, "{what}: ended without a wakeup");
                    assert_matches(&err, &expected, &self.model, &what);
                    self.steps.swap_remove(i);
                }
                (expected, poll) => panic!("{what}: polled {poll:?}, expected {expected:?}"),
            }
        }

        let mut i = 0;
        while i < self.waiters.len() {
            let node = self.waiters[i].node;
            let what = format!("a waiter on n{node}");
            let expected = self.model.ending(node, now);
            let waiter = &mut self.waiters[i];
            let woken = waiter.task.is_woken();
            let first = !waiter.polled;
            waiter.polled = true;
            match (expected, waiter.task.poll()) {
                (None, Poll::Pending) => i += 1,
                (Some(expected), Poll::Ready(err)) => {
                    assert!(first || woken, "{what}: ended without a wakeup");
                    assert_matches(&err, &expected, &self.model, &what);
                    self.waiters.swap_remove(i);
                }
                (expected, poll) => panic!("{what}: polled {poll:?}, expected {expected:?}"),
            }
        }
    }
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("TOKIO_CTX_SEED") {
        return vec![seed.parse().expect("TOKIO_CTX_SEED is a number")];
    }
    let count = std::env::var("TOKIO_CTX_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    (1..=count).collect()
}

fn run_seed(seed: u64, operations: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut world = World {
            model: Model::default(),
            lives: Vec::new(),
            handles: Vec::new(),
            steps: Vec::new(),
            waiters: Vec::new(),
            rng: Rng(seed),
            replay: Replay {
                seed,
                log: Vec::new(),
            },
        };
        for _ in 0..operations {
            world.step().await;
            world.check().await;
        }
    });
}

#[test]
fn random_layers_agree_with_the_model() {
    let _serial = one_at_a_time();
    for seed in seeds() {
        run_seed(seed, 120);
    }
}

#[test]
fn the_model_catches_a_wrong_answer() {
    // The comparison is only worth something if a wrong answer fails it:
    // a cause the model did not give must be reported as a mismatch.
    let mut model = Model::default();
    let start = Instant::now();
    let node = model.derive(None, None, None, Some("n0".into()), start);
    model.cancel(node, Some("right".into()), start);
    let (ctx, cancel) = Context::background().named("n0").child();
    cancel.cancel_with("wrong");
    let expected = model.ending(node, start).unwrap();
    let err = ctx.err().unwrap();
    let mismatch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_matches(&err, &expected, &model, "n0")
    }));
    assert!(mismatch.is_err());
}

// ---------------------------------------------------------------------------
// Many threads at once.

/// How long a waiter may take to see an end that has already happened
/// before the test calls it a lost wakeup. Generous: it only bounds a hang.
const HANG: Duration = Duration::from_secs(20);

/// A tree of named contexts with their handles: node `i` is named `n{i}`
/// and its parent is `parents[i]` (`None` for the root).
struct Tree {
    contexts: Vec<Context>,
    handles: Vec<CancelHandle>,
    parents: Vec<Option<usize>>,
}

impl Tree {
    fn random(rng: &mut Rng, size: usize) -> Tree {
        let (root, handle) = Context::background().named("n0").child();
        let mut tree = Tree {
            contexts: vec![root],
            handles: vec![handle],
            parents: vec![None],
        };
        for i in 1..size {
            let parent = rng.below(i);
            let name = format!("n{i}");
            let ctx = &tree.contexts[parent];
            let (ctx, handle) = match rng.below(3) {
                0 => ctx.named(name).child(),
                1 => ctx.with_value(V0(i as u64)).named(name).child(),
                _ => ctx.named(name).child_with_timeout(HOUR),
            };
            tree.contexts.push(ctx);
            tree.handles.push(handle);
            tree.parents.push(Some(parent));
        }
        tree
    }

    fn ancestors_or_self(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(i), |&c| self.parents[c])
    }

    fn index_of(err: &Error) -> usize {
        err.context_name().expect("every context is named")[1..]
            .parse()
            .unwrap()
    }

    /// What must hold once every context was canceled by someone, whoever
    /// won each race: each context names an ancestor (or itself) whose own
    /// cancellation it was, with the cause that ancestor itself reports;
    /// the cause is one a thread really gave that very context; and the
    /// nearest context on the way up that reports its own cancellation is
    /// the one named (no context skips a nearer record).
    fn assert_consistent(&self) {
        for (i, ctx) in self.contexts.iter().enumerate() {
            let err = ctx.err().unwrap_or_else(|| panic!("n{i} never ended"));
            assert!(err.is_canceled(), "n{i}: {err:?}");
            let by = Tree::index_of(&err);
            assert!(
                self.ancestors_or_self(i).any(|a| a == by),
                "n{i} names n{by}, not an ancestor"
            );
            assert_eq!(err.is_own(), by == i, "n{i}: {err:?}");
            let cause = err.cause().expect("every cancel had a cause").to_string();
            assert!(
                cause.ends_with(&format!(" n{by}")),
                "n{i}: n{by} canceled with {cause:?}"
            );
            let named = self.contexts[by].err().unwrap();
            assert!(named.is_own(), "n{by}: {named:?}");
            assert_eq!(named.cause().unwrap().to_string(), cause);
            let nearest = self
                .ancestors_or_self(i)
                .find(|&a| self.contexts[a].err().unwrap().is_own());
            assert_eq!(nearest, Some(by), "n{i}");
        }
    }
}

#[test]
fn simultaneous_cancels_end_every_context_once_and_wake_every_waiter() {
    let _serial = one_at_a_time();
    let runtime = two_workers();
    for seed in 0..50 {
        let _seed = Seed(seed);
        let mut rng = Rng(seed);
        let tree = Arc::new(Tree::random(&mut rng, 300));
        let _guard = runtime.enter();
        // A waiter on every context, registered before the cancels start
        // and while they run, and a callback on every third.
        let waiters: Vec<_> = tree
            .contexts
            .iter()
            .map(|ctx| tokio::spawn(time::timeout(HANG, ctx.done_owned())))
            .collect();
        let calls: Arc<Vec<AtomicUsize>> = Arc::new(
            (0..tree.contexts.len())
                .map(|_| AtomicUsize::new(0))
                .collect(),
        );
        let registrations: Vec<_> = (0..tree.contexts.len())
            .step_by(3)
            .map(|i| {
                let calls = Arc::clone(&calls);
                tree.contexts[i].on_done(move || {
                    calls[i].fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let threads = 4;
        let start = Arc::new(Barrier::new(threads));
        let cancelers: Vec<_> = (0..threads)
            .map(|t| {
                let tree = Arc::clone(&tree);
                let start = Arc::clone(&start);
                let mut order: Vec<usize> = (0..tree.contexts.len()).collect();
                let mut rng = Rng(seed * 31 + t as u64);
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.below(i + 1));
                }
                thread::spawn(move || {
                    start.wait();
                    let mut born = Vec::new();
                    for i in order {
                        tree.handles[i].cancel_with(format!("thread {t} canceled n{i}"));
                        // Derivations racing the cancels are born ended.
                        born.push(tree.contexts[i].child().0);
                    }
                    for ctx in born {
                        assert!(ctx.is_done());
                    }
                })
            })
            .collect();
        for canceler in cancelers {
            canceler.join().unwrap();
        }
        runtime.block_on(async {
            for (i, waiter) in waiters.into_iter().enumerate() {
                let err = waiter
                    .await
                    .unwrap()
                    .unwrap_or_else(|_| panic!("lost wakeup: the waiter on n{i} never woke"));
                assert_eq!(err.to_string(), tree.contexts[i].err().unwrap().to_string());
            }
        });
        tree.assert_consistent();
        // Callbacks on contexts with a deadline run on a task of their
        // own: wait for those, boundedly.
        runtime.block_on(async {
            let deadline = Instant::now() + HANG;
            for i in (0..tree.contexts.len()).step_by(3) {
                while calls[i].load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                    tokio::task::yield_now().await;
                }
            }
        });
        for (i, calls) in calls.iter().enumerate() {
            let expected = usize::from(i % 3 == 0);
            assert_eq!(calls.load(Ordering::SeqCst), expected, "on_done of n{i}");
        }
        for registration in &registrations {
            assert!(!registration.stop(), "nothing left to stop");
        }
    }
}

#[test]
fn interlocked_cancels_from_callbacks_and_waiters_never_hang() {
    let _serial = one_at_a_time();
    // Go's TestInterlockedCancels: the end of one context cancels another,
    // from an `on_done` callback (on the canceling thread) and from tasks
    // woken by `done()`, across trees and back up to the trees' roots.
    let runtime = two_workers();
    for seed in 0..50 {
        let _seed = Seed(seed);
        let mut rng = Rng(seed);
        let trees: Vec<Arc<Tree>> = (0..6)
            .map(|_| Arc::new(Tree::random(&mut rng, 40)))
            .collect();
        let _guard = runtime.enter();
        let mut links = Vec::new();
        let mut registrations = Vec::new();
        for (t, pair) in trees.windows(2).enumerate() {
            let (from, to) = (Arc::clone(&pair[0]), Arc::clone(&pair[1]));
            let leaf = rng.below(from.contexts.len());
            let target = rng.below(to.contexts.len());
            if t % 2 == 0 {
                registrations.push(from.contexts[leaf].on_done(move || {
                    to.handles[target].cancel_with(format!("callback canceled n{target}"));
                    // Cancel the root of the same tree again, re-entrantly.
                    to.handles[0].cancel_with("callback canceled n0");
                }));
            } else {
                let done = from.contexts[leaf].done_owned();
                links.push(tokio::spawn(async move {
                    time::timeout(HANG, done).await.expect("a link never woke");
                    to.handles[target].cancel_with(format!("waiter canceled n{target}"));
                    to.handles[0].cancel_with("waiter canceled n0");
                }));
            }
        }
        let last = trees.last().unwrap();
        let waiters: Vec<_> = last
            .contexts
            .iter()
            .map(|ctx| tokio::spawn(time::timeout(HANG, ctx.done_owned())))
            .collect();
        trees[0].handles[0].cancel_with("the first root canceled n0");
        runtime.block_on(async {
            for link in links {
                link.await.unwrap();
            }
            for (i, waiter) in waiters.into_iter().enumerate() {
                waiter
                    .await
                    .unwrap()
                    .unwrap_or_else(|_| panic!("lost wakeup on n{i} of the last tree"));
            }
        });
        for tree in &trees {
            tree.assert_consistent();
        }
    }
}

#[test]
fn a_thread_that_saw_the_parent_end_sees_the_child_ended() {
    let _serial = one_at_a_time();
    // Issue 10, defect 1: between the parent's cancellation record and the
    // bump of the epoch, a child whose remembered epoch was current read
    // live on the very thread that had just seen its parent canceled, and
    // a cancel of the child in that window wrote a record of its own, so
    // the child reported its own cause instead of its parent's forever.
    const TRIALS: usize = 100_000;
    let start = Arc::new(Barrier::new(2));
    let (to_canceler, trials) = std::sync::mpsc::channel::<CancelHandle>();
    let canceler = {
        let start = Arc::clone(&start);
        thread::spawn(move || {
            for handle in trials {
                start.wait();
                handle.cancel_with("the parent was canceled");
            }
        })
    };
    let (root, _root_cancel) = Context::background().child();
    let mut stale = 0;
    let mut inverted = 0;
    for _ in 0..TRIALS {
        let (parent, cancel_parent) = root.child();
        let (child, cancel_child) = parent.child();
        // Remember "no canceled ancestor" at the current epoch.
        assert!(!child.is_done());
        to_canceler.send(cancel_parent).unwrap();
        start.wait();
        while !parent.is_done() {
            std::hint::spin_loop();
        }
        if !child.is_done() {
            stale += 1;
        }
        cancel_child.cancel_with("the child was canceled after its parent");
        let cause = child.err().unwrap().cause().unwrap().to_string();
        if cause != "the parent was canceled" {
            inverted += 1;
        }
    }
    drop(to_canceler);
    canceler.join().unwrap();
    assert_eq!(
        (stale, inverted),
        (0, 0),
        "in {TRIALS} trials: the child read live after its parent read canceled {stale} times, \
         and reported the later cause of its own {inverted} times"
    );
}
