//! A deadline that carries a cause (Go 1.21's `WithDeadlineCause` and
//! `WithTimeoutCause`): the end is still a deadline, and the cause is there
//! for whoever reads it, at every level below.

use std::error::Error as _;
use std::io;
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::{Context, Reason};

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn a_timeout_with_a_cause_is_a_deadline_that_says_why() {
    let (lookup, _) = Context::background()
        .named("lookup")
        .child_with_timeout_cause(100 * MS, "the replica is too slow");
    let err = lookup.done().await;
    assert!(err.is_deadline_exceeded() && !err.is_canceled());
    assert!(err.is_own());
    assert!(err.cause_is("the replica is too slow"));
    assert_eq!(err.source().unwrap().to_string(), "the replica is too slow");
    assert_eq!(err.reason(), None, "a cause of the user's");
    assert!(
        err.to_string()
            .ends_with("exceeded: the replica is too slow"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn any_error_can_be_the_cause_and_is_downcast() {
    let at = Instant::now() + 10 * MS;
    let (ctx, _) = Context::background()
        .child_with_deadline_cause(at, io::Error::new(io::ErrorKind::TimedOut, "lease expired"));
    time::advance(10 * MS).await;
    let err = ctx.err().unwrap();
    let cause = err.cause().unwrap().downcast_ref::<io::Error>().unwrap();
    assert_eq!(cause.kind(), io::ErrorKind::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn descendants_read_the_cause_of_the_deadline_that_fired() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout_cause(Duration::from_secs(1), "the client's budget");
    let (step, _) = request
        .named("step")
        .child_with_timeout_cause(Duration::from_secs(5), "the step's own limit");
    let err = request
        .named("query")
        .with_timeout(Duration::from_secs(5), |_ctx| std::future::pending::<()>())
        .await
        .unwrap_err();
    assert!(err.cause_is("the client's budget"), "{err}");
    let err = step.err().unwrap();
    assert_eq!(err.context_name(), Some("request"));
    assert!(
        err.cause_is("the client's budget"),
        "the clipped step's own cause never fired: {err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_before_the_deadline_keeps_its_own_cause() {
    let (ctx, cancel) =
        Context::background().child_with_timeout_cause(Duration::from_secs(1), "too slow");
    cancel.cancel_with("the user gave up");
    time::advance(Duration::from_secs(2)).await;
    let err = ctx.err().unwrap();
    assert!(err.is_canceled());
    assert!(err.cause_is("the user gave up"));

    // And a crate's reason stays matchable under a deadline with a cause.
    let (request, _) =
        Context::background().child_with_timeout_cause(Duration::from_secs(1), "budget");
    let mut kept = None;
    request
        .with_timeout(Duration::from_secs(5), |ctx| {
            kept = Some(ctx);
            async {}
        })
        .await
        .unwrap();
    assert_eq!(
        kept.unwrap().err().unwrap().reason(),
        Some(Reason::Finished)
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_timeout_with_a_cause_is_born_ended_with_it() {
    let (ctx, _) = Context::background()
        .named("poll")
        .child_with_timeout_cause(Duration::ZERO, "nothing to wait for");
    let err = ctx.err().unwrap();
    assert_eq!(err.context_name(), Some("poll"));
    assert!(err.cause_is("nothing to wait for"));
}
