//! User code that panics where a context runs it: `on_done` callbacks,
//! wakers (woken, replaced, dropped), and drops while a runtime shuts down.
//!
//! The rule, Trio's: one failing callback never suppresses the others.
//! Every callback runs, every token is canceled, every waker is woken, and
//! then the first panic is resumed on the thread that ended the context,
//! unless that thread is already unwinding, where a second panic would
//! abort the process: the panic is then dropped (and reported to `tracing`).

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Wake, Waker};
use std::time::Duration;

use tokio_ctx::Context;

fn counter() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
    let count = Arc::new(AtomicUsize::new(0));
    let inner = Arc::clone(&count);
    (count, move || {
        inner.fetch_add(1, Ordering::SeqCst);
    })
}

fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("?")
}

#[test]
fn a_panicking_callback_loses_no_other_callback_and_no_token() {
    let (ctx, cancel) = Context::background().child();
    let first = ctx.on_done(|| panic!("first callback"));
    let (count, f) = counter();
    let second = ctx.on_done(f);
    let token = ctx.cancellation_token();
    let (late, g) = counter();
    let third = ctx.on_done(g);

    let panic = catch_unwind(AssertUnwindSafe(|| cancel.cancel())).unwrap_err();
    assert_eq!(
        message(&*panic),
        "first callback",
        "the panic reaches the canceller"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(late.load(Ordering::SeqCst), 1);
    assert!(token.is_cancelled());
    assert!(ctx.is_done());
    for registration in [&first, &second, &third] {
        assert!(!registration.stop(), "every callback ran or was attempted");
    }
    cancel.cancel();
    assert_eq!(count.load(Ordering::SeqCst), 1, "nothing runs twice");
}

#[test]
fn two_panicking_callbacks_both_run_and_one_panic_is_resumed() {
    let (ctx, cancel) = Context::background().child();
    let (count, f) = counter();
    let _a = ctx.on_done({
        let count = Arc::clone(&count);
        move || {
            count.fetch_add(1, Ordering::SeqCst);
            panic!("a")
        }
    });
    let _b = ctx.on_done({
        let count = Arc::clone(&count);
        move || {
            count.fetch_add(1, Ordering::SeqCst);
            panic!("b")
        }
    });
    let _c = ctx.on_done(f);
    let panic = catch_unwind(AssertUnwindSafe(|| cancel.cancel())).unwrap_err();
    assert!(["a", "b"].contains(&message(&*panic)));
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[test]
fn a_cancel_from_a_destructor_during_unwinding_runs_every_callback_and_does_not_abort() {
    let (ctx, cancel) = Context::background().child();
    let _a = ctx.on_done(|| panic!("callback"));
    let (count, f) = counter();
    let _b = ctx.on_done(f);
    let token = ctx.cancellation_token();
    let guard = cancel.drop_guard();
    let panic = catch_unwind(AssertUnwindSafe(move || {
        let _guard = guard;
        panic!("body");
    }))
    .unwrap_err();
    assert_eq!(message(&*panic), "body", "the original panic goes on");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(token.is_cancelled());
}

#[test]
fn a_step_dropped_during_unwinding_with_a_panicking_callback_does_not_abort() {
    let (count, f) = counter();
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let mut cx = TaskContext::from_waker(futures::task::noop_waker_ref());
        let (ctx, _cancel) = Context::background().child();
        let mut step = pin!(ctx.with_timeout(Duration::MAX, |child| {
            // Registered on the step's child: the step cancels it on drop.
            std::mem::forget(child.on_done(|| panic!("callback")));
            std::mem::forget(child.on_done(f));
            std::future::pending::<()>()
        }));
        assert!(step.as_mut().poll(&mut cx).is_pending());
        panic!("body");
    }))
    .unwrap_err();
    assert_eq!(message(&*panic), "body");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

/// A waker that panics when woken, and counts its wakes.
struct Bomb;

impl Wake for Bomb {
    fn wake(self: Arc<Self>) {
        panic!("waker");
    }
}

#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_panicking_waker_does_not_keep_the_others_from_waking() {
    let (ctx, cancel) = Context::background().child();
    let (child, _child_cancel) = ctx.child();
    let bomb = Waker::from(Arc::new(Bomb));
    let count = Arc::new(Count::default());
    let good = Waker::from(Arc::clone(&count));
    let mut first = pin!(ctx.done());
    let mut second = pin!(child.done());
    assert!(first
        .as_mut()
        .poll(&mut TaskContext::from_waker(&bomb))
        .is_pending());
    assert!(second
        .as_mut()
        .poll(&mut TaskContext::from_waker(&good))
        .is_pending());
    let (ran, f) = counter();
    let _registration = child.on_done(f);

    let panic = catch_unwind(AssertUnwindSafe(|| cancel.cancel())).unwrap_err();
    assert_eq!(message(&*panic), "waker");
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "the other waker was woken"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the callback ran");
    assert!(child.is_done());
}

/// A waker whose last clone panics when dropped.
struct DropBomb(Mutex<bool>);

impl Wake for DropBomb {
    fn wake(self: Arc<Self>) {}
}

impl Drop for DropBomb {
    fn drop(&mut self) {
        if *self.0.lock().unwrap() {
            panic!("waker drop");
        }
    }
}

#[test]
fn a_replaced_waker_that_panics_on_drop_leaves_the_new_one_registered() {
    let (ctx, cancel) = Context::background().child();
    let bomb = Arc::new(DropBomb(Mutex::new(false)));
    let mut done = pin!(ctx.done());
    {
        let waker = Waker::from(Arc::clone(&bomb));
        assert!(done
            .as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending());
    }
    *bomb.0.lock().unwrap() = true;
    drop(bomb);
    let count = Arc::new(Count::default());
    let good = Waker::from(Arc::clone(&count));
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let _ = done.as_mut().poll(&mut TaskContext::from_waker(&good));
    }))
    .unwrap_err();
    assert_eq!(message(&*panic), "waker drop");
    cancel.cancel();
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "the new waker is woken");
}

#[test]
fn a_context_dropped_unended_runs_every_callback_and_resumes_the_first_panic() {
    let (ctx, cancel) = Context::background().child();
    let _a = ctx.on_done(|| panic!("callback"));
    let (count, f) = counter();
    drop(ctx.on_done(f));
    let token = ctx.cancellation_token();
    drop(_a);
    drop(cancel);
    let panic = catch_unwind(AssertUnwindSafe(move || drop(ctx))).unwrap_err();
    assert_eq!(message(&*panic), "callback");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(token.is_cancelled());
}

#[test]
fn a_context_dropped_during_unwinding_with_a_panicking_callback_does_not_abort() {
    let (count, f) = counter();
    let panic = catch_unwind(AssertUnwindSafe(move || {
        let (ctx, _cancel) = Context::background().child();
        drop(ctx.on_done(|| panic!("callback")));
        drop(ctx.on_done(f));
        panic!("body");
    }))
    .unwrap_err();
    assert_eq!(message(&*panic), "body");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn a_runtime_shutting_down_with_panicking_callbacks_under_its_tasks_runs_them_all() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (count, _) = counter();
    let (request, _cancel) = Context::background().child();
    let (started, wait) = std::sync::mpsc::channel();
    for i in 0..20 {
        let count = Arc::clone(&count);
        let request = request.clone();
        let started = started.clone();
        rt.spawn(async move {
            request
                .with_timeout(Duration::from_secs(3600), move |child| {
                    std::mem::forget(child.on_done(move || {
                        count.fetch_add(1, Ordering::SeqCst);
                        if i % 3 == 0 {
                            panic!("callback {i}");
                        }
                    }));
                    started.send(()).unwrap();
                    std::future::pending::<()>()
                })
                .await
        });
    }
    for _ in 0..20 {
        wait.recv().unwrap();
    }
    rt.shutdown_timeout(Duration::from_secs(10));
    assert_eq!(
        count.load(Ordering::SeqCst),
        20,
        "every step's callback ran"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_callback_at_a_deadline_keeps_the_others_and_later_deadlines() {
    let (ctx, _cancel) = Context::background().child_with_timeout(Duration::from_secs(1));
    let _a = ctx.on_done(|| panic!("callback"));
    let (count, f) = counter();
    let _b = ctx.on_done(f);
    let (later, _later_cancel) = Context::background().child_with_timeout(Duration::from_secs(2));
    let token = later.cancellation_token();
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::yield_now().await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    tokio::time::timeout(Duration::from_secs(2), token.cancelled())
        .await
        .expect("the later deadline still fires");
}

#[test]
fn a_callback_registered_after_the_end_panics_on_the_caller_and_is_spent() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let _registration = ctx.on_done(|| panic!("late callback"));
    }))
    .unwrap_err();
    assert_eq!(message(&*panic), "late callback");
    let (count, f) = counter();
    let registration = ctx.on_done(f);
    assert_eq!(count.load(Ordering::SeqCst), 1, "the context still works");
    assert!(!registration.stop());
}

#[test]
fn a_waiter_whose_waker_panics_when_dropped_leaves_the_context_working() {
    let (ctx, cancel) = Context::background().child();
    let bomb = Arc::new(DropBomb(Mutex::new(false)));
    let count = Arc::new(Count::default());
    let good = Waker::from(Arc::clone(&count));
    let mut other = pin!(ctx.done());
    assert!(other
        .as_mut()
        .poll(&mut TaskContext::from_waker(&good))
        .is_pending());
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let mut done = Box::pin(ctx.done());
        let waker = Waker::from(Arc::clone(&bomb));
        assert!(done
            .as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending());
        drop(waker);
        *bomb.0.lock().unwrap() = true;
        drop(bomb);
        // The future's copy and the context's: the last one panics.
        drop(done);
    }))
    .unwrap_err();
    assert_eq!(message(&*panic), "waker drop");
    cancel.cancel();
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "the other waiter is woken"
    );
}

#[test]
fn a_cause_that_panics_when_dropped_leaves_the_first_cause_in_place() {
    #[derive(Debug)]
    struct Bad;
    impl std::fmt::Display for Bad {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bad")
        }
    }
    impl std::error::Error for Bad {}
    impl Drop for Bad {
        fn drop(&mut self) {
            panic!("cause drop");
        }
    }
    let (ctx, cancel) = Context::background().child();
    cancel.cancel_with("first");
    let panic = catch_unwind(AssertUnwindSafe(|| cancel.cancel_with(Bad))).unwrap_err();
    assert_eq!(message(&*panic), "cause drop");
    assert_eq!(ctx.err().unwrap().cause().unwrap().to_string(), "first");
}

#[cfg(feature = "tracing")]
mod subscriber {
    use super::*;
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// A subscriber that panics on every event.
    struct Panicking;

    impl Subscriber for Panicking {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {
            panic!("subscriber");
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn a_panicking_subscriber_does_not_keep_a_cancellation_from_waking_anyone() {
        let (ctx, cancel) = Context::background().child();
        let (count, f) = counter();
        let _registration = ctx.on_done(f);
        let woken = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&woken));
        let mut done = pin!(ctx.done());
        assert!(done
            .as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending());
        let panic = tracing::subscriber::with_default(Panicking, || {
            catch_unwind(AssertUnwindSafe(|| cancel.cancel())).unwrap_err()
        });
        assert_eq!(message(&*panic), "subscriber");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert!(ctx.is_done());
    }
}
