//! tokio-ctx against the peers a user would otherwise wire by hand, case by
//! case in the same run: tokio-util's `CancellationToken` and `tokio::time`.
//!
//! Every group is one case with two functions, `ours` and `peer`; the
//! `bench_report` example reads criterion's estimates and prints the ratios.
//!
//! ```text
//! cargo bench --bench peers
//! cargo run --release --example bench_report
//! ```

use std::future::{ready, Future};
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context as TaskContext, Poll};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tokio::runtime::{Builder, Runtime};
use tokio::time::Instant;
use tokio_ctx::Context;
use tokio_util::sync::CancellationToken;

const HOUR: Duration = Duration::from_secs(3600);

fn runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn chain(depth: usize) -> (Context, Vec<tokio_ctx::CancelHandle>) {
    let mut ctx = Context::background();
    let mut handles = Vec::new();
    for _ in 0..depth {
        let (child, handle) = ctx.child();
        ctx = child;
        handles.push(handle);
    }
    (ctx, handles)
}

fn token_chain(depth: usize) -> CancellationToken {
    let mut token = CancellationToken::new();
    for _ in 1..depth {
        token = token.child_token();
    }
    token
}

fn is_done(c: &mut Criterion) {
    let mut group = c.benchmark_group("is_done live, no deadline");
    let (ctx, _handles) = chain(1);
    let token = CancellationToken::new();
    group.bench_function("ours", |b| b.iter(|| black_box(&ctx).is_done()));
    group.bench_function("peer", |b| b.iter(|| black_box(&token).is_cancelled()));
    group.finish();

    let mut group = c.benchmark_group("is_done live, 64 deep");
    let (deep, _handles) = chain(64);
    let token = CancellationToken::new();
    group.bench_function("ours", |b| b.iter(|| black_box(&deep).is_done()));
    group.bench_function("peer", |b| b.iter(|| black_box(&token).is_cancelled()));
    group.finish();

    let mut group = c.benchmark_group("is_done live, with deadline");
    let rt = runtime();
    let _guard = rt.enter();
    let (timed, _handle) = Context::background().child_with_timeout(HOUR);
    group.bench_function("ours", |b| b.iter(|| black_box(&timed).is_done()));
    group.bench_function("peer", |b| b.iter(Instant::now));
    group.finish();
}

fn derive(c: &mut Criterion) {
    let mut group = c.benchmark_group("derive child + drop");
    let (parent, _handle) = Context::background().child();
    let token = CancellationToken::new();
    group.bench_function("ours", |b| b.iter(|| black_box(parent.child())));
    group.bench_function("peer", |b| b.iter(|| black_box(token.child_token())));
    group.finish();

    let mut group = c.benchmark_group("derive child with 1h timeout + drop");
    let rt = runtime();
    let _guard = rt.enter();
    group.bench_function("ours", |b| {
        b.iter(|| black_box(parent.child_with_timeout(HOUR)))
    });
    group.bench_function("peer", |b| {
        b.iter(|| {
            let child = token.child_token();
            let timeout = tokio::time::timeout(HOUR, ready(()));
            black_box((child, timeout))
        })
    });
    group.finish();
}

/// Time for `iters` derivations split across two threads from one parent.
fn two_threads<F>(iters: u64, derive: F) -> Duration
where
    F: Fn() + Send + Sync + Copy + 'static,
{
    let per_thread = iters / 2 + 1;
    let start_line = Arc::new(Barrier::new(3));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let start_line = Arc::clone(&start_line);
            thread::spawn(move || {
                start_line.wait();
                for _ in 0..per_thread {
                    derive();
                }
            })
        })
        .collect();
    start_line.wait();
    let start = StdInstant::now();
    for worker in workers {
        worker.join().unwrap();
    }
    start.elapsed()
}

fn contended_derive(c: &mut Criterion) {
    let mut group = c.benchmark_group("derive + drop, two threads, one parent");
    static PARENT: std::sync::OnceLock<(Context, tokio_ctx::CancelHandle)> =
        std::sync::OnceLock::new();
    static TOKEN: std::sync::OnceLock<CancellationToken> = std::sync::OnceLock::new();
    let parent = || &PARENT.get_or_init(|| Context::background().child()).0;
    let token = || TOKEN.get_or_init(CancellationToken::new);
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, move || {
                let _ = black_box(parent().child());
            })
        })
    });
    group.bench_function("peer", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, move || {
                black_box(token().child_token());
            })
        })
    });
    group.finish();
}

/// Runs `make()` to completion `iters` times inside one runtime, so that the
/// runtime's own entry cost is not part of the measurement.
fn in_runtime<F, Fut>(rt: &Runtime, iters: u64, make: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future,
{
    rt.block_on(async {
        let start = StdInstant::now();
        for _ in 0..iters {
            black_box(make().await);
        }
        start.elapsed()
    })
}

/// A future that is pending on its first poll and ready on its second.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A replica that answers after `yields` trips through the scheduler.
async fn replica(yields: usize) -> usize {
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
    yields
}

fn combinators(c: &mut Criterion) {
    let rt = runtime();
    let (parent, _handle) = Context::background().child();
    let token = CancellationToken::new();

    let mut group = c.benchmark_group("with_timeout(1h, ready)");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| in_runtime(&rt, iters, || parent.with_timeout(HOUR, |_| ready(1))))
    });
    group.bench_function("peer", |b| {
        b.iter_custom(|iters| {
            in_runtime(&rt, iters, || {
                token.run_until_cancelled(tokio::time::timeout(HOUR, ready(1)))
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("with_timeout(1h, pending once)");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            in_runtime(&rt, iters, || {
                parent.with_timeout(HOUR, |_| PendingOnce(false))
            })
        })
    });
    group.bench_function("peer", |b| {
        b.iter_custom(|iters| {
            in_runtime(&rt, iters, || {
                token.run_until_cancelled(tokio::time::timeout(HOUR, PendingOnce(false)))
            })
        })
    });
    group.finish();

    // The request bench's race: two replicas, one ready after one yield and
    // one after three. The peer is what a careful user writes by hand: a
    // child token per replica, so that whatever a replica started stops
    // with it, and the loser's token canceled.
    let select = || async {
        let (first, second) = (token.child_token(), token.child_token());
        let won = tokio::select! {
            out = first.run_until_cancelled(replica(1)) => (0, out),
            out = second.run_until_cancelled(replica(3)) => (1, out),
        };
        match won.0 {
            0 => second.cancel(),
            _ => first.cancel(),
        }
        won
    };
    let mut group = c.benchmark_group("race of 2, ready after 1 and 3 yields");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            in_runtime(&rt, iters, || {
                parent.race([1, 3].map(|yields| move |_ctx| replica(yields)))
            })
        })
    });
    group.bench_function("peer", |b| {
        b.iter_custom(|iters| in_runtime(&rt, iters, select))
    });
    group.finish();

    // The same race with the fixed-arity macro: what `select!` is to a list.
    let mut group = c.benchmark_group("race! of 2, ready after 1 and 3 yields");
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            in_runtime(&rt, iters, || {
                tokio_ctx::race!(parent, |_ctx| replica(1), |_ctx| replica(3))
            })
        })
    });
    group.bench_function("peer", |b| {
        b.iter_custom(|iters| in_runtime(&rt, iters, select))
    });
    group.finish();

    let mut group = c.benchmark_group("first poll + drop of done(), 64 deep");
    let (deep, _handles) = chain(64);
    let deep_token = token_chain(64);
    let mut cx = TaskContext::from_waker(futures::task::noop_waker_ref());
    group.bench_function("ours", |b| {
        b.iter(|| {
            let done = pin!(deep.done());
            black_box(done.poll(&mut cx).is_pending())
        })
    });
    group.bench_function("peer", |b| {
        b.iter(|| {
            let cancelled = pin!(deep_token.cancelled());
            black_box(cancelled.poll(&mut cx).is_pending())
        })
    });
    group.finish();
}

fn cancel_wide(c: &mut Criterion) {
    let mut group = c.benchmark_group("cancel a root with 10,000 children, nobody waiting");
    group.sample_size(20);
    group.bench_function("ours", |b| {
        b.iter_batched(
            || {
                let (root, cancel) = Context::background().child();
                let children: Vec<_> = (0..10_000).map(|_| root.child()).collect();
                (cancel, children)
            },
            |(cancel, children)| {
                cancel.cancel();
                children
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("peer", |b| {
        b.iter_batched(
            || {
                let root = CancellationToken::new();
                let children: Vec<_> = (0..10_000).map(|_| root.child_token()).collect();
                (root, children)
            },
            |(root, children)| {
                root.cancel();
                children
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("cancel a root with 1,000 awaited children until all woke");
    group.sample_size(20);
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (root, cancel) = Context::background().child();
                    let started = Arc::new(AtomicUsize::new(0));
                    let waiters: Vec<_> = (0..1_000)
                        .map(|_| spawn_waiter(&started, root.child().0.done_owned()))
                        .collect();
                    all_started(&started, 1_000).await;
                    let start = StdInstant::now();
                    cancel.cancel();
                    for waiter in waiters {
                        let _ = waiter.await;
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.bench_function("peer", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let root = CancellationToken::new();
                    let started = Arc::new(AtomicUsize::new(0));
                    let waiters: Vec<_> = (0..1_000)
                        .map(|_| spawn_waiter(&started, root.child_token().cancelled_owned()))
                        .collect();
                    all_started(&started, 1_000).await;
                    let start = StdInstant::now();
                    root.cancel();
                    for waiter in waiters {
                        let _ = waiter.await;
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();
}

/// Spawns a task that counts itself in `started` and then awaits `wait`,
/// in the same poll: once the count is complete, every task is waiting.
fn spawn_waiter<W>(started: &Arc<AtomicUsize>, wait: W) -> tokio::task::JoinHandle<W::Output>
where
    W: Future + Send + 'static,
    W::Output: Send + 'static,
{
    let started = Arc::clone(started);
    tokio::spawn(async move {
        started.fetch_add(1, Ordering::Relaxed);
        wait.await
    })
}

async fn all_started(started: &AtomicUsize, count: usize) {
    while started.load(Ordering::Relaxed) < count {
        tokio::task::yield_now().await;
    }
}

fn values(c: &mut Criterion) {
    #[derive(Debug)]
    struct Wanted(u64);
    struct Other(#[allow(dead_code)] u64);
    let mut ctx = Context::background().with_value(Wanted(7));
    for i in 0..9 {
        ctx = ctx.with_value(Other(i));
    }
    let mut group = c.benchmark_group("value lookup 10 deep");
    group.bench_function("ours", |b| {
        b.iter(|| black_box(&ctx).value::<Wanted>().map(|w| w.0))
    });
    group.finish();

    let mut group = c.benchmark_group("with_value on 10 deep + drop");
    group.bench_function("ours", |b| {
        b.iter(|| black_box(black_box(&ctx).with_value(Wanted(8))))
    });
    group.finish();
}

criterion_group!(
    benches,
    is_done,
    derive,
    contended_derive,
    combinators,
    cancel_wide,
    values
);
criterion_main!(benches);
