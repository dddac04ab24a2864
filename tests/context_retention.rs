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
use std::task::{Context as TaskContext, Waker};

use tokio_ctx::Context;

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
}

/// Registers a waiter on `ctx` and leaves it registered: a future polled
/// once with a no-op waker.
fn waiter(ctx: &Context) -> Pin<Box<impl Future<Output = tokio_ctx::Error>>> {
    let mut done = Box::pin(ctx.done_owned());
    let mut cx = TaskContext::from_waker(Waker::noop());
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
