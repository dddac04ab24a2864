//! Scale: chains a million deep, a million live children, a million
//! derive/drop cycles. Memory is counted by a counting allocator, so the
//! assertions are exact and independent of the machine's speed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

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

/// One test, so that nothing else in this binary allocates while the heap
/// is being counted.
#[test]
fn scale() {
    a_chain_a_million_deep_builds_checks_cancels_and_drops_on_a_64_kib_stack();
    a_million_live_children_cost_a_bounded_size_each_and_leave_no_trace();
    a_million_derive_and_drop_cycles_return_to_the_baseline();
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
