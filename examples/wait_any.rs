//! First of several workers: take the first result, stop the rest.
//!
//! A request handler runs two tasks under one *waiter* context with
//! `Context::race_either`: the *work* (building a report) and a *watcher*
//! that notices when the client's connection is lost. Whichever ends first
//! decides the outcome. The other is no longer needed: its context is
//! canceled with the cause "lost the race" and its future is dropped. If the
//! waiter itself is canceled (here by a shutdown), both tasks stop, and they
//! are told why.
//!
//! Three cases run one after the other, with real delays of a few hundred
//! milliseconds (the connection and the shutdown are simulated with timers):
//!
//! 1. the work finishes first: the watcher is canceled;
//! 2. the connection is lost first: the work is canceled;
//! 3. a shutdown cancels the waiter before either ends: both are canceled.
//!
//! Each task starts a small cleanup sub-task under its own context, which
//! waits for that context to end and then prints one line: what the task
//! produced, or that it was stopped and the error saying why.
//!
//! ```text
//! cargo run --example wait_any
//! ```

use std::time::Duration;

use futures::future::Either;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, timeout, Instant};
use tokio_ctx::{Context, Error};

/// One run of the race.
struct Case {
    title: &'static str,
    work_takes: Duration,
    connection_lost_after: Duration,
    shutdown_after: Option<Duration>,
}

const CASES: [Case; 3] = [
    Case {
        title: "the work finishes first",
        work_takes: Duration::from_millis(100),
        connection_lost_after: Duration::from_millis(300),
        shutdown_after: None,
    },
    Case {
        title: "the connection is lost first",
        work_takes: Duration::from_millis(300),
        connection_lost_after: Duration::from_millis(100),
        shutdown_after: None,
    },
    Case {
        title: "the waiter is canceled by a shutdown",
        work_takes: Duration::from_millis(300),
        connection_lost_after: Duration::from_millis(400),
        shutdown_after: Some(Duration::from_millis(100)),
    },
];

/// How long the cleanups get to report once the race is over. They run as
/// soon as their contexts end, so this only matters if something kept
/// running, which is exactly what this example says must not happen.
const REPORT_WINDOW: Duration = Duration::from_secs(1);

/// Where the cleanups send their lines. Every cleanup holds a sender, so
/// the channel closes once all of them have reported.
type Outcomes = mpsc::UnboundedSender<String>;

#[tokio::main]
async fn main() {
    for (n, case) in CASES.iter().enumerate() {
        println!("case {}: {}", n + 1, case.title);
        run_case(case).await;
        println!();
    }
}

async fn run_case(case: &Case) {
    let (waiter, shutdown) = Context::background().named("waiter").child();
    if let Some(after) = case.shutdown_after {
        // Stands in for a signal handler: whoever holds the cancel handle can
        // stop the whole tree, whatever it is doing.
        tokio::spawn(async move {
            sleep(after).await;
            shutdown.cancel_with("shutting down");
        });
    }

    let (outcomes, mut lines) = mpsc::unbounded_channel();
    let started = Instant::now();
    let result = waiter
        .race_either(
            |ctx| work(ctx, case.work_takes, outcomes.clone()),
            |ctx| watch_connection(ctx, case.connection_lost_after, outcomes.clone()),
        )
        .await;
    let elapsed = started.elapsed();

    drop(outcomes);
    let all_reported = timeout(REPORT_WINDOW, async {
        while let Some(line) = lines.recv().await {
            println!("  {line}");
        }
    })
    .await;
    if all_reported.is_err() {
        println!("  (a task's context never ended: something is still running)");
    }
    println!("  {:<8} {}", "waiter", describe(result, elapsed));
}

/// Builds the report the request asked for; the delay stands in for the
/// real work.
async fn work(ctx: Context, takes: Duration, outcomes: Outcomes) -> String {
    let finished = start_cleanup("work", &ctx, &outcomes);
    sleep(takes).await;
    let report = format!("report built in {takes:?}");
    finished.report(&report);
    report
}

/// Resolves when the client's connection is lost; simulated with a timer.
async fn watch_connection(ctx: Context, lost_after: Duration, outcomes: Outcomes) -> Duration {
    let finished = start_cleanup("watcher", &ctx, &outcomes);
    sleep(lost_after).await;
    finished.report(&format!("the connection was lost after {lost_after:?}"));
    lost_after
}

/// What a task tells its cleanup when it completes.
struct Finished(oneshot::Sender<String>);

impl Finished {
    fn report(self, what: &str) {
        // The cleanup lives as long as the task's context, which outlives
        // the task's future: it is still there to receive this.
        let _ = self.0.send(what.to_owned());
    }
}

/// Starts the cleanup of task `name`: a sub-task under the task's own
/// context that waits for that context to end, then reports how the task
/// ended.
///
/// It has to be a task of its own: the loser of a race is dropped, never
/// polled again, so its future cannot see the cancellation. It is detached
/// rather than held by the task, because a held handle would be dropped with
/// the losing future and stop the cleanup with a cause of its own ("its task
/// handle was dropped") before the race's cause arrives. Detached, it is
/// still bounded by the task's context, so it cannot outlive the race.
fn start_cleanup(name: &'static str, ctx: &Context, outcomes: &Outcomes) -> Finished {
    let (finished, mut result) = oneshot::channel();
    let outcomes = outcomes.clone();
    let cleanup = ctx.spawn(move |ctx| async move {
        let why = ctx.done().await;
        let line = match result.try_recv() {
            Ok(what) => format!("{name:<8} finished: {what}"),
            // Never reported: the task's future was dropped, or is still
            // running while its context has ended.
            Err(_) => format!("{name:<8} stopped ({why})"),
        };
        let _ = outcomes.send(line);
    });
    // Nobody joins it: it reports through `outcomes`.
    drop(cleanup.detach());
    Finished(finished)
}

fn describe(result: Result<Either<String, Duration>, Error>, elapsed: Duration) -> String {
    match result {
        Ok(Either::Left(report)) => format!("the work won after {elapsed:.0?}: {report}"),
        Ok(Either::Right(_)) => format!(
            "the watcher won after {elapsed:.0?}: nobody is waiting for the report any more"
        ),
        Err(e) => format!("ended after {elapsed:.0?} with neither result: {e}"),
    }
}
