//! `CancellationToken` in and out, and wall-clock deadlines.

use std::time::{Duration, SystemTime};

use tokio::time;
use tokio_ctx::Context;
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn a_token_from_a_context_is_canceled_by_cancellation_and_by_deadline() {
    let (ctx, cancel) = Context::background().child();
    let token = ctx.cancellation_token();
    let (child, _) = ctx.child();
    let child_token = child.cancellation_token();
    assert!(!token.is_cancelled());
    cancel.cancel();
    assert!(token.is_cancelled());
    assert!(child_token.is_cancelled(), "a descendant's token too");

    let (timed, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let token = timed.cancellation_token();
    time::sleep(Duration::from_millis(999)).await;
    assert!(!token.is_cancelled());
    time::timeout(Duration::from_millis(10), token.cancelled())
        .await
        .expect("canceled at the deadline");
}

#[tokio::test(start_paused = true)]
async fn a_token_of_an_ended_context_is_born_canceled() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    assert!(ctx.cancellation_token().is_cancelled());
    assert!(!Context::background().cancellation_token().is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn a_token_seeds_a_child_that_ends_with_it() {
    let shutdown = CancellationToken::new();
    let (ctx, _cancel) = Context::background()
        .child_with_timeout(Duration::from_secs(60))
        .0
        .child_with_token(shutdown.clone());
    let waiter = tokio::spawn(ctx.done_owned());
    time::sleep(Duration::from_secs(1)).await;
    assert!(!ctx.is_done());
    shutdown.cancel();
    let err = waiter.await.unwrap();
    assert_eq!(
        err.cause().unwrap().to_string(),
        "its cancellation token was canceled"
    );
    assert!(err.is_own());
}

#[tokio::test(start_paused = true)]
async fn a_canceled_token_gives_a_child_born_canceled_and_the_parent_still_rules() {
    let token = CancellationToken::new();
    token.cancel();
    let (born, _) = Context::background().child_with_token(token);
    assert!(born.is_done());

    let (parent, cancel) = Context::background().child();
    let (child, _) = parent.child_with_token(CancellationToken::new());
    cancel.cancel_with("parent first");
    assert_eq!(
        child.done().await.cause().unwrap().to_string(),
        "parent first"
    );
}

#[tokio::test(start_paused = true)]
async fn wall_clock_deadlines_become_monotonic_ones() {
    let (ctx, _) = Context::background()
        .named("batch")
        .child_with_wall_deadline(SystemTime::now() + Duration::from_secs(5));
    let left = ctx.remaining().unwrap();
    assert!(left <= Duration::from_secs(5) && left > Duration::from_secs(4));
    // Only the monotonic clock decides from here on.
    time::advance(Duration::from_secs(5)).await;
    assert!(ctx.err().unwrap().is_deadline_exceeded());

    let (past, _) = Context::background().child_with_wall_deadline(SystemTime::UNIX_EPOCH);
    assert!(past.is_done());
    let far = SystemTime::now() + Duration::from_secs(u64::MAX / 4);
    let (unbounded, _) = Context::background().child_with_wall_deadline(far);
    assert!(!unbounded.is_done());
}
