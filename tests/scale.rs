//! Scale: chains a million deep, a million live children, a million
//! derive/drop cycles. Memory is counted by a counting allocator, so the
//! assertions are exact and independent of the machine's speed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

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
    let (root, _cancel) = Context::background().child();
    let baseline = live();
    let children: Vec<_> = (0..1_000_000).map(|_| root.child()).collect();
    let per_child = (live() - baseline) as f64 / 1e6;
    // The vector holds a Context and a CancelHandle per child (24 bytes);
    // the rest is the child's own node.
    let node = per_child - 24.0;
    drop(children);
    // Allow the test harness's own thread a little, against the 120 MiB the
    // children took.
    let left = live() - baseline;
    eprintln!("heap per live child: {node:.0} bytes (plus 24 bytes of handles in the vector)");
    assert!(node <= 144.0, "a child costs {node} bytes");
    assert!(left.abs() < 4096, "{left} bytes left after dropping them");
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
