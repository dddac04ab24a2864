//! Nothing a context starts outlives it: every waiter, callback and deadline
//! watcher gives its memory back once its context has ended or is gone.
//! Bursts of waiters on a long-lived root, callbacks and tokens with
//! deadlines whose handles are all dropped, and token-seeded children.
//!
//! Memory is counted by a counting allocator, so the assertions are exact
//! and independent of the machine's speed; everything runs in one test so
//! that nothing else in this binary allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::task::Context as TaskContext;
use std::time::Duration;

use tokio_ctx::Context;
use tokio_util::sync::CancellationToken;

/// Counts the bytes live on the heap.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// What may be left after a scenario that took megabytes: the test
/// harness's own bookkeeping.
const SLACK: isize = 4096;

fn assert_back(baseline: isize, what: &str) {
    let left = live() - baseline;
    assert!(left.abs() < SLACK, "{what}: {left} bytes left behind");
}

#[test]
fn retention() {
    a_burst_of_waiters_on_a_long_lived_root_gives_its_memory_back();
    a_burst_around_a_waiter_that_stays_gives_its_memory_back();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        deadline_callbacks_and_tokens_whose_contexts_are_dropped_free_everything().await;
        stopped_deadline_callbacks_free_their_watch_at_once().await;
        token_seeded_children_dropped_without_their_guard_free_everything().await;
        awaited_deadlines_free_their_timers().await;
    });
}

/// Registers a waiter on `ctx` and leaves it registered: a future polled
/// once with a no-op waker.
fn waiter(ctx: &Context) -> Pin<Box<impl Future<Output = tokio_ctx::Error>>> {
    let mut done = Box::pin(ctx.done_owned());
    let mut cx = TaskContext::from_waker(futures::task::noop_waker_ref());
    assert!(done.as_mut().poll(&mut cx).is_pending());
    done
}

fn a_burst_of_waiters_on_a_long_lived_root_gives_its_memory_back() {
    let (root, _cancel) = Context::background().child();
    // Waiters on handle-less children wait on the root (the nearest
    // context that can be canceled): a server's root sees them all.
    drop(waiter(&root.child().0));
    let baseline = live();
    let burst: Vec<_> = (0..100_000).map(|_| waiter(&root.child().0)).collect();
    assert!(live() - baseline > 100_000 * 24, "the burst is on the heap");
    drop(burst);
    assert_back(baseline, "a burst of 100,000 waiters");
}

fn a_burst_around_a_waiter_that_stays_gives_its_memory_back() {
    let (root, _cancel) = Context::background().child();
    let stays = waiter(&root);
    let baseline = live();
    let burst: Vec<_> = (0..100_000).map(|_| waiter(&root.child().0)).collect();
    drop(burst);
    assert_back(baseline, "a burst next to a waiter that stays");
    drop(stays);
}

/// Lets the runtime run whatever was woken, without moving the clock, until
/// no task is left (none of the scenarios leaves one running) or a bound.
async fn settle() {
    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..100_000 {
        tokio::task::yield_now().await;
        if metrics.num_alive_tasks() == 0 {
            return;
        }
    }
}

async fn deadline_callbacks_and_tokens_whose_contexts_are_dropped_free_everything() {
    let hour = Duration::from_secs(3600);
    let (root, _cancel) = Context::background().child();
    // A first round allocates what lives for the process (the clock's
    // origin, the deadline driver's thread-local slot).
    {
        let (ctx, _) = root.child_with_timeout(hour);
        drop(ctx.on_done(|| {}));
    }
    settle().await;
    let baseline = live();
    let mut tokens = Vec::new();
    for i in 0..1_000 {
        let (ctx, cancel) = root.with_value([0u8; 1024]).child_with_timeout(hour);
        if i % 2 == 0 {
            tokens.push(ctx.cancellation_token());
        } else {
            drop(ctx.on_done(|| {}));
        }
        // Half end by cancellation, half by being dropped (each half with
        // tokens and callbacks).
        if i % 4 < 2 {
            cancel.cancel();
        }
        drop((ctx, cancel));
    }
    settle().await;
    assert!(
        tokens.iter().all(CancellationToken::is_cancelled),
        "a token whose context ended or is gone is released"
    );
    drop(tokens);
    assert_back(baseline, "1,000 deadline callbacks and tokens");
}

async fn stopped_deadline_callbacks_free_their_watch_at_once() {
    let hour = Duration::from_secs(3600);
    let contexts: Vec<_> = (0..1_000)
        .map(|_| Context::background().child_with_timeout(hour))
        .collect();
    // The first registration allocates each context's wait state.
    for (ctx, _) in &contexts {
        assert!(ctx.on_done(|| {}).stop());
    }
    settle().await;
    let baseline = live();
    for (ctx, _) in &contexts {
        assert!(ctx.on_done(|| {}).stop());
    }
    settle().await;
    assert_back(baseline, "1,000 stopped deadline callbacks");
}

async fn token_seeded_children_dropped_without_their_guard_free_everything() {
    let (root, _cancel) = Context::background().child();
    let token = CancellationToken::new();
    let round = || {
        for _ in 0..1_000 {
            let child = root.with_value([0u8; 1024]).child_with_token(token.clone());
            drop(child);
        }
    };
    // A first round grows the runtime's own queues to hold 1,000 tasks.
    round();
    settle().await;
    let baseline = live();
    round();
    settle().await;
    assert_back(baseline, "1,000 token-seeded children");
}

async fn awaited_deadlines_free_their_timers() {
    let (root, _cancel) = Context::background().child();
    drop(waiter(&root.child_with_timeout(Duration::from_secs(60)).0));
    settle().await;
    let baseline = live();
    let waiters: Vec<_> = (0..1_000)
        .map(|_| waiter(&root.child_with_timeout(Duration::from_secs(60)).0))
        .collect();
    drop(waiters);
    settle().await;
    assert_back(baseline, "1,000 awaited deadlines");
}
