//! `on_done`: exactly once, whenever and however the context ends, unless
//! stopped first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time;
use tokio_ctx::Context;

fn counter() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
    let count = Arc::new(AtomicUsize::new(0));
    let inner = Arc::clone(&count);
    (count, move || {
        inner.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn runs_once_on_cancellation_from_any_level() {
    let (root, cancel) = Context::background().child();
    let (leaf, cancel_leaf) = root.child().0.child();
    let (count, f) = counter();
    let _registration = leaf.on_done(f);
    assert_eq!(count.load(Ordering::SeqCst), 0);
    cancel.cancel();
    cancel_leaf.cancel();
    cancel.cancel();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn runs_at_once_when_registered_after_the_end() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    let (count, f) = counter();
    let registration = ctx.on_done(f);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(!registration.stop(), "it already ran");
}

#[test]
fn stop_prevents_the_call_and_says_so() {
    let (ctx, cancel) = Context::background().child();
    let (count, f) = counter();
    let registration = ctx.on_done(f);
    assert!(registration.stop());
    assert!(
        !registration.stop(),
        "only the first stop prevents anything"
    );
    cancel.cancel();
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[test]
fn dropping_the_registration_does_not_stop_it() {
    let (ctx, cancel) = Context::background().child();
    let (count, f) = counter();
    drop(ctx.on_done(f));
    cancel.cancel();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn never_runs_for_a_context_that_cannot_end() {
    let (count, f) = counter();
    let registration = Context::background().on_done(f);
    assert!(registration.stop());
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn runs_once_when_the_deadline_passes() {
    let (ctx, cancel) = Context::background().child_with_timeout(Duration::from_secs(1));
    let (count, f) = counter();
    let _registration = ctx.on_done(f);
    time::sleep(Duration::from_millis(999)).await;
    assert_eq!(count.load(Ordering::SeqCst), 0);
    time::sleep(Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    cancel.cancel();
    tokio::task::yield_now().await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_context_canceled_early_runs_once_and_stop_ends_the_watch() {
    let (ctx, cancel) = Context::background().child_with_timeout(Duration::from_secs(1));
    let (count, f) = counter();
    let registration = ctx.on_done(f);
    cancel.cancel();
    tokio::task::yield_now().await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(!registration.stop());

    let (other, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let (count, f) = counter();
    let registration = other.on_done(f);
    assert!(registration.stop());
    time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[test]
fn concurrent_cancels_run_it_exactly_once() {
    for _ in 0..200 {
        let (ctx, cancel) = Context::background().child();
        let (count, f) = counter();
        let _registration = ctx.on_done(f);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cancel = cancel.clone();
                std::thread::spawn(move || cancel.cancel())
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn stop_racing_the_end_either_prevents_the_call_or_reports_it_ran() {
    for _ in 0..500 {
        let (ctx, cancel) = Context::background().child();
        let (count, f) = counter();
        let registration = ctx.on_done(f);
        let canceler = std::thread::spawn(move || cancel.cancel());
        let prevented = registration.stop();
        canceler.join().unwrap();
        let ran = count.load(Ordering::SeqCst);
        assert_eq!(
            ran,
            usize::from(!prevented),
            "prevented={prevented}, ran={ran}"
        );
    }
}

#[test]
fn registration_racing_the_end_still_runs_exactly_once() {
    for _ in 0..500 {
        let (ctx, cancel) = Context::background().child();
        let (leaf, _) = ctx.child();
        let canceler = std::thread::spawn(move || cancel.cancel());
        let (count, f) = counter();
        let _registration = leaf.on_done(f);
        canceler.join().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
