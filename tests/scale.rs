//! Scale: chains a million deep, a million live children, a million
//! derive/drop cycles. Memory is counted by a counting allocator, so the
//! assertions are exact and independent of the machine's speed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio_ctx::Context;
use tokio_util::sync::CancellationToken;

/// Counts the bytes live on the heap, and the allocations made.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

/// One test, so that nothing else in this binary allocates while the heap
/// is being counted.
#[test]
fn scale() {
    a_chain_a_million_deep_builds_checks_cancels_and_drops_on_a_64_kib_stack();
    a_million_live_children_cost_a_bounded_size_each_and_leave_no_trace();
    a_million_derive_and_drop_cycles_return_to_the_baseline();
    steps_and_races_allocate_only_what_they_hold();
}

fn a_chain_a_million_deep_builds_checks_cancels_and_drops_on_a_64_kib_stack() {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| {
            let (root, cancel) = Context::background().named("root").child();
            let mut leaf = root.clone();
            for _ in 0..1_000_000 {
                leaf = leaf.child().0;
            }
            assert!(!leaf.is_done());
            cancel.cancel_with("stop");
            assert!(leaf.is_done());
            assert_eq!(leaf.err().unwrap().context_name(), Some("root"));
            drop(root);
            drop(leaf);
        })
        .unwrap()
        .join()
        .unwrap();
}

fn a_million_live_children_cost_a_bounded_size_each_and_leave_no_trace() {
    // The vectors hold each child's handles; what is left is the child itself.
    let ours = per_child(|| Context::background().child(), |root| root.0.child());
    let peer = per_child(CancellationToken::new, CancellationToken::child_token);
    eprintln!(
        "heap per live child: {ours:.0} bytes, a CancellationToken child {peer:.0} bytes, ratio {:.2}",
        ours / peer
    );
    // One node in an Arc: seven words and the two counters.
    assert!(ours <= 72.0, "a child costs {ours} bytes");
}

/// The heap a live child costs, from a million children of one root; fails
/// if dropping them does not return the heap to where it was.
fn per_child<R, C>(root: impl FnOnce() -> R, child: impl Fn(&R) -> C) -> f64 {
    let root = root();
    let baseline = live();
    let children: Vec<C> = (0..1_000_000).map(|_| child(&root)).collect();
    let handles = std::mem::size_of::<C>() as f64;
    let per_child = (live() - baseline) as f64 / 1e6 - handles;
    drop(children);
    // Allow the test harness's own thread a little, against the 100 MiB the
    // children took.
    let left = live() - baseline;
    assert!(left.abs() < 4096, "{left} bytes left after dropping them");
    per_child
}

fn a_million_derive_and_drop_cycles_return_to_the_baseline() {
    let (root, _cancel) = Context::background().child();
    // Something waits on the root, so that children that are waited on link
    // into it: those links must be removed again.
    let waiter = root.on_done(|| {});
    let baseline = live();
    for i in 0..1_000_000 {
        let (child, cancel) = root.child();
        if i % 2 == 0 {
            let on_done = child.on_done(|| {});
            if i % 4 == 0 {
                cancel.cancel();
            } else {
                on_done.stop();
            }
        }
    }
    // The root's wait list may keep its capacity; nothing else may remain.
    let grown = live() - baseline;
    assert!(grown < 4096, "{grown} bytes left behind");
    drop(waiter);
}

/// A future that is pending on its first poll and ready on its second.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Allocations per run of `make()`, in a runtime, once warmed up.
fn allocations_per<F, Fut>(rt: &tokio::runtime::Runtime, make: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future,
{
    rt.block_on(async {
        for _ in 0..100 {
            make().await;
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..1_000 {
            make().await;
        }
        (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 1_000.0
    })
}

fn steps_and_races_allocate_only_what_they_hold() {
    // The documented costs (docs/performance.md): a step's child comes from
    // the thread's spare nodes and its timer lives in the step; a race of
    // closures of different types keeps its branches and its timer in
    // place; a list race of a few boxes each branch in one vector, and its
    // timer, so that it stays `Unpin`.
    const HOUR: Duration = Duration::from_secs(3600);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (parent, _cancel) = Context::background().child_with_timeout(HOUR);
    let ready = allocations_per(&rt, || parent.with_timeout(HOUR, |_| async { 1 }));
    assert_eq!(ready, 0.0, "a step that is ready at once");
    let waits = allocations_per(&rt, || parent.with_timeout(HOUR, |_| PendingOnce(false)));
    assert_eq!(waits, 0.0, "a step that waits once");
    let yields = |n: usize| async move {
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
        n
    };
    let fixed = allocations_per(&rt, || {
        tokio_ctx::race!(parent, |_ctx| yields(1), |_ctx| yields(3))
    });
    assert_eq!(fixed, 0.0, "race! of two");
    let either = allocations_per(&rt, || parent.race_either(|_| yields(1), |_| yields(3)));
    assert_eq!(either, 0.0, "race_either");
    let listed = allocations_per(&rt, || parent.race([1, 3].map(|n| move |_ctx| yields(n))));
    assert_eq!(
        listed, 4.0,
        "a list race of two: the list, a box per racer and the timer"
    );
}
