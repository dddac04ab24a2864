//! `select_first`: the first success wins; every failure is kept.

use std::future::pending;
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::Context;

/// A replica that answers after `ms` with `Ok(ms)`, or fails with its name.
fn replica(
    ms: u64,
    healthy: bool,
) -> impl FnOnce(
    Context,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, String>> + Send>> {
    move |_ctx| {
        Box::pin(async move {
            time::sleep(Duration::from_millis(ms)).await;
            if healthy {
                Ok(ms)
            } else {
                Err(format!("replica {ms}ms failed"))
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_success_wins_even_after_earlier_failures() {
    let start = Instant::now();
    let (index, value) = Context::background()
        .select_first([
            replica(10, false),
            replica(30, true),
            replica(20, false),
            replica(40, true),
        ])
        .await
        .unwrap();
    assert_eq!((index, value), (1, 30));
    assert_eq!(start.elapsed(), Duration::from_millis(30));
}

#[tokio::test(start_paused = true)]
async fn when_all_fail_every_failure_is_reported_in_input_order() {
    let err = Context::background()
        .select_first([replica(30, false), replica(10, false), replica(20, false)])
        .await
        .unwrap_err();
    assert!(!err.is_ended());
    let indexes: Vec<_> = err.failures().iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [0, 1, 2]);
    assert_eq!(
        err.to_string(),
        "all 3 candidates failed: [0] replica 30ms failed; [1] replica 10ms failed; [2] replica 20ms failed"
    );
}

#[tokio::test(start_paused = true)]
async fn the_context_ending_first_keeps_the_failures_seen() {
    let (ctx, _) = Context::background()
        .named("lookup")
        .child_with_timeout(Duration::from_millis(50));
    let err = ctx
        .select_first([replica(10, false), replica(100, true)])
        .await
        .unwrap_err();
    assert!(err.is_ended());
    assert!(err.ended().unwrap().is_deadline_exceeded());
    assert_eq!(err.ended().unwrap().context_name(), Some("lookup"));
    assert_eq!(err.failures().len(), 1);
    assert_eq!(err.failures()[0].0, 0);
}

#[tokio::test(start_paused = true)]
async fn losers_are_canceled_once_a_replica_answers() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let slow = move |ctx: Context| {
        tokio::spawn(async move {
            let _ = tx.send(ctx.done().await);
        });
        Box::pin(pending::<Result<u64, String>>())
            as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
    };
    let fast = replica(5, true);
    let (index, _) = Context::background()
        .select_first([
            Box::new(slow) as Box<dyn FnOnce(Context) -> _>,
            Box::new(fast),
        ])
        .await
        .unwrap();
    assert_eq!(index, 1);
    assert_eq!(
        rx.await.unwrap().cause().unwrap().to_string(),
        "lost the race"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ended_context_and_an_empty_input_fail_at_once() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    let err = ctx.select_first([replica(1, true)]).await.unwrap_err();
    assert!(err.ended().unwrap().is_canceled());

    type Candidate = fn(Context) -> std::future::Ready<Result<(), ()>>;
    let none: Vec<Candidate> = Vec::new();
    let err = Context::background().select_first(none).await.unwrap_err();
    assert!(!err.is_ended());
    assert!(err.failures().is_empty());
}

#[tokio::test]
async fn polling_a_completed_select_first_panics_with_a_clear_message() {
    fn poll_again<F: std::future::Future + Unpin>(fut: &mut F) -> String {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = std::pin::Pin::new(fut).poll(&mut cx);
        }))
        .expect_err("polling a completed future must panic");
        panic.downcast_ref::<&str>().unwrap().to_string()
    }
    let ctx = Context::background();
    let mut won = ctx.select_first([|_c| async { Ok::<_, ()>(1) }]);
    assert_eq!((&mut won).await.unwrap(), (0, 1));
    assert_eq!(
        poll_again(&mut won),
        "`SelectFirst` polled after it completed"
    );

    let mut lost = ctx.select_first([|_c| async { Err::<(), _>(1) }]);
    assert_eq!((&mut lost).await.unwrap_err().failures(), [(0, 1)]);
    assert_eq!(
        poll_again(&mut lost),
        "`SelectFirst` polled after it completed"
    );
}

#[tokio::test(start_paused = true)]
async fn candidates_that_fail_because_the_context_ended_report_the_end() {
    let (ctx, cancel) = Context::background().named("lookup").child();
    let candidate = |ctx: Context| async move { Err::<(), _>(ctx.done().await) };
    let mut select = tokio_test::task::spawn(ctx.select_first([candidate, candidate]));
    tokio_test::assert_pending!(select.poll());
    cancel.cancel_with("the client hung up");
    let err = tokio_test::assert_ready!(select.poll()).unwrap_err();
    assert!(
        err.is_ended(),
        "the context's end, not two unrelated failures"
    );
    assert_eq!(
        err.ended().unwrap().cause().unwrap().to_string(),
        "the client hung up"
    );
    assert_eq!(err.failures().len(), 2, "the failures are kept too");
}
