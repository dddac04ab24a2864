//! Run all as a task group: stop the rest on the first failure, or collect
//! every failure.
//!
//! A report is built from four parts, each fetched by its own task of one
//! `Context::scope`:
//!
//! - `summary` arrives after 30 ms;
//! - `inventory` fails after 60 ms;
//! - `shipping` fails after 120 ms;
//! - `sales` arrives after 250 ms.
//!
//! Each task races its fetch against `ctx.done()`. When its context ends
//! first, it prints why, and releases what it holds (a short cleanup) before
//! it returns: the scope gives a canceled task a grace period to stop on its
//! own before dropping it.
//!
//! Two runs, about half a second in all:
//!
//! 1. task-group semantics (the default): `inventory`'s failure cancels the
//!    scope, so `shipping` and `sales` stop with the cause "a sibling
//!    failed"; the `ScopeError` holds the one failure;
//! 2. `.collect_all()`: every task runs to its end, and the `ScopeError`
//!    holds both failures.
//!
//! ```text
//! cargo run --example task_group
//! ```

use std::fmt;
use std::time::Duration;

use tokio::time::{sleep, Instant};
use tokio_ctx::{Context, ScopeError};

/// One part of the report, and how fetching it goes.
struct Part {
    name: &'static str,
    takes: Duration,
    /// `Some(reason)` if the fetch fails after `takes`.
    fails: Option<&'static str>,
}

const PARTS: [Part; 4] = [
    Part {
        name: "summary",
        takes: Duration::from_millis(30),
        fails: None,
    },
    Part {
        name: "inventory",
        takes: Duration::from_millis(60),
        fails: Some("the warehouse service answered 503"),
    },
    Part {
        name: "shipping",
        takes: Duration::from_millis(120),
        fails: Some("the carrier's answer was malformed"),
    },
    Part {
        name: "sales",
        takes: Duration::from_millis(250),
        fails: None,
    },
];

/// What a task does once its context has ended: close its connection,
/// release its lease. Well within the grace period.
const CLEANUP: Duration = Duration::from_millis(20);

/// How long a canceled task may take to stop on its own before the scope
/// drops it (the default is one second).
const GRACE: Duration = Duration::from_millis(200);

/// A part that could not be fetched.
#[derive(Debug)]
struct PartError {
    part: &'static str,
    reason: &'static str,
}

impl fmt::Display for PartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.part, self.reason)
    }
}

impl std::error::Error for PartError {}

#[tokio::main]
async fn main() {
    println!("run 1: the first failure cancels the rest");
    build_report(false).await;
    println!();
    println!("run 2: collect_all, every task runs to its end");
    build_report(true).await;
}

async fn build_report(collect_all: bool) {
    let started = Instant::now();
    let scope = Context::background().scope(|scope| async move {
        let handles: Vec<_> = PARTS
            .iter()
            .map(|part| scope.spawn(move |ctx| fetch(ctx, part, started)))
            .collect();
        // Assemble whatever arrived. A canceled scope drops this body, so
        // this runs to its end only if nothing canceled the scope; and even
        // then the report reaches the caller only if no task failed.
        let mut report = Vec::new();
        for handle in handles {
            if let Ok(Some(text)) = handle.await {
                report.push(text);
            }
        }
        println!(
            "  {:<10} assembled {} of {} parts",
            "body",
            report.len(),
            PARTS.len()
        );
        Ok(report)
    });
    let scope = scope.grace_period(GRACE);
    let result = if collect_all {
        scope.collect_all().await
    } else {
        scope.await
    };
    summarize(result, started.elapsed());
}

/// Fetches one part, unless the task's context ends first.
///
/// A task that was stopped returns `Ok(None)` rather than an error: the
/// scope already knows why it stopped, and an error here would sit next to
/// the failure that caused it, as if it were a second one.
async fn fetch(
    ctx: Context,
    part: &'static Part,
    started: Instant,
) -> Result<Option<String>, PartError> {
    tokio::select! {
        fetched = download(part) => {
            let at = started.elapsed();
            match fetched {
                Ok(text) => {
                    println!("  {:<10} fetched after {at:.0?}", part.name);
                    Ok(Some(text))
                }
                Err(e) => {
                    println!("  {:<10} FAILED after {at:.0?}: {}", part.name, e.reason);
                    Err(e)
                }
            }
        }
        why = ctx.done() => {
            let at = started.elapsed();
            sleep(CLEANUP).await;
            println!(
                "  {:<10} stopped after {at:.0?} ({why}); cleaned up in {CLEANUP:?}",
                part.name
            );
            Ok(None)
        }
    }
}

/// Stands in for the request to the service that owns the part.
async fn download(part: &Part) -> Result<String, PartError> {
    sleep(part.takes).await;
    match part.fails {
        Some(reason) => Err(PartError {
            part: part.name,
            reason,
        }),
        None => Ok(format!("{} section", part.name)),
    }
}

fn summarize(result: Result<Vec<String>, ScopeError<PartError>>, elapsed: Duration) {
    let label = "scope";
    match result {
        Ok(report) => println!(
            "  {label:<10} ok after {elapsed:.0?}: {}",
            report.join(", ")
        ),
        Err(e) => {
            // The scope returns only once every task has stopped, cleanups
            // included: nothing it started is still running.
            println!("  {label:<10} failed after {elapsed:.0?}: {e}");
            if let Some(ended) = e.ended() {
                println!("  {:<10} ended from above: {ended}", "");
            }
            for (n, error) in e.errors().iter().enumerate() {
                println!("  {:<10} error {}: {error}", "", n + 1);
            }
        }
    }
}
