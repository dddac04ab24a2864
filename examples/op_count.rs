//! Runs one operation of `benches/peers.rs` `N` times in a loop, for
//! counting under callgrind rather than timing: instruction counts are
//! repeatable on a machine whose timings are not (`docs/performance.md`,
//! "Counting instead of timing").
//!
//! ```text
//! cargo build --release --example op_count
//! python3 benches/count.py                     # every case, ours and the peer's
//! target/release/examples/op_count ours_ready 10000
//! ```
//!
//! Each case is the same future or call as the criterion case of the same
//! name, awaited one at a time inside one current-thread runtime with every
//! driver enabled, under the same parent (a child of the background
//! context) or the same token. `benches/count.py` runs each case at two
//! values of `N` and divides the difference, so that the runtime's start
//! and stop cancel out.
//!
//! The `*_wake` cases are the thousand-waiter cancel on one worker: `N`
//! tasks in rounds of a thousand, each round spawning its tasks (each
//! waiting on its own child of one root), canceling the root and joining
//! them all; one operation is one task's whole life. `spawn_join` is the
//! same rounds with tasks that wait on nothing: the scheduler's share.

use std::future::{ready, Future};
use std::hint::black_box;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tokio_ctx::Context;
use tokio_util::sync::CancellationToken;

const HOUR: Duration = Duration::from_secs(3600);

/// The cases, by the name `benches/count.py` passes.
const CASES: &[&str] = &[
    "ours_ready",
    "peer_ready",
    "ours_pending",
    "peer_pending",
    "ours_derive",
    "peer_derive",
    "ours_derive_timeout",
    "peer_derive_timeout",
    "ours_is_done_deadline",
    "peer_now",
    "ours_wake",
    "peer_wake",
    "spawn_join",
];

/// Tasks per round of the `*_wake` cases.
const ROUND: usize = 1_000;

/// A future that is pending on its first poll (waking itself) and ready on
/// its second, as in `benches/peers.rs`.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(case), Some(Ok(n))) = (args.first(), args.get(1).map(|n| n.parse::<u64>())) else {
        eprintln!("usage: op_count CASE N, where CASE is one of {CASES:?}");
        return ExitCode::FAILURE;
    };
    if !CASES.contains(&case.as_str()) {
        eprintln!("unknown case {case:?}: one of {CASES:?}");
        return ExitCode::FAILURE;
    }
    if case.ends_with("_wake") || case == "spawn_join" {
        wake_rounds(case, n);
        return ExitCode::SUCCESS;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let (parent, _cancel) = Context::background().child();
    let token = CancellationToken::new();
    rt.block_on(async {
        let (timed, _timed_cancel) = Context::background().child_with_timeout(HOUR);
        for _ in 0..n {
            match case.as_str() {
                "ours_ready" => {
                    let _ = black_box(parent.with_timeout(HOUR, |_| ready(1)).await);
                }
                "peer_ready" => {
                    let step = token.run_until_cancelled(tokio::time::timeout(HOUR, ready(1)));
                    let _ = black_box(step.await);
                }
                "ours_pending" => {
                    let step = parent.with_timeout(HOUR, |_| PendingOnce(false));
                    let _ = black_box(step.await);
                }
                "peer_pending" => {
                    let step = tokio::time::timeout(HOUR, PendingOnce(false));
                    let _ = black_box(token.run_until_cancelled(step).await);
                }
                "ours_derive" => drop(black_box(parent.child())),
                "peer_derive" => drop(black_box(token.child_token())),
                "ours_derive_timeout" => drop(black_box(parent.child_with_timeout(HOUR))),
                "peer_derive_timeout" => {
                    let timeout = tokio::time::timeout(HOUR, ready(()));
                    drop(black_box((token.child_token(), timeout)));
                }
                "ours_is_done_deadline" => {
                    black_box(black_box(&timed).is_done());
                }
                "peer_now" => {
                    black_box(Instant::now());
                }
                _ => unreachable!("checked above"),
            }
        }
    });
    ExitCode::SUCCESS
}

/// `n` tasks, a thousand per round, each waiting on a child of the round's
/// root (ours) or a child token (the peer's), woken by canceling the root;
/// or, for `spawn_join`, waiting on nothing.
fn wake_rounds(case: &str, n: u64) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::sync::Notify;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a one-worker runtime");
    rt.block_on(async {
        for _ in 0..n / ROUND as u64 {
            // Every task counts itself before it waits; the last one tells.
            let started = Arc::new((AtomicUsize::new(0), Notify::new()));
            let spawn = |wait: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>| {
                let started = Arc::clone(&started);
                tokio::spawn(async move {
                    if started.0.fetch_add(1, Ordering::Relaxed) + 1 == ROUND {
                        started.1.notify_one();
                    }
                    wait.await
                })
            };
            let tasks: Vec<_>;
            if case == "spawn_join" {
                tasks = (0..ROUND).map(|_| spawn(Box::pin(async {}))).collect();
                started.1.notified().await;
            } else if case == "ours_wake" {
                let (root, cancel) = Context::background().child();
                tasks = (0..ROUND)
                    .map(|_| {
                        let done = root.child().0.done_owned();
                        spawn(Box::pin(async move {
                            black_box(done.await);
                        }))
                    })
                    .collect();
                started.1.notified().await;
                cancel.cancel();
            } else {
                let root = CancellationToken::new();
                tasks = (0..ROUND)
                    .map(|_| spawn(Box::pin(root.child_token().cancelled_owned())))
                    .collect();
                started.1.notified().await;
                root.cancel();
            }
            for task in tasks {
                task.await.expect("a waiter never panics");
            }
        }
    });
}
