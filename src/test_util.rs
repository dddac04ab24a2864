//! Test your own code the way this crate tests its combinators: interrupt it
//! at every await (feature `test-util`).
//!
//! Code that holds a permit, a lease or a half-written buffer across an
//! `.await` is only correct if it is correct at *every* await: a caller may
//! drop the future there, or cancel its context and wait for it to wind
//! down. A test that cancels at one chosen moment covers one await; this
//! module covers them all, in paused time, so the result does not depend on
//! the machine.
//!
//! [`cancel_at_every_await`] runs the future again and again: uninterrupted
//! once to count how many polls it takes, and for every poll `k` before
//! that, interrupted after its `k`-th poll, both by dropping it and by
//! cancelling its context. After each run it lets the runtime settle and
//! calls the check you gave with what happened ([`Outcome`]). See
//! [`CancelAtEveryAwait`] for the limits and the choice of interruptions.
//!
//! # Examples
//!
//! A step that holds a semaphore permit and records its cleanup: whenever
//! it is interrupted, the permit must be back and the cleanup must have run
//! exactly once.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tokio::sync::Semaphore;
//! use tokio_ctx::test_util::{cancel_at_every_await, Outcome};
//!
//! /// Counts its own drop: the cleanup.
//! struct Cleanup(Arc<AtomicUsize>);
//! impl Drop for Cleanup {
//!     fn drop(&mut self) {
//!         self.0.fetch_add(1, Ordering::SeqCst);
//!     }
//! }
//!
//! let report = cancel_at_every_await(|ctx| {
//!     let permits = Arc::new(Semaphore::new(1));
//!     let cleanups = Arc::new(AtomicUsize::new(0));
//!     let step = {
//!         let (permits, cleanups) = (Arc::clone(&permits), Arc::clone(&cleanups));
//!         ctx.with_timeout(Duration::from_secs(5), move |_ctx| async move {
//!             let _cleanup = Cleanup(cleanups);
//!             let _permit = permits.acquire().await.unwrap();
//!             tokio::time::sleep(Duration::from_millis(10)).await;
//!             tokio::task::yield_now().await;
//!             "written"
//!         })
//!     };
//!     let check = move |outcome: Outcome<Result<&str, tokio_ctx::Error>>| {
//!         assert_eq!(permits.available_permits(), 1, "the permit is back");
//!         assert_eq!(cleanups.load(Ordering::SeqCst), 1, "cleanup ran once");
//!         if let Outcome::Canceled { output: Err(err), .. } = &outcome {
//!             assert!(err.is_canceled());
//!         }
//!     };
//!     (step, check)
//! });
//! assert!(report.polls() >= 3, "every await was tried: {report:?}");
//! ```

use std::any::Any;
use std::fmt;
use std::future::{poll_fn, Future};
use std::panic::{self, AssertUnwindSafe};
use std::task::Poll;
use std::time::Duration;

use crate::context::Context;

/// The cause the context is canceled with in an [`Interrupt::Cancel`] run,
/// so that a check can tell this cancellation from any other.
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::test_util::{cancel_at_every_await, Outcome, CAUSE};
///
/// cancel_at_every_await(|ctx| {
///     let (step, _) = ctx.child_with_timeout(Duration::from_secs(1));
///     let fut = async move { step.done().await };
///     (fut, |outcome: Outcome<tokio_ctx::Error>| match outcome {
///         Outcome::Canceled { output: err, .. } => {
///             assert_eq!(err.cause().unwrap().to_string(), CAUSE);
///         }
///         Outcome::Completed(err) => assert!(err.is_deadline_exceeded()),
///         Outcome::Dropped { .. } => {}
///         _ => unreachable!(),
///     })
/// });
/// ```
pub const CAUSE: &str = "canceled by cancel_at_every_await";

/// How a run is interrupted after the chosen poll.
///
/// ```
/// use tokio_ctx::test_util::{CancelAtEveryAwait, Interrupt};
///
/// // Only dropping: for a future that does not look at its context.
/// let report = CancelAtEveryAwait::new(|_ctx| (tokio::task::yield_now(), |_| {}))
///     .interrupts(&[Interrupt::Drop])
///     .run();
/// assert_eq!(report.runs(), 2);
/// assert_eq!(Interrupt::Cancel.to_string(), "context canceled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interrupt {
    /// Drop the future, as `select!`, a timeout or an aborted task does.
    Drop,
    /// Cancel the context given to the factory, with the cause [`CAUSE`],
    /// and keep polling the future until it completes: it must wind down
    /// on its own, within the [time limit](CancelAtEveryAwait::time_limit).
    Cancel,
}

impl fmt::Display for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interrupt::Drop => "dropped",
            Interrupt::Cancel => "context canceled",
        })
    }
}

/// What happened to the future in one run, handed to the check.
///
/// ```
/// use tokio_ctx::test_util::{cancel_at_every_await, Outcome};
///
/// cancel_at_every_await(|ctx| {
///     let step = ctx.run(async {
///         tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///         "done"
///     });
///     (step, |outcome: Outcome<Result<&str, tokio_ctx::Error>>| match outcome {
///         Outcome::Completed(output) => assert_eq!(output.unwrap(), "done"),
///         Outcome::Dropped { polls } => assert_eq!(polls, 1),
///         Outcome::Canceled { output, .. } => assert!(output.unwrap_err().is_canceled()),
///         _ => unreachable!("no other outcome yet"),
///     })
/// });
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome<T> {
    /// The run that was not interrupted: the future's own output.
    Completed(T),
    /// The future was dropped after `polls` polls.
    Dropped {
        /// How many times the future had been polled.
        polls: usize,
    },
    /// The context was canceled after `polls` polls; the future then ran
    /// to completion and gave `output`.
    Canceled {
        /// How many times the future had been polled before the cancel.
        polls: usize,
        /// What the future gave once it wound down.
        output: T,
    },
}

impl<T> Outcome<T> {
    /// The future's output, if it produced one (every outcome but
    /// [`Dropped`](Outcome::Dropped)).
    ///
    /// ```
    /// use tokio_ctx::test_util::Outcome;
    ///
    /// assert_eq!(Outcome::Completed(7).output(), Some(&7));
    /// ```
    pub fn output(&self) -> Option<&T> {
        match self {
            Outcome::Completed(output) | Outcome::Canceled { output, .. } => Some(output),
            Outcome::Dropped { .. } => None,
        }
    }

    /// True unless this is the uninterrupted run.
    ///
    /// ```
    /// use tokio_ctx::test_util::Outcome;
    ///
    /// assert!(!Outcome::Completed(()).is_interrupted());
    /// ```
    pub fn is_interrupted(&self) -> bool {
        !matches!(self, Outcome::Completed(_))
    }
}

/// What [`CancelAtEveryAwait::run`] did.
///
/// ```
/// use tokio_ctx::test_util::cancel_at_every_await;
///
/// let report = cancel_at_every_await(|_ctx| {
///     let twice = async {
///         tokio::task::yield_now().await;
///         tokio::task::yield_now().await;
///     };
///     (twice, |_| {})
/// });
/// assert_eq!((report.polls(), report.runs()), (3, 5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    polls: usize,
    runs: usize,
}

impl Report {
    /// How many polls the uninterrupted run took: the number of places the
    /// future could be interrupted. Assert on it so that a test does not
    /// silently stop covering anything when the code under test changes.
    ///
    /// ```
    /// use tokio_ctx::test_util::cancel_at_every_await;
    ///
    /// let report = cancel_at_every_await(|_ctx| (async { 1 }, |_| {}));
    /// assert_eq!(report.polls(), 1, "ready at once: nothing to interrupt");
    /// ```
    pub fn polls(&self) -> usize {
        self.polls
    }

    /// How many times the future was made and run, and the check called.
    ///
    /// ```
    /// use tokio_ctx::test_util::cancel_at_every_await;
    ///
    /// let report = cancel_at_every_await(|_ctx| {
    ///     (async { tokio::task::yield_now().await }, |_| {})
    /// });
    /// assert_eq!(report.polls(), 2);
    /// assert_eq!(report.runs(), 3, "dropped after poll 1, canceled after poll 1, whole");
    /// ```
    pub fn runs(&self) -> usize {
        self.runs
    }
}

/// Runs `make`'s future interrupted after every poll, both by dropping it
/// and by cancelling its context, and calls its check after each run.
///
/// `make` is called once per run, inside that run's runtime, with a fresh
/// context; it returns the future and the check for that run, so both can
/// share per-run state (a semaphore, a counter, a channel). The defaults of
/// [`CancelAtEveryAwait`] apply; use it directly to change them.
///
/// # Panics
///
/// When a check panics, when the future panics, when a run leaves a task
/// running, or when a limit is hit; the message says which run. It must be
/// called outside a Tokio runtime (from a plain `#[test]`): each run builds
/// its own.
///
/// # Examples
///
/// See [the module](self).
///
/// ```
/// use tokio_ctx::test_util::{cancel_at_every_await, Outcome};
/// use tokio_ctx::Either;
///
/// let report = cancel_at_every_await(|ctx| {
///     let step = ctx.race_either(
///         |_ctx| async { tokio::task::yield_now().await; "fast" },
///         |_ctx| std::future::pending::<u8>(),
///     );
///     (step, |outcome: Outcome<_>| {
///         if let Outcome::Completed(winner) = outcome {
///             assert!(matches!(winner.unwrap(), Either::Left("fast")));
///         }
///     })
/// });
/// assert_eq!(report.polls(), 2);
/// ```
pub fn cancel_at_every_await<M, Fut, C>(make: M) -> Report
where
    M: FnMut(Context) -> (Fut, C),
    Fut: Future,
    C: FnOnce(Outcome<Fut::Output>),
{
    CancelAtEveryAwait::new(make).run()
}

/// [`cancel_at_every_await`] with its settings.
///
/// Every run gets a new current-thread runtime with paused time
/// (`start_paused`), so timers fire as soon as nothing else can run, and a
/// run's time starts where the others' did. One run is made for each
/// poll `k` before completion and each [`Interrupt`]:
///
/// 1. `make` is called with a new context (a child of
///    [`Context::background`] named `"cancel_at_every_await"`);
/// 2. the future is polled until it has returned `Pending` `k` times (the
///    runtime runs other tasks and advances the paused clock in between, as
///    it would for any task). Only the polls of this future are counted:
///    tasks it spawns run between them, and are interrupted wherever they
///    happen to be;
/// 3. it is interrupted: dropped, or its context canceled with [`CAUSE`] and
///    the future polled on until it completes;
/// 4. the runtime settles: the paused clock advances by the
///    [settle time](Self::settle), so that tasks stopped by the interruption
///    finish (a scope's grace period, a spawned task's cleanup);
/// 5. no task spawned on the runtime may still be alive, unless
///    [allowed](Self::allow_tasks_left);
/// 6. the check is called with the [`Outcome`].
///
/// The runs stop with the first one in which the future completes before
/// its `k`-th `Pending`; that run is checked with
/// [`Outcome::Completed`]. A future that takes `n` polls is therefore made
/// `2n - 1` times and polled about `n²` times in all.
///
/// The runtime has every driver this build of Tokio has, so real I/O works,
/// but with time paused a timer fires as soon as the runtime is idle, even
/// while I/O is in flight: futures that wait on timers, channels and tasks
/// suit this best.
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::test_util::{CancelAtEveryAwait, Interrupt, Outcome};
///
/// let report = CancelAtEveryAwait::new(|ctx| {
///     let step = async move {
///         for _ in 0..3 {
///             tokio::time::sleep(Duration::from_secs(1)).await;
///         }
///         ctx.is_done()
///     };
///     (step, |outcome: Outcome<bool>| {
///         if let Outcome::Canceled { output: seen, .. } = outcome {
///             assert!(seen, "the step ran on and saw the cancellation at its end");
///         }
///     })
/// })
/// .interrupts(&[Interrupt::Cancel])
/// .run();
/// assert_eq!(report.runs(), 4);
/// ```
pub struct CancelAtEveryAwait<M> {
    make: M,
    interrupts: Vec<Interrupt>,
    max_polls: usize,
    time_limit: Duration,
    settle: Duration,
    allow_tasks_left: bool,
}

impl<M> fmt::Debug for CancelAtEveryAwait<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelAtEveryAwait")
            .field("interrupts", &self.interrupts)
            .field("max_polls", &self.max_polls)
            .field("time_limit", &self.time_limit)
            .field("settle", &self.settle)
            .field("allow_tasks_left", &self.allow_tasks_left)
            .finish_non_exhaustive()
    }
}

/// The default [`CancelAtEveryAwait::max_polls`].
const MAX_POLLS: usize = 1_000;
/// The default [`CancelAtEveryAwait::time_limit`]: paused time is free.
const TIME_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// The default [`CancelAtEveryAwait::settle`]: well beyond a scope's
/// default grace period of one second.
const SETTLE: Duration = Duration::from_secs(60);

impl<M, Fut, C> CancelAtEveryAwait<M>
where
    M: FnMut(Context) -> (Fut, C),
    Fut: Future,
    C: FnOnce(Outcome<Fut::Output>),
{
    /// Both interrupts, at most 1,000 polls, a time limit of one day and a
    /// settle time of one minute (all in paused time), and no task left.
    ///
    /// ```
    /// use tokio_ctx::test_util::CancelAtEveryAwait;
    ///
    /// let report = CancelAtEveryAwait::new(|_ctx| (async { "ready" }, |_| {})).run();
    /// assert_eq!(report.runs(), 1);
    /// ```
    pub fn new(make: M) -> Self {
        CancelAtEveryAwait {
            make,
            interrupts: vec![Interrupt::Drop, Interrupt::Cancel],
            max_polls: MAX_POLLS,
            time_limit: TIME_LIMIT,
            settle: SETTLE,
            allow_tasks_left: false,
        }
    }

    /// Which interruptions to try after each poll (both by default). An
    /// empty list runs the future once, uninterrupted.
    ///
    /// ```
    /// use tokio_ctx::test_util::{CancelAtEveryAwait, Interrupt};
    ///
    /// let report = CancelAtEveryAwait::new(|_ctx| (tokio::task::yield_now(), |_| {}))
    ///     .interrupts(&[Interrupt::Drop])
    ///     .run();
    /// assert_eq!(report.runs(), 2);
    /// ```
    pub fn interrupts(mut self, interrupts: &[Interrupt]) -> Self {
        self.interrupts = interrupts.to_vec();
        self
    }

    /// The most polls the uninterrupted run may take, and an interrupted
    /// future may take to wind down after its cancel (1,000 by default).
    /// The runs cost about the square of the polls.
    ///
    /// ```
    /// use tokio_ctx::test_util::CancelAtEveryAwait;
    ///
    /// let endless = std::panic::catch_unwind(|| {
    ///     CancelAtEveryAwait::new(|_ctx| {
    ///         let spin = async {
    ///             loop {
    ///                 tokio::task::yield_now().await;
    ///             }
    ///         };
    ///         (spin, |_: _| {})
    ///     })
    ///     .max_polls(5)
    ///     .run()
    /// });
    /// assert!(endless.is_err());
    /// ```
    pub fn max_polls(mut self, max_polls: usize) -> Self {
        self.max_polls = max_polls.max(1);
        self
    }

    /// How much paused time a run may take, before and after its
    /// interruption (one day by default). A future that waits for something
    /// that never comes hits this limit at once, since the paused clock
    /// jumps to it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::test_util::CancelAtEveryAwait;
    ///
    /// let stuck = std::panic::catch_unwind(|| {
    ///     CancelAtEveryAwait::new(|_ctx| (std::future::pending::<()>(), |_| {}))
    ///         .time_limit(Duration::from_secs(1))
    ///         .run()
    /// });
    /// assert!(stuck.is_err(), "never completes");
    /// ```
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// How far the paused clock advances after each run before the checks,
    /// so that what the interruption stopped can finish stopping (one minute
    /// by default).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::test_util::CancelAtEveryAwait;
    ///
    /// CancelAtEveryAwait::new(|ctx| {
    ///     let scope = ctx
    ///         .scope(|scope| async move {
    ///             scope.spawn(|_ctx| async {
    ///                 tokio::time::sleep(Duration::from_secs(3)).await;
    ///                 Ok(())
    ///             });
    ///             Ok::<_, ()>(())
    ///         })
    ///         .grace_period(Duration::from_millis(100));
    ///     (scope, |_| {})
    /// })
    /// .settle(Duration::from_millis(200))
    /// .run();
    /// ```
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Lets tasks spawned by the future outlive it (detached on purpose):
    /// without this, a run that leaves a task alive after settling fails.
    ///
    /// ```
    /// use tokio_ctx::test_util::CancelAtEveryAwait;
    ///
    /// CancelAtEveryAwait::new(|_ctx| {
    ///     let fut = async {
    ///         tokio::spawn(std::future::pending::<()>());
    ///         tokio::task::yield_now().await;
    ///     };
    ///     (fut, |_| {})
    /// })
    /// .allow_tasks_left()
    /// .run();
    /// ```
    pub fn allow_tasks_left(mut self) -> Self {
        self.allow_tasks_left = true;
        self
    }

    /// Makes all the runs; see [the type](Self) for what each does.
    ///
    /// # Panics
    ///
    /// When a check panics or the future panics (the message names the
    /// run, then the original panic follows), when a run leaves a task
    /// alive, when the uninterrupted run takes more than
    /// [`max_polls`](Self::max_polls) polls or the
    /// [`time_limit`](Self::time_limit), when an interrupted future does not
    /// complete within the same limits after its cancel, and when called
    /// inside a Tokio runtime.
    ///
    /// ```
    /// use tokio_ctx::test_util::CancelAtEveryAwait;
    ///
    /// let report = CancelAtEveryAwait::new(|_ctx| (async { 2 + 2 }, |_| {})).run();
    /// assert_eq!(report.polls(), 1);
    /// ```
    pub fn run(mut self) -> Report {
        let mut runs = 0;
        if self.interrupts.is_empty() {
            let polls = self.one_run(self.max_polls, None, 1);
            return Report {
                polls: polls.unwrap_or(self.max_polls),
                runs: 1,
            };
        }
        for after in 1..=self.max_polls {
            for interrupt in self.interrupts.clone() {
                runs += 1;
                if let Some(polls) = self.one_run(after, Some(interrupt), runs) {
                    return Report { polls, runs };
                }
            }
        }
        panic!(
            "cancel_at_every_await: the future did not complete within {} polls \
             (raise `max_polls` if it needs more)",
            self.max_polls
        );
    }

    /// One run, interrupted after `after` polls unless the future completes
    /// first; gives the number of polls if it did. Without an interrupt,
    /// not completing within `after` polls fails.
    fn one_run(&mut self, after: usize, interrupt: Option<Interrupt>, run: usize) -> Option<usize> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("cancel_at_every_await: building a runtime");
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(self.drive(after, interrupt))
        }));
        drop(runtime);
        match result {
            Ok(completed) => completed,
            Err(panic) => {
                let what = match interrupt {
                    None => "not interrupted".to_owned(),
                    Some(interrupt) => format!("{interrupt} after poll {after}"),
                };
                panic!(
                    "cancel_at_every_await: run {run} ({what}) failed: {}",
                    message(&*panic)
                );
            }
        }
    }

    async fn drive(&mut self, after: usize, interrupt: Option<Interrupt>) -> Option<usize> {
        let (ctx, cancel) = Context::background().named("cancel_at_every_await").child();
        let (fut, check) = (self.make)(ctx);
        let mut fut = Box::pin(fut);
        let mut polls = 0;
        let first = poll_fn(|cx| {
            polls += 1;
            match fut.as_mut().poll(cx) {
                Poll::Ready(output) => Poll::Ready(Some(output)),
                Poll::Pending if polls >= after => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        });
        let first = match tokio::time::timeout(self.time_limit, first).await {
            Ok(first) => first,
            Err(_) => panic!(
                "the future was not woken again after {polls} polls within {:?} of paused \
                 time: it would never complete",
                self.time_limit
            ),
        };
        let (outcome, completed) = match (first, interrupt) {
            (Some(output), _) => (Outcome::Completed(output), Some(polls)),
            (None, None) => panic!(
                "the future did not complete within {polls} polls (raise `max_polls` if it \
                 needs more)"
            ),
            (None, Some(Interrupt::Drop)) => (Outcome::Dropped { polls }, None),
            (None, Some(Interrupt::Cancel)) => {
                cancel.cancel_with(CAUSE);
                let output = self.wind_down(fut.as_mut(), polls).await;
                (Outcome::Canceled { polls, output }, None)
            }
        };
        // A future that has given its output may still hold what it
        // borrowed (a combinator keeps its inner future until dropped).
        drop(fut);
        tokio::time::sleep(self.settle).await;
        if !self.allow_tasks_left {
            let alive = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            assert_eq!(
                alive, 0,
                "{alive} task(s) still running {:?} (paused) after the run ended",
                self.settle
            );
        }
        check(outcome);
        drop(cancel);
        completed
    }

    /// Polls a future whose context was canceled until it completes.
    async fn wind_down(
        &self,
        mut fut: std::pin::Pin<&mut Fut>,
        polls_before: usize,
    ) -> Fut::Output {
        let mut polls = 0;
        let max_polls = self.max_polls;
        let rest = poll_fn(|cx| {
            polls += 1;
            assert!(
                polls <= max_polls,
                "the future did not complete within {max_polls} polls after its context was \
                 canceled (after poll {polls_before})"
            );
            fut.as_mut().poll(cx)
        });
        match tokio::time::timeout(self.time_limit, rest).await {
            Ok(output) => output,
            Err(_) => panic!(
                "the future did not complete within {:?} of paused time after its context \
                 was canceled (after poll {polls_before})",
                self.time_limit
            ),
        }
    }
}

/// The message of a panic payload, when it has one.
fn message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(a panic without a message)"
    }
}
