//! The bridge to `CancellationToken`: which limit fired survives where the
//! context can know it, and the bridge is one-way.

use std::time::Duration;

use tokio::time;
use tokio_ctx::Context;
use tokio_util::sync::CancellationToken;

/// A library that speaks tokens: it fails with its own error once the token
/// it was given is canceled.
async fn library(token: CancellationToken) -> Result<(), &'static str> {
    token.cancelled().await;
    Err("cancelled")
}

#[tokio::test(start_paused = true)]
async fn a_deadline_through_a_token_and_back_into_the_same_tree_stays_a_deadline() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(1));
    let token = request.cancellation_token();
    let (step, _guard) = request.child_with_token(token);
    let err = step.done().await;
    assert!(err.is_deadline_exceeded(), "{err}");
    assert_eq!(err.context_name(), Some("request"));
}

#[tokio::test(start_paused = true)]
async fn a_cause_through_a_token_and_back_into_the_same_tree_is_kept() {
    let (request, cancel) = Context::background().named("request").child();
    let token = request.cancellation_token();
    let (step, _guard) = request.child_with_token(token);
    cancel.cancel_with("SIGINT");
    let err = step.done().await;
    assert_eq!(err.cause().unwrap().to_string(), "SIGINT");
    assert_eq!(err.context_name(), Some("request"));
}

#[tokio::test(start_paused = true)]
async fn a_token_carries_no_reason_into_an_unrelated_tree() {
    // The documented limit: a token is a bare flag. A context seeded from it
    // elsewhere can only say that the token was canceled.
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let (elsewhere, _guard) = Context::background()
        .named("library")
        .child_with_token(request.cancellation_token());
    let err = elsewhere.done().await;
    assert!(err.is_canceled());
    assert_eq!(err.context_name(), Some("library"));
    assert_eq!(
        err.cause().unwrap().to_string(),
        "its cancellation token was canceled"
    );
}

#[tokio::test(start_paused = true)]
async fn a_library_error_after_the_token_fired_can_be_read_back_as_the_limit() {
    // The guide's recipe: when the library returns its own "cancelled",
    // the step's context says which limit fired.
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(60));
    let out = request
        .named("lookup")
        .with_timeout(Duration::from_millis(5), |ctx| async move {
            library(ctx.cancellation_token())
                .await
                .map_err(|lib| ctx.err().map_or_else(|| lib.to_string(), |e| e.to_string()))
        })
        .await;
    // Whether the step's timer or the library answered first, the limit that
    // fired is the step's own.
    let message = match out {
        Ok(Err(message)) => message,
        Err(err) => {
            assert!(err.is_own());
            err.to_string()
        }
        Ok(Ok(())) => panic!("the library cannot succeed"),
    };
    assert!(
        message.starts_with(r#"deadline of "lookup" (5ms, set at "#),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_bridge_is_one_way_a_library_cannot_cancel_its_caller() {
    let (request, _) = Context::background().child();
    let token = request.cancellation_token();
    token.cancel();
    time::sleep(Duration::from_millis(1)).await;
    assert!(
        !request.is_done(),
        "canceling the token a context gave out does not end the context"
    );

    // To let a library end the work, derive from its token instead.
    let library_token = CancellationToken::new();
    let (work, _guard) = request.child_with_token(library_token.clone());
    library_token.cancel();
    assert!(work.done().await.is_canceled());
    assert!(!request.is_done());
}
