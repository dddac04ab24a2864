//! `spawn` and `spawn_blocking`: one task under its own child; dropping the
//! handle stops it unless detached.

use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time;
use tokio_ctx::Context;

#[tokio::test(start_paused = true)]
async fn a_task_gives_its_output_or_its_contexts_error() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let quick = ctx.spawn(|ctx| async move { ctx.remaining() });
    assert_eq!(quick.await.unwrap(), Some(Duration::from_secs(1)));
    let slow = ctx.spawn(|_ctx| time::sleep(Duration::from_secs(5)));
    assert!(slow.await.unwrap_err().is_deadline_exceeded());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_stops_the_task_and_says_why() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = Context::background().spawn(move |ctx: Context| {
        let watcher = ctx.clone();
        tokio::spawn(async move {
            let _ = tx.send(watcher.done().await);
        });
        pending::<()>()
    });
    tokio::task::yield_now().await;
    drop(task);
    let err = rx.await.unwrap();
    assert_eq!(
        err.cause().unwrap().to_string(),
        "its task handle was dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_detached_task_runs_on_but_still_ends_with_its_parent() {
    let (ctx, cancel) = Context::background().child();
    let finished = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&finished);
    let join = ctx
        .spawn(move |_ctx| async move {
            time::sleep(Duration::from_millis(10)).await;
            flag.store(true, Ordering::SeqCst);
        })
        .detach();
    assert!(join.await.unwrap().is_ok());
    assert!(finished.load(Ordering::SeqCst));

    let join = ctx.spawn(|_ctx| pending::<()>()).detach();
    cancel.cancel_with("parent ended");
    assert_eq!(
        join.await
            .unwrap()
            .unwrap_err()
            .cause()
            .unwrap()
            .to_string(),
        "parent ended"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_resumes_its_panic_in_the_awaiting_task() {
    let awaiting = tokio::spawn(async {
        let task = Context::background().spawn(|_ctx| async { panic!("inside the task") });
        task.await
    });
    let err = awaiting.await.unwrap_err();
    assert!(err.is_panic());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_work_observes_its_context() {
    let (ctx, cancel) = Context::background().child();
    let rounds = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&rounds);
    let task = ctx.spawn_blocking(move |ctx| {
        while ctx.check().is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::yield_now();
        }
        ctx.err().unwrap()
    });
    while rounds.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    cancel.cancel_with("enough");
    let seen = task.await.unwrap();
    assert_eq!(seen.cause().unwrap().to_string(), "enough");
}

#[tokio::test(start_paused = true)]
async fn blocking_work_under_an_ended_context_does_not_start() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let task = ctx.spawn_blocking(move |_ctx| flag.store(true, Ordering::SeqCst));
    assert!(task.await.unwrap_err().is_canceled());
    assert!(!ran.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn blocking_work_sees_its_context_as_current() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(3));
    let remaining = ctx
        .spawn_blocking(|_ctx| Context::current().remaining())
        .await
        .unwrap();
    assert_eq!(remaining, Some(Duration::from_secs(3)));
}
