//! A child derived from a context that has already ended is born ended,
//! with its parent's error and cause, whatever limit of its own it asked
//! for: its own limit never had a chance to fire first.

use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::{Context, Error};

fn assert_parents(err: Error, parent: &Context) {
    let expected = parent.err().expect("the parent has ended");
    assert_eq!(err.to_string(), expected.to_string());
    assert_eq!(err.is_canceled(), expected.is_canceled());
    assert_eq!(
        err.cause().map(ToString::to_string),
        expected.cause().map(ToString::to_string)
    );
    assert!(!err.is_own(), "the parent ended, not the child: {err}");
}

fn canceled_parent() -> Context {
    let (parent, cancel) = Context::background().named("request").child();
    cancel.cancel_with("client went away");
    parent
}

#[tokio::test(start_paused = true)]
async fn every_child_of_a_canceled_parent_reports_the_parents_cancellation() {
    let parent = canceled_parent();
    let past = Instant::now() - Duration::from_secs(1);
    let children = [
        parent.child().0,
        parent.child_with_timeout(Duration::ZERO).0,
        parent.child_with_timeout(Duration::from_secs(3600)).0,
        parent.child_with_deadline(past).0,
        parent.child_with_deadline(Instant::now()).0,
        parent
            .child_with_wall_deadline(std::time::SystemTime::UNIX_EPOCH)
            .0,
    ];
    for child in &children {
        assert!(child.is_done());
        assert_parents(child.err().unwrap(), &parent);
        assert_parents(child.done().await, &parent);
        let (grandchild, _) = child.child_with_timeout(Duration::ZERO);
        assert_parents(grandchild.err().unwrap(), &parent);
    }
    // Time passing changes nothing.
    time::advance(Duration::from_secs(7200)).await;
    for child in &children {
        assert_parents(child.err().unwrap(), &parent);
    }
}

#[tokio::test(start_paused = true)]
async fn every_step_under_a_canceled_parent_reports_the_parents_cancellation() {
    let parent = canceled_parent();
    let pending = || std::future::pending::<()>();
    let errors = [
        parent
            .with_timeout(Duration::ZERO, |_| pending())
            .await
            .unwrap_err(),
        parent
            .with_timeout(Duration::from_secs(3600), |_| pending())
            .await
            .unwrap_err(),
        parent
            .with_deadline(Instant::now() - Duration::from_secs(1), |_| pending())
            .await
            .unwrap_err(),
        parent
            .with_deadline(Instant::now(), |_| pending())
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_parents(err, &parent);
    }
}

#[tokio::test(start_paused = true)]
async fn a_child_of_an_expired_parent_reports_the_parents_deadline() {
    let (parent, _cancel) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(1));
    time::advance(Duration::from_secs(2)).await;
    let past = Instant::now() - Duration::from_millis(1500);
    let (child, _) = parent.child_with_deadline(past);
    let err = child.err().unwrap();
    assert!(err.is_deadline_exceeded());
    assert_eq!(err.context_name(), Some("request"));
    assert!(!err.is_own(), "the request's deadline, not the child's");
    let err = parent
        .with_deadline(past, |_| std::future::pending::<()>())
        .await
        .unwrap_err();
    assert_eq!(err.context_name(), Some("request"));
    assert!(!err.is_own());
}

#[tokio::test(start_paused = true)]
async fn a_child_that_ends_before_its_parent_still_reports_its_own_end() {
    // The rule is about being born under an ended parent: a child whose
    // own deadline passes first keeps its own error when the parent ends
    // later.
    let (parent, cancel) = Context::background().child();
    let (child, _) = parent.child_with_timeout(Duration::from_secs(1));
    time::advance(Duration::from_secs(2)).await;
    cancel.cancel_with("later");
    let err = child.err().unwrap();
    assert!(err.is_deadline_exceeded());
    assert!(err.is_own());
}
