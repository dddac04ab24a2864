//! Contexts shared across threads: cancel racing derivation, drops and waits.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use tokio_ctx::Context;

#[test]
fn cancel_racing_derive_and_drop_on_two_threads_leaves_every_child_ended() {
    for _ in 0..50 {
        let (root, cancel) = Context::background().child();
        let start = Arc::new(Barrier::new(2));
        let deriver = {
            let root = root.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let mut kept = Vec::new();
                for i in 0..2_000 {
                    let (child, _) = root.child();
                    let (grandchild, _) = child.child();
                    if i % 2 == 0 {
                        kept.push(grandchild);
                    }
                }
                kept
            })
        };
        start.wait();
        cancel.cancel_with("race");
        let kept = deriver.join().unwrap();
        for ctx in &kept {
            assert_eq!(ctx.err().unwrap().cause().unwrap().to_string(), "race");
        }
        let (late, _) = root.child();
        assert!(late.is_done());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_other_threads_wake_when_a_deep_ancestor_is_canceled() {
    let (root, cancel) = Context::background().child();
    let mut leaves = Vec::new();
    for branch in 0..50 {
        let mut leaf = root.clone();
        for _ in 0..(branch % 8 + 1) {
            leaf = leaf.child().0;
        }
        leaves.push(leaf);
    }
    let waiters: Vec<_> = leaves
        .iter()
        .map(|leaf| tokio::spawn(leaf.done_owned()))
        .collect();
    tokio::task::yield_now().await;
    cancel.cancel_with("stop");
    for waiter in waiters {
        let err = tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("every waiter is woken")
            .unwrap();
        assert_eq!(err.cause().unwrap().to_string(), "stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_registering_while_the_cancel_runs_are_never_lost() {
    for _ in 0..50 {
        let (root, cancel) = Context::background().child();
        let (mid, _) = root.child();
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let (leaf, _) = mid.child();
                tokio::spawn(async move { leaf.done().await })
            })
            .collect();
        let canceler = tokio::spawn(async move { cancel.cancel() });
        canceler.await.unwrap();
        for waiter in waiters {
            let err = tokio::time::timeout(Duration::from_secs(30), waiter)
                .await
                .expect("no lost wakeup")
                .unwrap();
            assert!(err.is_canceled());
        }
    }
}

#[test]
fn contexts_dropped_on_many_threads_leave_a_parent_reusable() {
    let (root, cancel) = Context::background().child();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let root = root.clone();
            thread::spawn(move || {
                for _ in 0..10_000 {
                    let (child, _) = root.child();
                    drop(child);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(!root.is_done());
    cancel.cancel();
    assert!(root.is_done());
}

#[test]
fn a_check_that_remembered_a_live_answer_sees_a_later_cancellation() {
    // Checks on a deep context remember "no canceled ancestor" until some
    // cancellation happens anywhere (the epoch). A cancellation on another
    // thread must be seen by the very next check once it has returned.
    for _ in 0..200 {
        let (root, cancel) = Context::background().child();
        let mut leaf = root.clone();
        for _ in 0..32 {
            leaf = leaf.child().0;
        }
        let checker = {
            let leaf = leaf.clone();
            thread::spawn(move || {
                let mut live_checks = 0u64;
                while !leaf.is_done() {
                    live_checks += 1;
                    std::hint::spin_loop();
                }
                live_checks
            })
        };
        // Unrelated cancellations move the epoch and must not confuse it.
        for _ in 0..10 {
            let (other, other_cancel) = Context::background().child();
            other_cancel.cancel();
            assert!(other.is_done());
            assert!(!leaf.is_done());
        }
        cancel.cancel();
        assert!(leaf.is_done(), "seen at once on the canceling thread");
        checker.join().unwrap();
        let (born, _) = leaf.child();
        assert!(born.is_done(), "and by a child derived afterwards");
    }
}
