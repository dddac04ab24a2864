//! `cleanup`: bounded async cleanup that a cancellation does not reach.

use std::future::pending;
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::Context;

#[derive(Debug, PartialEq)]
struct Lease(u32);

#[tokio::test(start_paused = true)]
async fn cleanup_runs_after_the_request_was_canceled_and_keeps_values() {
    let (request, cancel) = Context::background().with_value(Lease(7)).child();
    cancel.cancel_with("client went away");
    let released = request
        .cleanup(Duration::from_millis(200), |ctx| async move {
            time::sleep(Duration::from_millis(50)).await;
            ctx.value::<Lease>().map(|l| l.0)
        })
        .await
        .unwrap();
    assert_eq!(released, Some(7));
}

#[tokio::test(start_paused = true)]
async fn cleanup_still_stops_at_its_own_limit() {
    let (request, cancel) = Context::background().child();
    cancel.cancel();
    let start = Instant::now();
    let err = request
        .cleanup(Duration::from_millis(200), |_ctx| pending::<()>())
        .await
        .unwrap_err();
    assert!(err.is_deadline_exceeded());
    assert!(err.is_own());
    assert_eq!(start.elapsed(), Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn cleanup_ignores_the_requests_deadline() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_millis(10));
    time::sleep(Duration::from_millis(10)).await;
    assert!(request.is_done());
    let left = request
        .cleanup(Duration::from_secs(1), |ctx| async move { ctx.remaining() })
        .await
        .unwrap();
    assert_eq!(left, Some(Duration::from_secs(1)));
}

#[tokio::test(start_paused = true)]
async fn a_canceled_step_runs_its_cleanup_on_the_way_out() {
    let (request, cancel) = Context::background().child();
    let step = request.clone();
    let worker = tokio::spawn(async move {
        let outcome = step.run(pending::<()>()).await;
        let cleaned = step
            .cleanup(Duration::from_millis(100), |_ctx| async {
                time::sleep(Duration::from_millis(20)).await;
                "connection closed"
            })
            .await;
        (outcome, cleaned)
    });
    time::sleep(Duration::from_millis(5)).await;
    cancel.cancel_with("shutdown");
    let (outcome, cleaned) = worker.await.unwrap();
    assert_eq!(
        outcome.unwrap_err().cause().unwrap().to_string(),
        "shutdown"
    );
    assert_eq!(cleaned.unwrap(), "connection closed");
}
