//! `join_all`, `try_join_all` and `settle`: outputs in input order; the
//! first failure cancels the rest only where asked.

use std::future::pending;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::{Context, TryJoinError};

fn after(
    ms: u64,
    result: Result<u64, &'static str>,
) -> impl FnOnce(
    Context,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<u64, &'static str>> + Send>,
> {
    move |_ctx| {
        Box::pin(async move {
            time::sleep(Duration::from_millis(ms)).await;
            result
        })
    }
}

#[tokio::test(start_paused = true)]
async fn join_all_returns_every_output_in_input_order_errors_included() {
    let outputs = Context::background()
        .join_all([after(30, Ok(1)), after(10, Err("two")), after(20, Ok(3))])
        .await
        .unwrap();
    assert_eq!(outputs, vec![Ok(1), Err("two"), Ok(3)]);
}

#[tokio::test(start_paused = true)]
async fn join_all_ends_early_only_when_the_context_ends() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(25));
    let start = Instant::now();
    let err = ctx
        .join_all([after(10, Ok(1)), after(50, Ok(2))])
        .await
        .unwrap_err();
    assert!(err.is_deadline_exceeded());
    assert_eq!(start.elapsed(), Duration::from_millis(25));
}

#[tokio::test(start_paused = true)]
async fn try_join_all_cancels_the_siblings_of_the_first_failure() {
    let observed = Arc::new(Mutex::new(Vec::new()));
    let fns = [(5u64, true), (10, false), (1000, true)].map(|(ms, ok)| {
        let observed = Arc::clone(&observed);
        move |ctx: Context| {
            let watcher = ctx.clone();
            tokio::spawn(async move {
                let err = watcher.done().await;
                observed
                    .lock()
                    .unwrap()
                    .push((ms, err.cause().map(|c| c.to_string())));
            });
            Box::pin(async move {
                time::sleep(Duration::from_millis(ms)).await;
                if ok {
                    Ok(ms)
                } else {
                    Err("boom")
                }
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
        }
    });
    let start = Instant::now();
    let err = Context::background().try_join_all(fns).await.unwrap_err();
    assert!(
        matches!(
            err,
            TryJoinError::Failed {
                index: 1,
                error: "boom"
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(10),
        "no waiting for the slow one"
    );
    tokio::task::yield_now().await;
    let mut observed = observed.lock().unwrap().clone();
    observed.sort();
    assert_eq!(
        observed,
        vec![
            (
                5,
                Some("the operation it was derived for finished".to_string())
            ),
            (
                10,
                Some("the operation it was derived for finished".to_string())
            ),
            (1000, Some("a sibling failed".to_string())),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn try_join_all_reports_the_context_when_it_ends_first() {
    let (ctx, cancel) = Context::background().child();
    let mut join = tokio_test::task::spawn(ctx.try_join_all([after(10, Ok(1)), after(20, Ok(2))]));
    tokio_test::assert_pending!(join.poll());
    cancel.cancel_with("deploy");
    match tokio_test::assert_ready!(join.poll()) {
        Err(TryJoinError::Ended(err)) => assert_eq!(err.cause().unwrap().to_string(), "deploy"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn settle_reports_every_outcome_even_when_the_context_ends() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(15));
    let outcomes = ctx
        .settle([after(10, Ok(1)), after(5, Err("bad")), after(100, Ok(3))])
        .await;
    assert_eq!(*outcomes[0].as_ref().unwrap(), Ok(1));
    assert_eq!(*outcomes[1].as_ref().unwrap(), Err("bad"));
    assert!(outcomes[2].as_ref().unwrap_err().is_deadline_exceeded());
}

#[tokio::test(start_paused = true)]
async fn under_an_ended_context_nothing_pending_starts() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    assert!(ctx
        .join_all([|_c| pending::<()>()])
        .await
        .unwrap_err()
        .is_canceled());
    assert!(ctx
        .try_join_all([|_c| pending::<Result<(), ()>>()])
        .await
        .unwrap_err()
        .is_ended());
    assert!(ctx.settle([|_c| pending::<()>()]).await[0].is_err());
}

#[tokio::test(start_paused = true)]
async fn huge_budgets_and_empty_inputs() {
    let (huge, _) = Context::background().child_with_timeout(Duration::MAX);
    let outputs = huge.join_all([after(1, Ok(1))]).await.unwrap();
    assert_eq!(outputs, vec![Ok(1)]);
    let none: Vec<fn(Context) -> std::future::Ready<u8>> = Vec::new();
    assert!(Context::background()
        .join_all(none)
        .await
        .unwrap()
        .is_empty());
}

/// Polls a finished future once more and returns the panic message.
fn poll_again<F: std::future::Future + Unpin>(fut: &mut F) -> String {
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = std::pin::Pin::new(fut).poll(&mut cx);
    }))
    .expect_err("polling a completed future must panic");
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[tokio::test]
async fn polling_a_completed_join_panics_with_a_clear_message() {
    let ctx = Context::background();
    let mut join = ctx.join_all([|_c| async { 1 }]);
    assert_eq!((&mut join).await.unwrap(), [1]);
    assert_eq!(poll_again(&mut join), "`JoinAll` polled after it completed");

    let mut settle = ctx.settle([|_c| async { 1 }]);
    assert_eq!((&mut settle).await.len(), 1);
    assert_eq!(
        poll_again(&mut settle),
        "`Settle` polled after it completed"
    );

    let mut try_join = ctx.try_join_all([|_c| async { Ok::<_, ()>(1) }]);
    assert_eq!((&mut try_join).await.unwrap(), [1]);
    assert_eq!(
        poll_again(&mut try_join),
        "`TryJoinAll` polled after it completed"
    );

    // After an error too, and after the context ended.
    let mut failed = ctx.try_join_all([|_c| async { Err::<u8, _>("no") }]);
    assert!((&mut failed).await.is_err());
    assert_eq!(
        poll_again(&mut failed),
        "`TryJoinAll` polled after it completed"
    );
    let (ended, cancel) = ctx.child();
    cancel.cancel();
    let mut join = ended.join_all([|_c| pending::<()>()]);
    assert!((&mut join).await.is_err());
    assert_eq!(poll_again(&mut join), "`JoinAll` polled after it completed");
}

#[tokio::test(start_paused = true)]
async fn try_join_all_reports_a_hang_up_that_a_branch_noticed_first_as_ended() {
    // Go style: each branch gives up with its context's error.
    let (ctx, cancel) = Context::background().named("request").child();
    let branch = |ctx: Context| async move { Err::<(), _>(ctx.done().await) };
    let mut join = tokio_test::task::spawn(ctx.try_join_all([branch, branch]));
    tokio_test::assert_pending!(join.poll());
    cancel.cancel_with("the client hung up");
    match tokio_test::assert_ready!(join.poll()) {
        Err(TryJoinError::Ended(err)) => {
            assert_eq!(err.context_name(), Some("request"));
            assert_eq!(err.cause().unwrap().to_string(), "the client hung up");
        }
        other => panic!("a hang-up is not a branch failure: {other:?}"),
    }
}
