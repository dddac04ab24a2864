//! `done()`: wakes on cancellation from any level, at the deadline, and
//! leaves nothing behind when dropped.

use std::time::Duration;

use tokio::time;
use tokio_ctx::Context;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

#[tokio::test(start_paused = true)]
async fn done_wakes_when_an_ancestor_far_above_is_canceled() {
    let (root, cancel) = Context::background().named("root").child();
    let mut leaf = root.clone();
    for _ in 0..64 {
        leaf = leaf.child().0;
    }
    let mut done = task::spawn(leaf.done());
    assert_pending!(done.poll());
    cancel.cancel_with("stop");
    assert!(done.is_woken());
    let err = assert_ready!(done.poll());
    assert_eq!(err.cause().unwrap().to_string(), "stop");
    assert_eq!(err.context_name(), Some("root"));
}

#[tokio::test(start_paused = true)]
async fn done_resolves_at_the_deadline_and_not_before() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(100));
    let mut done = task::spawn(ctx.done());
    assert_pending!(done.poll());
    time::advance(Duration::from_millis(99)).await;
    assert_pending!(done.poll());
    time::advance(Duration::from_millis(1)).await;
    assert!(done.is_woken());
    assert!(assert_ready!(done.poll()).is_deadline_exceeded());
}

#[tokio::test(start_paused = true)]
async fn done_on_an_ended_context_resolves_at_once_and_again() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    let mut done = task::spawn(ctx.done());
    assert!(assert_ready!(done.poll()).is_canceled());
    assert!(
        assert_ready!(done.poll()).is_canceled(),
        "polling after completion resolves again"
    );
}

#[tokio::test(start_paused = true)]
async fn background_and_detached_contexts_are_never_done() {
    let background = Context::background();
    let mut forever = task::spawn(background.done());
    assert_pending!(forever.poll());
    let (ctx, cancel) = Context::background().child();
    let detached = ctx.without_cancel();
    let mut detached_done = task::spawn(detached.done());
    cancel.cancel();
    time::advance(Duration::from_secs(3600)).await;
    assert_pending!(forever.poll());
    assert_pending!(detached_done.poll());
}

#[tokio::test(start_paused = true)]
async fn many_waiters_on_one_context_all_wake_once() {
    let (ctx, cancel) = Context::background().child();
    let waiters: Vec<_> = (0..100).map(|_| tokio::spawn(ctx.done_owned())).collect();
    tokio::task::yield_now().await;
    cancel.cancel_with("all of you");
    for waiter in waiters {
        assert_eq!(
            waiter.await.unwrap().cause().unwrap().to_string(),
            "all of you"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_waiter_is_not_woken_and_others_still_are() {
    let (ctx, cancel) = Context::background().child();
    let mut dropped = task::spawn(ctx.done());
    let mut kept = task::spawn(ctx.done());
    assert_pending!(dropped.poll());
    assert_pending!(kept.poll());
    drop(dropped);
    cancel.cancel();
    assert!(kept.is_woken());
    assert_ready!(kept.poll());
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_moves_to_another_task_is_woken_there() {
    let (ctx, cancel) = Context::background().child();
    let mut first = task::spawn(Box::pin(ctx.done_owned()));
    assert_pending!(first.poll());
    let moved = first.into_inner();
    let mut second = task::spawn(moved);
    assert_pending!(second.poll());
    cancel.cancel();
    assert!(second.is_woken(), "the newest waker is the one registered");
    assert_ready!(second.poll());
}

#[tokio::test(start_paused = true)]
async fn an_expired_deadline_wakes_waiters_of_every_descendant() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(1));
    let (step, _) = request.child();
    let err = tokio::spawn(step.done_owned()).await.unwrap();
    assert!(err.is_deadline_exceeded());
    assert_eq!(err.context_name(), Some("request"));
}
