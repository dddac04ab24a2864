//! `reserve`: the last part of a budget kept for cleanup, which then runs
//! with its time even when the work used up all of its own.

use std::future::pending;
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::{Context, Reason};

const MS: Duration = Duration::from_millis(1);

struct RequestId(u32);

#[tokio::test(start_paused = true)]
async fn cleanup_gets_the_reserve_after_the_work_ran_out() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(3));
    let request = request.with_value(RequestId(7));
    let start = Instant::now();
    let (work, reserve) = request.named("receive").reserve(100 * MS);
    assert_eq!(work.remaining(), Some(2900 * MS));

    // The work runs until its own, shortened, budget is gone.
    let err = work.run(pending::<()>()).await.unwrap_err();
    assert!(err.is_deadline_exceeded());
    assert_eq!(err.context_name(), Some("receive"));
    assert_eq!(start.elapsed(), 2900 * MS);
    assert!(!request.is_done(), "the request still has its reserve");

    // The cleanup has the whole reserve, and the request's values.
    let closed = reserve
        .named("close")
        .cleanup(|ctx| async move {
            let left = ctx.remaining();
            let id = ctx.value::<RequestId>().map(|id| id.0);
            time::sleep(60 * MS).await;
            (left, id)
        })
        .await;
    assert_eq!(closed.unwrap(), (Some(100 * MS), Some(7)));
    assert_eq!(start.elapsed(), 2960 * MS);
}

#[tokio::test(start_paused = true)]
async fn cleanup_is_bounded_by_the_reserve() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let start = Instant::now();
    let (work, reserve) = request.reserve(100 * MS);
    let _ = work.done().await;
    let err = reserve
        .named("close")
        .cleanup(|_ctx| pending::<()>())
        .await
        .unwrap_err();
    assert!(err.is_deadline_exceeded() && err.is_own());
    assert_eq!(err.context_name(), Some("close"));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "at the request's deadline"
    );
    assert!(request.is_done());
}

#[tokio::test(start_paused = true)]
async fn cleanup_after_a_cancellation_is_not_canceled() {
    let (request, cancel) = Context::background().child_with_timeout(Duration::from_secs(10));
    let (work, reserve) = request.reserve(200 * MS);
    time::advance(Duration::from_secs(1)).await;
    cancel.cancel_with("client went away");
    assert!(work.err().unwrap().cause_is("client went away"));
    let start = Instant::now();
    let err = reserve.cleanup(|_ctx| pending::<()>()).await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        200 * MS,
        "the reserve from when it started"
    );
    assert!(
        err.is_deadline_exceeded(),
        "never the request's cancellation"
    );
}

#[tokio::test(start_paused = true)]
async fn starting_the_cleanup_stops_the_work() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(10));
    let (work, reserve) = request.reserve(200 * MS);
    let straggler = tokio::spawn(work.done_owned());
    tokio::task::yield_now().await;
    reserve.cleanup(|_ctx| async {}).await.unwrap();
    let err = straggler.await.unwrap();
    assert_eq!(err.reason(), Some(Reason::CleanupStarted));
    assert!(!request.is_done());
}

#[tokio::test(start_paused = true)]
async fn less_left_than_the_reserve_leaves_nothing_for_the_work() {
    let (request, _) = Context::background().child_with_timeout(50 * MS);
    let (work, reserve) = request.reserve(100 * MS);
    assert!(work.err().unwrap().is_deadline_exceeded(), "born expired");
    let left = reserve.cleanup(|ctx| async move { ctx.remaining() }).await;
    assert_eq!(left.unwrap(), Some(50 * MS), "all that is left, no more");
}

#[tokio::test(start_paused = true)]
async fn without_a_deadline_the_cleanup_gets_the_reserve() {
    let (work, reserve) = Context::background().reserve(100 * MS);
    assert_eq!(work.deadline(), None);
    assert_eq!(reserve.deadline(), None);
    time::advance(Duration::from_secs(5)).await;
    let left = reserve.cleanup(|ctx| async move { ctx.remaining() }).await;
    assert_eq!(left.unwrap(), Some(100 * MS));
}

#[tokio::test(start_paused = true)]
async fn a_cleanup_started_after_the_deadline_has_nothing() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let (_work, reserve) = request.reserve(100 * MS);
    time::advance(Duration::from_secs(2)).await;
    let err = reserve.cleanup(|_ctx| pending::<()>()).await.unwrap_err();
    assert!(
        err.is_deadline_exceeded(),
        "the reserve ended with the request"
    );
}

#[tokio::test(start_paused = true)]
async fn huge_reserves_do_not_panic() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let (work, reserve) = request.reserve(Duration::MAX);
    assert!(work.is_done());
    let left = reserve.cleanup(|ctx| async move { ctx.remaining() }).await;
    assert_eq!(left.unwrap(), Some(Duration::from_secs(1)));
    let (work, reserve) = Context::background().reserve(Duration::MAX);
    assert!(!work.is_done());
    let left = reserve.cleanup(|ctx| async move { ctx.deadline() }).await;
    assert_eq!(left.unwrap(), None, "too far ahead to be a deadline");
}
