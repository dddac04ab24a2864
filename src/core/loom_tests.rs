//! Loom models of the races the core's invariants are there for.
//!
//! Run with `RUSTFLAGS="--cfg tokio_ctx_loom" cargo test --lib --release loom`.

use std::sync::Arc;
use std::task::{Wake, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::{Callback, Cause, Entry, Meta, Node};

fn node(parent: Option<&Arc<Node>>) -> Arc<Node> {
    let meta = Meta::new(std::panic::Location::caller(), None);
    Arc::new(Node::new(parent, super::Deadline::NONE, None, None, meta))
}

fn cause(text: &'static str) -> Cause {
    Cause::User(Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(text)))
}

struct Flag(AtomicUsize);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Registers a waker on `node`; the waiter counts as told if the list
/// refused it (the node is done) or if it is woken later.
fn register(node: &Arc<Node>, flag: &Arc<Flag>) {
    let waker = Waker::from(Arc::clone(flag));
    if node.register(Entry::Waker(waker)).is_err() {
        flag.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn loom_cancel_racing_a_deep_registration_loses_no_wakeup() {
    // Invariants 3 and 5: the canceling walk or the linking thread fires the waiter.
    loom::model(|| {
        let root = node(None);
        let mid = node(Some(&root));
        let leaf = node(Some(&mid));
        let flag = Arc::new(Flag(AtomicUsize::new(0)));

        let canceler = {
            let root = Arc::clone(&root);
            thread::spawn(move || {
                root.cancel(None);
            })
        };
        register(&leaf, &flag);
        canceler.join().unwrap();
        assert_eq!(flag.0.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn loom_two_waiters_on_one_path_are_both_woken() {
    // Invariant 4: the second waiter relies on the first one's link.
    loom::model(|| {
        let root = node(None);
        let leaf = node(Some(&root));
        let first = Arc::new(Flag(AtomicUsize::new(0)));
        let second = Arc::new(Flag(AtomicUsize::new(0)));

        let other = {
            let leaf = Arc::clone(&leaf);
            let second = Arc::clone(&second);
            thread::spawn(move || register(&leaf, &second))
        };
        register(&leaf, &first);
        root.cancel(None);
        other.join().unwrap();
        assert_eq!(first.0.load(Ordering::SeqCst), 1);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn loom_concurrent_cancels_record_once_and_fire_once() {
    // Invariant 2 and the callback's own guard: exactly one winner.
    loom::model(|| {
        let root = node(None);
        let fired = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&fired);
        let callback = Arc::new(Callback::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        root.register(Entry::Callback(callback)).unwrap();

        let other = {
            let root = Arc::clone(&root);
            thread::spawn(move || root.cancel(None))
        };
        let mine = root.cancel(None);
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one cancel records");
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn loom_a_handle_dropped_during_a_registration_loses_no_wakeup() {
    // Invariant 9: whether the waiter registers on the leaf (handle still
    // there) or on the root (handle gone), the root's cancellation reaches it.
    loom::model(|| {
        let root = node(None);
        let leaf = node(Some(&root));
        let flag = Arc::new(Flag(AtomicUsize::new(0)));

        let dropper = {
            let leaf = Arc::clone(&leaf);
            thread::spawn(move || leaf.handle_dropped())
        };
        let canceler = {
            let root = Arc::clone(&root);
            thread::spawn(move || {
                root.cancel(None);
            })
        };
        match leaf.wait_target() {
            Some(target) => register(target, &flag),
            None => unreachable!("the root keeps its handle"),
        }
        dropper.join().unwrap();
        canceler.join().unwrap();
        assert_eq!(flag.0.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn loom_whoever_saw_a_node_canceled_sees_its_descendants_canceled() {
    // Invariant 8: a descendant's remembered epoch never vouches for it
    // once its ancestor's cancellation is visible, with the epoch modeled.
    loom::model(|| {
        let root = node(None);
        let mid = node(Some(&root));
        let leaf = node(Some(&mid));
        // The leaf remembers the current epoch: its next check is a shortcut.
        assert!(!leaf.is_canceled());

        // The observer is the spawned thread: loom's first schedule runs
        // the canceller to its end, and backtracking from the observer's
        // reads reaches every point inside the cancellation.
        let observer = {
            let (mid, leaf) = (Arc::clone(&mid), Arc::clone(&leaf));
            thread::spawn(move || {
                if mid.is_canceled() {
                    assert!(leaf.is_canceled(), "the parent read canceled, the child live");
                    // A cancel made after seeing the parent's changes nothing.
                    assert!(!leaf.cancel(Some(cause("second"))));
                }
            })
        };
        assert!(mid.cancel(Some(cause("first"))));
        observer.join().unwrap();
        assert!(leaf.is_canceled());
    });
}
