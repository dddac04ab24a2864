//! `min_budget`: work that cannot finish in what is left is refused at
//! once, before it is made or polled, with an error of its own.

use std::future::poll_fn;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::Context;

const MS: Duration = Duration::from_millis(1);

/// A future that records whether it was ever polled.
fn watched(polled: &Arc<AtomicBool>) -> impl std::future::Future<Output = u8> {
    let polled = Arc::clone(polled);
    poll_fn(move |_| {
        polled.store(true, Ordering::SeqCst);
        Poll::Ready(7)
    })
}

#[tokio::test(start_paused = true)]
async fn a_step_with_too_little_left_is_refused_before_its_future_exists() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(300 * MS);
    time::advance(280 * MS).await;
    let made = AtomicBool::new(false);
    let started = Instant::now();
    let step =
        request
            .named("query")
            .min_budget(100 * MS)
            .with_timeout(Duration::from_secs(1), |_ctx| {
                made.store(true, Ordering::SeqCst);
                async { 1 }
            });
    assert!(step.is_refused());
    let err = step.await.unwrap_err();
    assert!(!made.load(Ordering::SeqCst), "the maker was never called");
    assert_eq!(started.elapsed(), Duration::ZERO, "refused at once");

    assert!(err.is_insufficient_budget());
    assert!(!err.is_deadline_exceeded() && !err.is_canceled());
    assert!(err.is_own(), "the request is still live");
    assert!(!request.is_done());
    assert_eq!(err.min_budget(), Some(100 * MS));
    assert_eq!(err.remaining(), Some(20 * MS));
    assert_eq!(err.context_name(), Some("query"));
    assert_eq!(err.budget(), Some(Duration::from_secs(1)), "what it asked");
    assert!(err.cause().is_none());
    assert!(
        err.to_string()
            .starts_with(r#"refused to start "query" (set at tests/min_budget_refusal.rs:"#),
        "{err}"
    );
    assert!(err
        .to_string()
        .ends_with("needs at least 100ms, only 20ms left"));
}

#[tokio::test(start_paused = true)]
async fn run_never_polls_a_refused_future() {
    let (request, _) = Context::background().child_with_timeout(10 * MS);
    let polled = Arc::new(AtomicBool::new(false));
    let out = request.min_budget(50 * MS).run(watched(&polled)).await;
    assert!(out.unwrap_err().is_insufficient_budget());
    assert!(!polled.load(Ordering::SeqCst));

    // With enough left the same future runs.
    let out = request.min_budget(5 * MS).run(watched(&polled)).await;
    assert_eq!(out.unwrap(), 7);
    assert!(polled.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn derivations_are_refused_with_a_result() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    time::advance(900 * MS).await;
    let err = request.min_budget(300 * MS).child().unwrap_err();
    assert_eq!(err.remaining(), Some(100 * MS));
    let err = request
        .min_budget(300 * MS)
        .child_with_timeout(Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(
        (err.remaining(), err.budget()),
        (Some(100 * MS), Some(5 * 1000 * MS))
    );
    let err = request
        .min_budget(300 * MS)
        .child_with_deadline(Instant::now() + Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(err.remaining(), Some(100 * MS));

    let (child, _cancel) = request
        .min_budget(100 * MS)
        .child_with_timeout(Duration::from_secs(5))
        .expect("exactly the minimum is enough");
    assert_eq!(child.remaining(), Some(100 * MS));
}

#[tokio::test(start_paused = true)]
async fn a_step_whose_own_limit_is_below_the_minimum_is_refused() {
    let err = Context::background()
        .min_budget(Duration::from_secs(1))
        .with_timeout(100 * MS, |_ctx| async {})
        .await
        .unwrap_err();
    assert_eq!(
        err.remaining(),
        Some(100 * MS),
        "it could never have had 1s"
    );
}

#[tokio::test(start_paused = true)]
async fn no_deadline_is_always_enough() {
    let out = Context::background()
        .min_budget(Duration::from_secs(3600))
        .with_timeout(Duration::MAX, |ctx| async move { ctx.deadline() })
        .await;
    assert_eq!(out.unwrap(), None);
    let (ctx, _) = Context::background()
        .min_budget(Duration::MAX)
        .child()
        .unwrap();
    assert!(!ctx.is_done());
}

#[tokio::test(start_paused = true)]
async fn an_ended_context_gives_its_end_not_a_refusal() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(10 * MS);
    time::advance(10 * MS).await;
    let made = AtomicBool::new(false);
    let err = request
        .named("query")
        .min_budget(MS)
        .with_timeout(Duration::from_secs(1), |_ctx| {
            made.store(true, Ordering::SeqCst);
            async {}
        })
        .await
        .unwrap_err();
    assert!(!made.load(Ordering::SeqCst));
    assert!(err.is_deadline_exceeded());
    assert!(!err.is_own(), "the request's budget, not the step's");
    assert_eq!(err.context_name(), Some("request"));

    let (request, cancel) = Context::background().child();
    cancel.cancel_with("shutting down");
    let err = request.min_budget(MS).child().unwrap_err();
    assert!(err.cause_is("shutting down"));
    assert!(!err.is_own());
}

#[tokio::test(start_paused = true)]
async fn a_name_goes_on_either_side() {
    let (request, _) = Context::background().child_with_timeout(MS);
    let a = request.named("a").min_budget(5 * MS).child().unwrap_err();
    let b = request.min_budget(5 * MS).named("b").child().unwrap_err();
    assert_eq!((a.context_name(), b.context_name()), (Some("a"), Some("b")));
}

#[tokio::test(start_paused = true)]
async fn an_admitted_step_is_an_ordinary_step() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let step = request
        .min_budget(40 * MS)
        .with_timeout(50 * MS, |_ctx| time::sleep(Duration::from_secs(1)));
    assert!(!step.is_refused());
    assert_eq!(step.context().unwrap().remaining(), Some(50 * MS));
    let err = step.await.unwrap_err();
    assert!(err.is_deadline_exceeded() && err.is_own());
}

#[tokio::test(start_paused = true)]
async fn a_refusal_reaches_protocols_as_a_timeout() {
    let (request, _) = Context::background().child_with_timeout(MS);
    let err = request.min_budget(5 * MS).child().unwrap_err();
    assert_eq!(io::Error::from(err.clone()).kind(), io::ErrorKind::TimedOut);
    #[cfg(feature = "tonic")]
    assert_eq!(
        tonic::Status::from(err.clone()).code(),
        tonic::Code::DeadlineExceeded
    );
    #[cfg(feature = "axum")]
    assert_eq!(
        axum::response::IntoResponse::into_response(err).status(),
        504
    );
}

#[tokio::test(start_paused = true)]
async fn an_unbounded_minimum_is_refused_with_a_readable_message() {
    let (ctx, _handle) = Context::background().child_with_timeout(Duration::from_secs(1));
    let err = ctx
        .min_budget(Duration::MAX)
        .with_timeout(Duration::from_secs(1), |_| async {
            unreachable!("refused before polling")
        })
        .await
        .unwrap_err();
    assert!(err.is_insufficient_budget(), "{err}");
    assert!(
        err.to_string()
            .ends_with("needs an unbounded budget, only 1s left"),
        "{err}"
    );
}
