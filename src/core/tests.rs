//! Unit tests of the core's bookkeeping: what a waiter leaves behind.

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;
use std::task::{Wake, Waker};

use super::{Entry, Meta, Node};

fn meta() -> Meta {
    Meta::new(std::panic::Location::caller(), None)
}

fn node(parent: Option<&Arc<Node>>) -> Arc<Node> {
    Arc::new(Node::new(parent, super::Deadline::NONE, None, None, meta()))
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, StdOrdering::SeqCst);
    }
}

fn waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker::default());
    (Arc::clone(&counter), Waker::from(counter))
}

#[test]
fn first_waiter_links_the_path_once_and_a_dropped_child_unlinks() {
    let root = node(None);
    let mid = node(Some(&root));
    let leaf = node(Some(&mid));

    let (_, w) = waker();
    let first = leaf.register(Entry::Waker(w.clone())).unwrap();
    assert_eq!(leaf.waiting(), 1);
    assert_eq!(mid.waiting(), 1, "the leaf is linked into its parent");
    assert_eq!(root.waiting(), 1, "and the parent into the root");

    let second = leaf.register(Entry::Waker(w)).unwrap();
    assert_eq!(mid.waiting(), 1, "a second waiter does not link again");

    leaf.deregister(first);
    leaf.deregister(second);
    assert_eq!(leaf.waiting(), 0);
    assert_eq!(mid.waiting(), 1, "the link stays while the leaf lives");

    drop(leaf);
    assert_eq!(mid.waiting(), 0, "a dropped child removes its link");
    drop(mid);
    assert_eq!(root.waiting(), 0, "all the way up");
}

#[test]
fn cancel_wakes_every_linked_waiter_and_closes_the_lists() {
    let root = node(None);
    let a = node(Some(&root));
    let b = node(Some(&root));
    let (count, w) = waker();
    a.register(Entry::Waker(w.clone())).unwrap();
    b.register(Entry::Waker(w.clone())).unwrap();

    assert!(root.cancel(None));
    assert_eq!(count.0.load(StdOrdering::SeqCst), 2);
    assert!(
        a.register(Entry::Waker(w)).is_err(),
        "a closed list refuses entries"
    );
    assert!(!root.cancel(None), "the first cancellation wins");
}

#[test]
fn many_short_lived_children_leave_the_root_as_it_was() {
    let root = node(None);
    let (_, w) = waker();
    let keep = root.register(Entry::Waker(w.clone())).unwrap();
    for _ in 0..10_000 {
        let child = node(Some(&root));
        let key = child.register(Entry::Waker(w.clone())).unwrap();
        child.deregister(key);
    }
    assert_eq!(root.waiting(), 1, "only the root's own waiter remains");
    root.deregister(keep);
    assert_eq!(Arc::strong_count(&root), 1, "no child keeps a reference");
}

#[test]
fn a_chain_far_deeper_than_the_stack_links_cancels_and_drops() {
    // Run on a thread with a small stack: any recursion over the depth
    // would overflow it.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let root = node(None);
            let mut leaf = Arc::clone(&root);
            for _ in 0..100_000 {
                leaf = node(Some(&leaf));
            }
            let (count, w) = waker();
            leaf.register(Entry::Waker(w)).unwrap();
            assert!(!leaf.is_done());
            assert!(root.cancel(None));
            assert!(leaf.is_done());
            assert_eq!(count.0.load(StdOrdering::SeqCst), 1);
            drop(root);
            drop(leaf);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_node_fits_in_seven_words() {
    // What a live child costs on the heap, with the Arc's two counters:
    // 72 bytes, against about 125 for a CancellationToken child.
    assert!(
        std::mem::size_of::<Node>() <= 56,
        "{}",
        std::mem::size_of::<Node>()
    );
}

#[test]
fn a_waiter_on_a_child_without_handle_waits_on_the_nearest_parent_with_one() {
    let root = node(None);
    let mid = node(Some(&root));
    let leaf = node(Some(&mid));
    mid.handle_dropped();
    leaf.handle_dropped();
    let target = leaf.wait_target().expect("the root keeps its handle");
    assert!(
        Arc::ptr_eq(target, &root),
        "past every node without a handle"
    );
    assert!(leaf.shared.get().is_none(), "the leaf needs no wait state");

    // A cloned handle keeps the node a target even after one clone goes.
    let shared = node(Some(&root));
    shared.handle_cloned();
    shared.handle_dropped();
    assert!(Arc::ptr_eq(shared.wait_target().unwrap(), &shared));

    // With no handle anywhere up the chain, only a deadline can end it.
    root.handle_dropped();
    assert!(leaf.wait_target().is_none());
}

fn derive(parent: Option<&Arc<Node>>) -> Arc<Node> {
    Node::in_spare(Node::new(parent, super::Deadline::NONE, None, None, meta()))
}

#[test]
fn a_recycled_node_is_reused_by_the_next_derivation_on_the_thread() {
    let root = node(None);
    let first = derive(Some(&root));
    let address = Arc::as_ptr(&first);
    let before = super::spare::count();
    Node::recycle(first);
    assert_eq!(super::spare::count(), before + 1);
    assert_eq!(Arc::strong_count(&root), 1, "a spare keeps no parent alive");
    let second = derive(Some(&root));
    assert_eq!(Arc::as_ptr(&second), address, "the same allocation");
    assert!(!second.is_done());
    assert!(Arc::ptr_eq(second.parent().unwrap(), &root));
}

#[test]
fn a_node_that_someone_else_holds_is_not_recycled() {
    let root = node(None);
    let child = derive(Some(&root));
    let clone = Arc::clone(&child);
    let before = super::spare::count();
    Node::recycle(child);
    assert_eq!(super::spare::count(), before, "a clone is alive");
    let grandchild = derive(Some(&clone));
    Node::recycle(clone);
    assert_eq!(super::spare::count(), before, "a descendant holds it");
    drop(grandchild);
}

#[test]
fn recycling_a_node_with_pending_callbacks_runs_them_as_its_drop_would() {
    // Invariant 11: a node nothing can end any more runs its callbacks;
    // the cache must not swallow them with the node's wait state.
    let fired = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fired);
    let root = derive(None);
    root.register(Entry::Callback(Arc::new(super::Callback::new(move || {
        counter.fetch_add(1, StdOrdering::SeqCst);
    }))))
    .unwrap();
    Node::recycle(root);
    assert_eq!(fired.load(StdOrdering::SeqCst), 1);
}

fn cause(text: &'static str) -> super::Cause {
    super::Cause::User(Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(
        text,
    )))
}

#[test]
fn a_reused_node_carries_nothing_from_its_previous_life() {
    // Invariant 13: the first life had a name, its own deadline and a
    // cancellation record; the second, derived plainly under another
    // parent, must show none of them and be reachable from its new parent.
    let (old_parent, new_parent) = (node(None), node(None));
    let hour = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
    let first = Node::in_spare(Node::new(
        Some(&old_parent),
        super::Deadline::new(Some(hour)),
        None,
        Some("first life".into()),
        meta(),
    ));
    assert_eq!(first.name().as_deref(), Some("first life"));
    assert_eq!(first.deadline(), Some(hour));
    assert!(first.cancel(Some(cause("first cause"))));
    assert!(first.is_canceled());
    let address = Arc::as_ptr(&first);
    Node::recycle(first);
    assert_eq!(
        Arc::strong_count(&old_parent),
        1,
        "the old parent is let go"
    );

    let second = derive(Some(&new_parent));
    assert_eq!(Arc::as_ptr(&second), address, "the same allocation");
    assert_eq!(second.name(), None);
    assert_eq!(second.deadline(), None);
    assert!(!second.is_done());
    assert!(!second.is_canceled());
    assert!(second.ending().is_none());
    assert!(!second.ever_awaited());
    assert_eq!(second.waiting(), 0);
    assert!(Arc::ptr_eq(second.parent().unwrap(), &new_parent));

    // Live under its new parent: a waiter on it hears the parent's cancel.
    let (woken, w) = waker();
    second.register(Entry::Waker(w)).unwrap();
    assert!(new_parent.cancel(Some(cause("second cause"))));
    assert_eq!(woken.0.load(StdOrdering::SeqCst), 1);
    assert!(second.is_done());
    assert!(!old_parent.is_done(), "the old parent heard nothing");
}

#[test]
fn a_node_that_was_waited_on_is_never_reused() {
    // Its wait state may still be reachable through a list it was linked
    // into: only a drop may empty it (invariant 13). A waker that came and
    // went and a callback still registered both count.
    let root = node(None);
    let waited = derive(Some(&root));
    let (_, w) = waker();
    let key = waited.register(Entry::Waker(w)).unwrap();
    waited.deregister(key);
    let with_callback = derive(Some(&root));
    let fired = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fired);
    with_callback
        .register(Entry::Callback(Arc::new(super::Callback::new(move || {
            counter.fetch_add(1, StdOrdering::SeqCst);
        }))))
        .unwrap();
    let before = super::spare::count();
    Node::recycle(waited);
    Node::recycle(with_callback);
    assert_eq!(super::spare::count(), before, "neither was kept");
    assert_eq!(fired.load(StdOrdering::SeqCst), 1, "the callback ran once");
    assert_eq!(root.waiting(), 0, "both were unlinked");

    let next = derive(Some(&root));
    assert!(!next.ever_awaited());
    assert_eq!(next.waiting(), 0);
    assert!(!next.is_done());
}

#[test]
fn the_cache_keeps_eight_spares_and_hands_back_the_last_kept_first() {
    let root = node(None);
    let children: Vec<_> = (0..10).map(|_| derive(Some(&root))).collect();
    let addresses: Vec<_> = children.iter().map(Arc::as_ptr).collect();
    for child in children {
        Node::recycle(child);
    }
    assert_eq!(super::spare::count(), 8, "at most eight, the rest freed");
    assert_eq!(
        Arc::strong_count(&root),
        1,
        "no spare keeps the parent alive"
    );
    // The eighth recycled is on top.
    let next = derive(Some(&root));
    assert_eq!(Arc::as_ptr(&next), addresses[7]);
    assert_eq!(super::spare::count(), 7);
}

#[test]
fn recycling_the_last_child_of_a_dropped_parent_runs_the_parents_callbacks() {
    // Invariant 11 through the spares: the recycled child held the last
    // reference to its parent, whose callback is due when it goes.
    let fired = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fired);
    let parent = derive(None);
    parent
        .register(Entry::Callback(Arc::new(super::Callback::new(move || {
            counter.fetch_add(1, StdOrdering::SeqCst);
        }))))
        .unwrap();
    let child = derive(Some(&parent));
    drop(parent);
    assert_eq!(fired.load(StdOrdering::SeqCst), 0, "the child holds it");
    Node::recycle(child);
    assert_eq!(fired.load(StdOrdering::SeqCst), 1);
}
