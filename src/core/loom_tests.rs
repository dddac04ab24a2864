//! Loom models of the races the core's invariants are there for, with the
//! process-wide epoch modeled like any other atomic.
//!
//! Run with `RUSTFLAGS="--cfg tokio_ctx_loom" cargo test --lib --release loom`
//! (CI bounds the preemptions with `LOOM_MAX_PREEMPTIONS=3`).
//!
//! Loom's exploration backtracks from a conflicting access to the last
//! access of the same object, so a model puts the thread whose reads must
//! land inside another's operation in the spawned thread: the first
//! schedule runs the main thread to its end, and backtracking from the
//! spawned thread's reads then reaches every point inside it.

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
    Cause::User(Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(
        text,
    )))
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
                    assert!(
                        leaf.is_canceled(),
                        "the parent read canceled, the child live"
                    );
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

/// A waker that owns a node: dropping its last clone drops the node.
struct Owning {
    _node: std::sync::Mutex<Option<Arc<Node>>>,
    woken: Arc<AtomicUsize>,
}

impl Wake for Owning {
    fn wake(self: Arc<Self>) {
        self.woken.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_callback() -> (Arc<AtomicUsize>, Arc<Callback>) {
    let fired = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fired);
    let callback = Arc::new(Callback::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    (fired, callback)
}

#[test]
fn loom_a_replaced_waker_that_drops_a_linked_child_races_a_cancel() {
    // Invariants 6 and 11: the replaced waker is dropped unlocked, so the
    // child it owned unlinks itself from the list being replaced in or
    // closed; its callback runs once, by the cancel or by its drop; the
    // waker that is registered when the list closes is the one woken.
    loom::model(|| {
        let parent = node(None);
        let child = node(Some(&parent));
        let (fired, callback) = counting_callback();
        // Something waits on the child: it is linked into the parent's list.
        child.register(Entry::Callback(callback)).unwrap();
        let old_woken = Arc::new(AtomicUsize::new(0));
        let old = Arc::new(Owning {
            _node: std::sync::Mutex::new(Some(child)),
            woken: Arc::clone(&old_woken),
        });
        let key = parent
            .register(Entry::Waker(Waker::from(Arc::clone(&old))))
            .unwrap();
        let new = Arc::new(Flag(AtomicUsize::new(0)));

        let canceler = {
            let parent = Arc::clone(&parent);
            thread::spawn(move || {
                parent.cancel(None);
            })
        };
        // The parent's list holds the only clone of the old waker now.
        drop(old);
        let replaced = parent.update_waker(key, &Waker::from(Arc::clone(&new)));
        canceler.join().unwrap();
        assert_eq!(
            fired.load(Ordering::SeqCst),
            1,
            "the child's callback ran once"
        );
        let new_woken = new.0.load(Ordering::SeqCst);
        if replaced {
            assert_eq!(
                new_woken, 1,
                "the replacement was registered when the list closed"
            );
        } else {
            assert_eq!(
                old_woken.load(Ordering::SeqCst),
                1,
                "the list closed before the replacement"
            );
        }
    });
}

#[test]
fn loom_a_child_dropped_while_its_parent_is_canceled_runs_its_callback_once() {
    // Invariants 5 and 11: either the cancel's walk takes the child's
    // callback, or the child's drop does.
    loom::model(|| {
        let parent = node(None);
        let child = node(Some(&parent));
        let (fired, callback) = counting_callback();
        child.register(Entry::Callback(callback)).unwrap();

        let canceler = {
            let parent = Arc::clone(&parent);
            thread::spawn(move || {
                parent.cancel(None);
            })
        };
        drop(child);
        canceler.join().unwrap();
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        assert_eq!(
            parent.waiting(),
            0,
            "the dropped child left no entry behind"
        );
    });
}

#[test]
fn loom_stop_racing_a_cancel_either_prevents_the_call_or_reports_it_ran() {
    // The callback's own lock: exactly one of the two takes the function,
    // and a stopped callback leaves no entry behind.
    loom::model(|| {
        let root = node(None);
        let (fired, callback) = counting_callback();
        let key = root
            .register(Entry::Callback(Arc::clone(&callback)))
            .unwrap();

        let canceler = {
            let root = Arc::clone(&root);
            thread::spawn(move || {
                root.cancel(None);
            })
        };
        let prevented = callback.stop();
        root.deregister_callback(key, &callback);
        canceler.join().unwrap();
        assert_eq!(fired.load(Ordering::SeqCst), usize::from(!prevented));
        assert_eq!(root.waiting(), 0);
    });
}

#[test]
fn loom_a_recycled_node_is_seen_by_nobody() {
    // `spare.rs`: a node enters this thread's spares only when nothing else
    // can reach it, and comes out as new. One child was registered on, so
    // its parent's list holds it (weakly) and the cancel's walk may be
    // holding it when it is recycled; the other never was.
    loom::model(|| {
        let parent = node(None);
        let linked = Node::in_spare(Node::new(
            Some(&parent),
            super::Deadline::NONE,
            None,
            None,
            Meta::new(std::panic::Location::caller(), None),
        ));
        let (fired, callback) = counting_callback();
        linked.register(Entry::Callback(callback)).unwrap();
        let plain = Node::in_spare(Node::new(
            Some(&parent),
            super::Deadline::NONE,
            None,
            None,
            Meta::new(std::panic::Location::caller(), None),
        ));

        let canceler = {
            let parent = Arc::clone(&parent);
            thread::spawn(move || {
                parent.cancel(None);
            })
        };
        let before = super::spare::count();
        Node::recycle(linked);
        Node::recycle(plain);
        assert_eq!(
            super::spare::count(),
            before + 1,
            "only the child nothing ever registered on is kept"
        );
        let other = node(None);
        let fresh = Node::in_spare(Node::new(
            Some(&other),
            super::Deadline::NONE,
            None,
            None,
            Meta::new(std::panic::Location::caller(), None),
        ));
        assert_eq!(super::spare::count(), before, "the spare was taken");
        canceler.join().unwrap();
        assert_eq!(
            fired.load(Ordering::SeqCst),
            1,
            "the registered child's callback ran once, by the walk or its drop"
        );
        assert!(!fresh.is_done(), "the reused node is as new");
        assert!(Arc::ptr_eq(fresh.parent().unwrap(), &other));
        assert_eq!(parent.waiting(), 0, "no entry left behind");
    });
}

/// Whether an answer is the asked node's own record.
fn is_own(ending: &Option<super::Ending<'_>>) -> Option<bool> {
    match ending {
        None => None,
        Some(super::Ending::Canceled { .. }) => Some(true),
        Some(_) => Some(false),
    }
}

#[test]
fn loom_an_error_once_reported_never_changes() {
    // Invariant 12: a node and its parent canceled at the same moment. The
    // reader's answer, whichever cancel it saw, is the one it reads again
    // once both are over.
    loom::model(|| {
        let parent = node(None);
        let child = node(Some(&parent));

        let parent_canceler = {
            let parent = Arc::clone(&parent);
            thread::spawn(move || {
                parent.cancel(None);
            })
        };
        let reader = {
            let child = Arc::clone(&child);
            thread::spawn(move || is_own(&child.ending()))
        };
        child.cancel(None);
        parent_canceler.join().unwrap();
        let seen = reader.join().unwrap();
        let last = is_own(&child.ending());
        assert!(last.is_some(), "both cancels are over");
        if seen.is_some() {
            assert_eq!(seen, last, "the error changed after it was reported");
        }
    });
}

/// A root whose deadline, an hour away, its handle can move.
fn movable() -> Arc<Node> {
    let meta = Meta::new(std::panic::Location::caller(), None);
    let hour = super::Deadline::from_now(std::time::Duration::from_secs(3600));
    Node::derive_cold(None, hour, None, super::Cold::movable(None), meta)
}

#[test]
fn loom_a_move_earlier_racing_a_registration_reaches_the_waiter() {
    // Invariant 14: a waiter registers, then reads the deadline to arm its
    // timer. The move stores the deadline, then walks the lists: either the
    // waiter reads the moved deadline, or the walk finds and wakes it,
    // through the link its registration made.
    loom::model(|| {
        let moving = movable();
        let leaf = node(Some(&moving));
        let flag = Arc::new(Flag(AtomicUsize::new(0)));

        let waiter = {
            let (leaf, flag) = (Arc::clone(&leaf), Arc::clone(&flag));
            thread::spawn(move || {
                register(&leaf, &flag);
                leaf.deadline()
            })
        };
        let soon = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let moved = moving.move_deadline(Some(soon));
        let armed_at = waiter.join().unwrap();
        assert!(
            armed_at == moved || flag.0.load(Ordering::SeqCst) >= 1,
            "armed at the old deadline, and never woken to re-arm"
        );
        assert_eq!(leaf.waiting(), 1, "the waker is back in its list");
    });
}

/// A waker that counts the wakes that find its node canceled.
struct SeesCancel {
    node: std::sync::Weak<Node>,
    woken_canceled: AtomicUsize,
}

impl Wake for SeesCancel {
    fn wake(self: Arc<Self>) {
        if self.node.upgrade().is_some_and(|node| node.is_canceled()) {
            self.woken_canceled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn loom_a_move_racing_a_cancel_loses_no_wakeup() {
    // Invariant 14: a move takes the waker out and leaves a placeholder;
    // a cancel that closes the list meanwhile wakes only the placeholder,
    // so the move wakes the waker once more when it finds the list closed.
    loom::model(|| {
        let moving = movable();
        let seen = Arc::new(SeesCancel {
            node: Arc::downgrade(&moving),
            woken_canceled: AtomicUsize::new(0),
        });
        moving
            .register(Entry::Waker(Waker::from(Arc::clone(&seen))))
            .unwrap();

        let canceler = {
            let moving = Arc::clone(&moving);
            thread::spawn(move || {
                moving.cancel(None);
            })
        };
        let soon = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        moving.move_deadline(Some(soon));
        canceler.join().unwrap();
        assert!(
            seen.woken_canceled.load(Ordering::SeqCst) >= 1,
            "never woken after the cancellation"
        );
        assert_eq!(moving.waiting(), 0, "the closed list keeps nothing");
    });
}
