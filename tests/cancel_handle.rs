//! `CancelHandle` and `CancelGuard`: idempotent, first cause wins, and the
//! cause reaches every descendant.

use std::fmt;

use tokio_ctx::Context;

#[derive(Debug)]
struct Shutdown;

impl fmt::Display for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("server shutting down")
    }
}

impl std::error::Error for Shutdown {}

#[test]
fn the_first_cause_wins_and_every_descendant_reports_it() {
    let (root, cancel) = Context::background().child();
    let (mid, _) = root.child();
    let (leaf, _) = mid.child();
    let second = cancel.clone();

    cancel.cancel_with(Shutdown);
    second.cancel_with("a later cause");
    cancel.cancel();

    for ctx in [&root, &mid, &leaf] {
        let err = ctx.err().unwrap();
        assert!(err.is_canceled());
        assert!(err.cause().unwrap().is::<Shutdown>(), "{err:?}");
        assert_eq!(err.cause().unwrap().to_string(), "server shutting down");
    }
    assert!(root.err().unwrap().is_own());
    assert!(!leaf.err().unwrap().is_own());
}

#[test]
fn a_cause_reaches_a_descendant_100_000_levels_down() {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let (root, cancel) = Context::background().child();
            let mut leaf = root;
            for _ in 0..100_000 {
                leaf = leaf.child().0;
            }
            cancel.cancel_with(Shutdown);
            let err = leaf.err().unwrap();
            assert!(err.cause().unwrap().is::<Shutdown>());
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_childs_own_cause_stays_its_own() {
    let (parent, cancel_parent) = Context::background().child();
    let (child, cancel_child) = parent.child();
    cancel_child.cancel_with("child first");
    cancel_parent.cancel_with("parent later");
    assert_eq!(
        child.err().unwrap().cause().unwrap().to_string(),
        "child first"
    );
    assert_eq!(
        parent.err().unwrap().cause().unwrap().to_string(),
        "parent later"
    );
}

#[test]
fn the_guard_cancels_on_drop_unless_disarmed() {
    let (armed, cancel) = Context::background().child();
    let (disarmed, cancel_other) = Context::background().child();
    {
        let _guard = cancel.drop_guard();
        let guard = cancel_other.drop_guard();
        let _handle = guard.disarm();
    }
    assert!(armed.is_done());
    assert!(!disarmed.is_done());
}

#[test]
fn the_guard_cancels_when_a_scope_unwinds() {
    let (ctx, cancel) = Context::background().child();
    let result = std::panic::catch_unwind(move || {
        let _guard = cancel.drop_guard();
        panic!("the step failed");
    });
    assert!(result.is_err());
    assert!(ctx.is_done());
}

#[test]
fn dropping_a_handle_neither_cancels_nor_keeps_anything_alive() {
    let (ctx, cancel) = Context::background().child();
    drop(cancel);
    assert!(!ctx.is_done());
}

// Once a context's only handle is gone, a task waiting on it waits on the
// nearest ancestor that can still be canceled instead. These pin down that
// no wakeup is lost on the way.

#[tokio::test(start_paused = true)]
async fn a_waiter_on_a_context_without_handle_wakes_when_an_ancestor_is_canceled() {
    let (request, cancel) = Context::background().child();
    let (middle, middle_handle) = request.child();
    let (leaf, leaf_handle) = middle.child();
    drop((middle_handle, leaf_handle));
    let mut done = tokio_test::task::spawn(leaf.done());
    assert!(done.poll().is_pending());
    cancel.cancel_with("client went away");
    assert!(done.is_woken());
    let err = tokio_test::assert_ready!(done.poll());
    assert_eq!(err.cause().unwrap().to_string(), "client went away");
}

#[tokio::test(start_paused = true)]
async fn a_cloned_handle_still_wakes_waiters_after_the_other_clone_is_dropped() {
    let (ctx, cancel) = Context::background().child();
    let kept = cancel.clone();
    drop(cancel);
    let mut done = tokio_test::task::spawn(ctx.done());
    assert!(done.poll().is_pending());
    kept.cancel_with("stop");
    assert!(done.is_woken());
    assert_eq!(
        tokio_test::assert_ready!(done.poll())
            .cause()
            .unwrap()
            .to_string(),
        "stop"
    );
}

#[tokio::test(start_paused = true)]
async fn a_handle_dropped_while_a_task_waits_loses_no_wakeup() {
    let (request, cancel) = Context::background().child();
    let (ctx, handle) = request.child();
    let mut done = tokio_test::task::spawn(ctx.done());
    assert!(done.poll().is_pending());
    drop(handle);
    assert!(done.poll().is_pending());
    cancel.cancel();
    assert!(done.is_woken());
    assert!(tokio_test::assert_ready!(done.poll()).is_canceled());
}

#[tokio::test(start_paused = true)]
async fn a_root_without_handle_ends_only_at_its_deadline() {
    let (ctx, handle) = Context::background().child_with_timeout(std::time::Duration::from_secs(1));
    drop(handle);
    let mut done = tokio_test::task::spawn(ctx.done());
    assert!(done.poll().is_pending());
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    assert!(done.is_woken());
    assert!(tokio_test::assert_ready!(done.poll()).is_deadline_exceeded());
}
