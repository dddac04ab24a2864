//! Clipping: a derivation that asks for more than is left above gets what
//! is left, and when that runs out its error names the ancestor whose
//! deadline fired and how many levels up it is.

use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::Context;

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn a_clipped_derivation_names_the_ancestor_one_level_up() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(1200 * MS);
    let line = line!() - 1;
    let (step, _) = request
        .named("render")
        .child_with_timeout(Duration::from_secs(5));
    assert_eq!(step.deadline(), request.deadline(), "granted what was left");
    time::advance(1200 * MS).await;

    let err = step.err().unwrap();
    assert!(err.is_deadline_exceeded());
    assert!(!err.is_own(), "the request's deadline, not the step's");
    assert_eq!(err.context_name(), Some("request"));
    assert_eq!(err.budget(), Some(1200 * MS), "the request's budget");
    assert_eq!(err.levels_up(), Some(1));
    assert_eq!(
        err.to_string(),
        format!(
            r#"deadline of "request" (1.2s, set at tests/context_clipping.rs:{line}) exceeded (1 level up)"#
        )
    );
    // Read from the request itself, the same deadline is its own.
    let own = request.err().unwrap();
    assert_eq!((own.is_own(), own.levels_up()), (true, Some(0)));
    assert!(own.to_string().ends_with(") exceeded"), "{own}");
}

#[tokio::test(start_paused = true)]
async fn a_clipped_step_names_the_ancestor_and_how_far_up_it_is() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(1));
    let (handler, _) = request.named("handler").child();
    let (query, _) = handler.named("query").child();
    let start = Instant::now();
    let err = query
        .named("fetch rows")
        .with_timeout(Duration::from_secs(5), |_ctx| std::future::pending::<()>())
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(err.context_name(), Some("request"));
    assert_eq!(
        err.levels_up(),
        Some(3),
        "fetch rows -> query -> handler -> request"
    );
    assert!(err.to_string().ends_with("exceeded (3 levels up)"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_nearest_own_deadline_is_the_one_named() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(10));
    let (batch, _) = request
        .named("batch")
        .child_with_timeout(Duration::from_secs(2));
    let (item, _) = batch
        .named("item")
        .child_with_timeout(Duration::from_secs(5));
    time::advance(Duration::from_secs(2)).await;
    let err = item.err().unwrap();
    assert_eq!(err.context_name(), Some("batch"));
    assert_eq!(err.levels_up(), Some(1));
}

#[tokio::test(start_paused = true)]
async fn an_equal_deadline_is_the_parents() {
    let at = Instant::now() + Duration::from_secs(1);
    let (request, _) = Context::background()
        .named("request")
        .child_with_deadline(at);
    let (step, _) = request.named("step").child_with_deadline(at);
    time::advance(Duration::from_secs(1)).await;
    let err = step.err().unwrap();
    assert_eq!(
        (err.context_name(), err.levels_up()),
        (Some("request"), Some(1))
    );
}

#[tokio::test(start_paused = true)]
async fn a_step_within_its_budget_is_not_clipped() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(10));
    let err = request
        .named("close")
        .with_timeout(5 * MS, |_ctx| std::future::pending::<()>())
        .await
        .unwrap_err();
    assert!(err.is_own());
    assert_eq!(err.levels_up(), Some(0));
    assert!(
        err.to_string().ends_with(") exceeded"),
        "no levels for its own: {err}"
    );
}

#[test]
fn a_cancellation_from_above_has_no_level() {
    // Every descendant shares the one error a cancellation makes.
    let (request, cancel) = Context::background().named("request").child();
    let (a, _) = request.child();
    let (b, _) = a.child();
    cancel.cancel();
    assert_eq!(request.err().unwrap().levels_up(), Some(0));
    assert_eq!(a.err().unwrap().levels_up(), None);
    assert_eq!(b.err().unwrap().levels_up(), None);
}
