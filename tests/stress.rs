//! A bounded multi-threaded stress run: random trees of contexts under one
//! long-lived server root, random cancels from tasks and threads, deadlines
//! of a few milliseconds, waiters, steps and `on_done` callbacks, all at
//! once on a two-worker runtime, for a fixed time.
//!
//! What must hold, checked after every round and at the end:
//!
//! - every waiter wakes (each is bounded by a timeout: a lost wakeup fails
//!   the run instead of hanging it);
//! - every `on_done` callback runs exactly once, unless `stop()` said it
//!   prevented the call, in which case it never runs;
//! - every context and callback is freed: the values they carry are counted
//!   by their `Drop`, and the heap, counted by the allocator, is back at its
//!   baseline once the run is over.
//!
//! It runs for `TOKIO_CTX_STRESS_SECS` seconds (2 by default, so that
//! `cargo test` stays quick; `.ci/run` gives it 30).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant as WallClock};

use tokio::time;
use tokio_ctx::{CancelHandle, Context, OnDone};

mod common;
use common::Rng;

/// Counts the bytes live on the heap.
struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Values carried by contexts and captured by callbacks, counted while
/// alive: once everything has ended and been dropped, none may remain.
static ALIVE: AtomicIsize = AtomicIsize::new(0);

struct Alive;

impl Alive {
    fn new() -> Self {
        ALIVE.fetch_add(1, Ordering::SeqCst);
        Alive
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long a waiter may take to see an end that has happened. It only
/// bounds a hang.
const HANG: Duration = Duration::from_secs(20);

/// One `on_done` registration and how often its callback ran.
struct Callback {
    calls: Arc<AtomicUsize>,
    registration: OnDone,
    stopped: bool,
}

/// What all the rounds add up to.
#[derive(Default)]
struct Totals {
    rounds: AtomicUsize,
    contexts: AtomicUsize,
    waiters: AtomicUsize,
    callbacks: AtomicUsize,
    stopped: AtomicUsize,
    cancels: AtomicUsize,
}

/// One round: a random tree under `server`, waited on, called back on,
/// canceled from here and from `canceler`, then ended as a whole: canceled,
/// or by a deadline of a few milliseconds whose handle is dropped at once
/// (so that waiters register on the server, invariant 9 of the core).
async fn round(server: &Context, seed: u64, canceler: &Mutex<Vec<CancelHandle>>, totals: &Totals) {
    let mut rng = Rng(seed);
    let server = server.with_value(Alive::new());
    let (root, end_round) = if seed % 2 == 0 {
        let (root, handle) = server.child();
        (root, Some(handle))
    } else {
        let budget = Duration::from_micros(rng.next() % 8_000);
        (server.child_with_timeout(budget).0, None)
    };
    let mut contexts = vec![root];
    let mut handles = Vec::new();
    for _ in 0..rng.below(40) + 1 {
        let parent = contexts[rng.below(contexts.len())].clone();
        let (ctx, handle) = match rng.below(5) {
            0 => parent.child(),
            1 => parent.named("stress").child(),
            2 => parent.child_with_timeout(Duration::from_micros(rng.next() % 5_000)),
            3 => parent.with_value(Alive::new()).child(),
            _ => parent.child_with_timeout(Duration::from_secs(3600)),
        };
        contexts.push(ctx);
        match rng.below(3) {
            // Some handles go to the canceling thread, some are canceled
            // here, some are dropped at once (their contexts can then only
            // end through an ancestor).
            0 => canceler.lock().unwrap().push(handle),
            1 => handles.push(handle),
            _ => drop(handle),
        }
    }
    totals.contexts.fetch_add(contexts.len(), Ordering::Relaxed);

    let waiters: Vec<_> = (0..rng.below(30))
        .map(|_| {
            let ctx = contexts[rng.below(contexts.len())].clone();
            tokio::spawn(async move {
                // A step under the waiter's context, and the wait itself.
                let step = ctx.with_timeout(Duration::from_millis(1), |_| {
                    time::sleep(Duration::from_millis(2))
                });
                let _ = step.await;
                time::timeout(HANG, ctx.done()).await.is_ok()
            })
        })
        .collect();
    totals.waiters.fetch_add(waiters.len(), Ordering::Relaxed);

    let mut callbacks: Vec<Callback> = (0..rng.below(20))
        .map(|_| {
            let calls = Arc::new(AtomicUsize::new(0));
            let counted = Arc::clone(&calls);
            let alive = Alive::new();
            let registration = contexts[rng.below(contexts.len())].on_done(move || {
                let _keep = &alive;
                counted.fetch_add(1, Ordering::SeqCst);
            });
            Callback {
                calls,
                registration,
                stopped: false,
            }
        })
        .collect();
    totals
        .callbacks
        .fetch_add(callbacks.len(), Ordering::Relaxed);

    // Cancels, stops and derivations racing the waiters and callbacks.
    for _ in 0..rng.below(10) {
        match rng.below(4) {
            0 if !handles.is_empty() => {
                let handle = handles.swap_remove(rng.below(handles.len()));
                handle.cancel_with("canceled in the round");
                totals.cancels.fetch_add(1, Ordering::Relaxed);
            }
            1 if !callbacks.is_empty() => {
                let i = rng.below(callbacks.len());
                if callbacks[i].registration.stop() {
                    callbacks[i].stopped = true;
                    totals.stopped.fetch_add(1, Ordering::Relaxed);
                }
            }
            2 => tokio::task::yield_now().await,
            _ => time::sleep(Duration::from_micros(rng.next() % 2_000)).await,
        }
    }
    if let Some(end_round) = end_round {
        end_round.cancel_with("the round is over");
    }

    for (i, waiter) in waiters.into_iter().enumerate() {
        let woke = waiter.await.expect("a waiter panicked");
        assert!(woke, "lost wakeup: waiter {i} of round {seed} never woke");
    }
    // Callbacks on contexts with a deadline may run on a task of their
    // own; give them time, boundedly.
    let until = WallClock::now() + HANG;
    for (i, callback) in callbacks.iter().enumerate() {
        let expected = usize::from(!callback.stopped);
        while callback.calls.load(Ordering::SeqCst) != expected && WallClock::now() < until {
            time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            callback.calls.load(Ordering::SeqCst),
            expected,
            "callback {i} of round {seed} (stopped: {})",
            callback.stopped
        );
        assert!(!callback.registration.stop(), "nothing is left to stop");
    }
    totals.rounds.fetch_add(1, Ordering::Relaxed);
}

/// Rounds on `clients` tasks until `until`, while a thread cancels the
/// handles the rounds give it and checks contexts synchronously.
fn run(clients: u64, until: WallClock, totals: Arc<Totals>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let (server, stop_server) = Context::background().named("server").child();
    let canceler_handles = Arc::new(Mutex::new(Vec::<CancelHandle>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let canceler = {
        let handles = Arc::clone(&canceler_handles);
        let done = Arc::clone(&done);
        let server = server.clone();
        let totals = Arc::clone(&totals);
        thread::spawn(move || {
            let mut rng = Rng(u64::MAX);
            while !done.load(Ordering::SeqCst) {
                let handle = {
                    let mut handles = handles.lock().unwrap();
                    let len = handles.len();
                    (len > 0).then(|| handles.swap_remove(rng.below(len)))
                };
                match handle {
                    Some(handle) => {
                        handle.cancel_with("canceled by another thread");
                        totals.cancels.fetch_add(1, Ordering::Relaxed);
                    }
                    None => thread::yield_now(),
                }
                assert!(!server.is_done(), "the server outlives every round");
            }
        })
    };
    runtime.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|client| {
                let server = server.clone();
                let handles = Arc::clone(&canceler_handles);
                let totals = Arc::clone(&totals);
                tokio::spawn(async move {
                    let mut seed = client << 40;
                    while WallClock::now() < until {
                        round(&server, seed, &handles, &totals).await;
                        seed += 1;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a round failed");
        }
    });
    done.store(true, Ordering::SeqCst);
    canceler.join().expect("the canceling thread failed");
    canceler_handles.lock().unwrap().clear();
    // Everything that ended must be let go, also while the server lives
    // on: watchers, registrations and the values they keep.
    let until = WallClock::now() + HANG;
    while ALIVE.load(Ordering::SeqCst) != 0 && WallClock::now() < until {
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        ALIVE.load(Ordering::SeqCst),
        0,
        "values of contexts or callbacks still alive after every round ended"
    );
    stop_server.cancel();
    drop(server);
    drop(runtime);
}

fn seconds() -> f64 {
    std::env::var("TOKIO_CTX_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0)
}

/// One test in this binary, so that nothing else allocates while the heap
/// is counted.
#[test]
fn stress() {
    // A short first run, so that what the process keeps once (tokio's and
    // this crate's statics, the test harness's buffers) is in the baseline.
    run(
        2,
        WallClock::now() + Duration::from_millis(200),
        Arc::default(),
    );
    let baseline = HEAP.load(Ordering::SeqCst);

    let totals = Arc::new(Totals::default());
    let secs = seconds();
    let started = WallClock::now();
    run(
        8,
        started + Duration::from_secs_f64(secs),
        Arc::clone(&totals),
    );
    let grown = HEAP.load(Ordering::SeqCst) - baseline;
    eprintln!(
        "stress: {} rounds in {:.1}s: {} contexts, {} waiters, {} callbacks ({} stopped), \
         {} cancels; heap {grown:+} bytes against the baseline",
        totals.rounds.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        totals.contexts.load(Ordering::Relaxed),
        totals.waiters.load(Ordering::Relaxed),
        totals.callbacks.load(Ordering::Relaxed),
        totals.stopped.load(Ordering::Relaxed),
        totals.cancels.load(Ordering::Relaxed),
    );
    assert!(totals.rounds.load(Ordering::Relaxed) > 0);
    // Allow the runtime's and the harness's own bookkeeping a little.
    assert!(grown.abs() < 64 * 1024, "{grown} bytes left behind");
}
