//! `Context::current()`: the combinator's child while it runs, background
//! outside, and restored on the way out.

use std::time::Duration;

use tokio_ctx::Context;

#[derive(Debug, PartialEq)]
struct Layer(&'static str);

async fn deep_library_call() -> (Option<Duration>, Option<&'static str>) {
    let ctx = Context::current();
    (ctx.remaining(), ctx.value::<Layer>().map(|l| l.0))
}

#[tokio::test(start_paused = true)]
async fn outside_any_combinator_current_is_background() {
    let ctx = Context::current();
    assert!(!ctx.is_done());
    assert_eq!(ctx.deadline(), None);
}

#[tokio::test(start_paused = true)]
async fn code_that_takes_no_context_still_inherits_the_budget() {
    let (request, _) = Context::background()
        .with_value(Layer("handler"))
        .child_with_timeout(Duration::from_secs(10));
    let seen = request
        .with_timeout(Duration::from_secs(2), |_| deep_library_call())
        .await
        .unwrap();
    assert_eq!(seen, (Some(Duration::from_secs(2)), Some("handler")));
}

#[tokio::test(start_paused = true)]
async fn nested_combinators_restore_the_outer_context() {
    let outer = Context::background().with_value(Layer("outer"));
    let (before, inner, after) = outer
        .run(async {
            let before = Context::current().value::<Layer>().map(|l| l.0);
            let inner = Context::current()
                .with_value(Layer("inner"))
                .run(async { Context::current().value::<Layer>().map(|l| l.0) })
                .await
                .unwrap();
            let after = Context::current().value::<Layer>().map(|l| l.0);
            (before, inner, after)
        })
        .await
        .unwrap();
    assert_eq!(before, Some("outer"));
    assert_eq!(inner, Some("inner"));
    assert_eq!(after, Some("outer"));
    assert_eq!(Context::current().value::<Layer>(), None);
}

#[tokio::test(start_paused = true)]
async fn current_does_not_leak_into_a_spawned_task() {
    let ctx = Context::background().with_value(Layer("request"));
    let seen = ctx
        .attach(async {
            tokio::spawn(async { Context::current().value::<Layer>().is_some() })
                .await
                .unwrap()
        })
        .await;
    assert!(
        !seen,
        "spawned tasks start from background unless given a context"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_code_can_observe_the_context() {
    let (ctx, cancel) = Context::background().child();
    let worker_ctx = ctx.clone();
    let worker = tokio::task::spawn_blocking(move || {
        worker_ctx.attach_sync(|| {
            let mut rounds = 0u64;
            while Context::current().check().is_ok() {
                rounds += 1;
                std::thread::yield_now();
            }
            (rounds, Context::current().err().unwrap())
        })
    });
    tokio::task::yield_now().await;
    cancel.cancel_with("enough");
    let (_, err) = worker.await.unwrap();
    assert_eq!(err.cause().unwrap().to_string(), "enough");
}

/// Records what `Context::current()` says when it is dropped.
struct SeesCurrentOnDrop(std::sync::Arc<std::sync::Mutex<Option<Context>>>);

impl Drop for SeesCurrentOnDrop {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(Context::current());
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_dropped_early_sees_its_own_ended_context_in_drop_code() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let guard = SeesCurrentOnDrop(seen.clone());
    let step = Context::background()
        .with_value(Layer("step"))
        .with_timeout(Duration::from_secs(1), move |_| async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
    let mut step = tokio_test::task::spawn(step);
    assert!(step.poll().is_pending());
    drop(step);
    let seen = seen.lock().unwrap().take().expect("the guard was dropped");
    assert_eq!(seen.value::<Layer>(), Some(&Layer("step")));
    let err = seen
        .err()
        .expect("the step's child is canceled before its future is dropped");
    assert_eq!(
        err.cause().unwrap().to_string(),
        "the operation it was derived for finished"
    );
    assert_eq!(
        Context::current().value::<Layer>(),
        None,
        "restored after the drop"
    );
}

#[test]
fn a_panic_inside_attach_sync_restores_the_outer_context() {
    let outer = Context::background().with_value(Layer("outer"));
    outer.attach_sync(|| {
        let inner = Context::background().with_value(Layer("inner"));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            inner.attach_sync(|| panic!("boom"));
        }));
        assert!(panicked.is_err());
        assert_eq!(Context::current().value::<Layer>(), Some(&Layer("outer")));
    });
    assert_eq!(Context::current().value::<Layer>(), None);
}

#[tokio::test(start_paused = true)]
async fn tasks_interleaving_on_one_thread_each_keep_their_own_context() {
    let task = |name: &'static str| {
        tokio::spawn(
            Context::background()
                .with_value(Layer(name))
                .attach(async move {
                    let mut seen = Vec::new();
                    for _ in 0..3 {
                        seen.push(Context::current().value::<Layer>().map(|l| l.0));
                        tokio::task::yield_now().await;
                    }
                    seen
                }),
        )
    };
    let (a, b) = (task("a"), task("b"));
    assert_eq!(a.await.unwrap(), [Some("a"); 3]);
    assert_eq!(b.await.unwrap(), [Some("b"); 3]);
}
