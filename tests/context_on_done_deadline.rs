//! `on_done` and `cancellation_token` on contexts with deadlines, and on
//! contexts that are dropped before they end: the callback runs whichever
//! way the context ends, with or without the runtime it was registered in,
//! and nothing watches a context that can no longer end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};
use tokio_ctx::Context;
use tokio_util::sync::CancellationToken;

/// How long a test waits for something the real clock triggers: far beyond
/// the deadlines below, so that only a lost callback fails it.
const BOUND: Duration = Duration::from_secs(10);

fn counter() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
    let count = Arc::new(AtomicUsize::new(0));
    let inner = Arc::clone(&count);
    (count, move || {
        inner.fetch_add(1, Ordering::SeqCst);
    })
}

fn signal() -> (mpsc::Receiver<()>, impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    (rx, move || {
        let _ = tx.send(());
    })
}

fn runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn a_cancellation_runs_the_callback_after_the_registering_runtime_is_gone() {
    let rt = runtime();
    let (ctx, cancel) = Context::background().child_with_timeout(Duration::from_secs(3600));
    let (count, f) = counter();
    let (registration, token) = rt.block_on(async { (ctx.on_done(f), ctx.cancellation_token()) });
    drop(rt);
    cancel.cancel();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(token.is_cancelled());
    assert!(!registration.stop());
}

#[test]
fn a_deadline_fires_the_callback_outside_any_runtime() {
    let (ctx, _cancel) = Context::background().child_with_timeout(Duration::from_millis(20));
    let (fired, f) = signal();
    let _registration = ctx.on_done(f);
    let token = ctx.cancellation_token();
    fired
        .recv_timeout(BOUND)
        .expect("the deadline fired the callback");
    // A runtime only to wait for the token: it was registered outside one.
    runtime().block_on(async {
        tokio::time::timeout(BOUND, token.cancelled())
            .await
            .expect("the deadline canceled the token");
    });
}

#[test]
fn a_deadline_fires_the_callback_after_the_registering_runtime_was_dropped() {
    let rt = runtime();
    let (fired, f) = signal();
    let (ctx, _cancel, _registration) = rt.block_on(async {
        let (ctx, cancel) = Context::background().child_with_timeout(Duration::from_millis(20));
        let registration = ctx.on_done(f);
        (ctx, cancel, registration)
    });
    drop(rt);
    fired
        .recv_timeout(BOUND)
        .expect("the deadline fired the callback");
    assert!(ctx.is_done());
}

#[tokio::test(start_paused = true)]
async fn a_deadline_fires_on_the_runtimes_clock() {
    let (ctx, _cancel) = Context::background().child_with_timeout(Duration::from_secs(30));
    let (count, f) = counter();
    let _registration = ctx.on_done(f);
    let token = ctx.cancellation_token();
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert!(!token.is_cancelled());
    tokio::time::advance(Duration::from_secs(1)).await;
    tokio::task::yield_now().await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(token.is_cancelled());
}

#[test]
fn a_context_dropped_before_it_ended_runs_its_callbacks_and_releases_its_tokens() {
    let (ctx, cancel) = Context::background().child();
    let (child, _) = ctx.child();
    let (count, f) = counter();
    drop(child.on_done(f));
    let token = child.cancellation_token();
    let (kept, g) = counter();
    let registration = ctx.on_done(g);
    drop(child);
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "the child is gone: nothing can wait for it"
    );
    assert!(token.is_cancelled());
    drop(cancel);
    drop(ctx);
    assert_eq!(
        kept.load(Ordering::SeqCst),
        0,
        "the registration keeps its context"
    );
    drop(registration);
    assert_eq!(kept.load(Ordering::SeqCst), 1);
}

#[test]
fn a_stopped_callback_does_not_run_when_its_context_is_dropped() {
    let (ctx, _cancel) = Context::background().child();
    let (count, f) = counter();
    let registration = ctx.on_done(f);
    assert!(registration.stop());
    drop(registration);
    drop(ctx);
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn no_task_outlives_the_contexts_that_registered_callbacks() {
    let baseline = alive_tasks();
    let (root, cancel) = Context::background().child();
    let mut kept = Vec::new();
    for i in 0..1_000 {
        let (ctx, handle) = root.child_with_timeout(Duration::from_secs(30));
        match i % 3 {
            0 => drop(ctx.cancellation_token()),
            1 => drop(ctx.on_done(|| {})),
            _ => kept.push((ctx.on_done(|| {}), ctx.cancellation_token())),
        }
        if i % 2 == 0 {
            drop(handle);
        } else {
            handle.cancel();
        }
    }
    settle().await;
    // Only the contexts kept alive by their registrations are watched.
    cancel.cancel();
    settle().await;
    assert!(kept.iter().all(|(_, token)| token.is_cancelled()));
    assert_eq!(
        alive_tasks(),
        baseline,
        "every watcher ended with its context"
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_seeded_child_dropped_without_its_guard_leaves_no_task() {
    let baseline = alive_tasks();
    let token = CancellationToken::new();
    for _ in 0..100 {
        let (child, _cancel) = Context::background().child_with_token(token.clone());
        drop(child);
    }
    settle().await;
    assert_eq!(alive_tasks(), baseline);
    assert!(!token.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn a_token_seeded_child_still_ends_with_its_token_and_its_handle() {
    let token = CancellationToken::new();
    let (child, cancel) = Context::background().child_with_token(token.clone());
    let waiter = tokio::spawn(child.done_owned());
    drop(cancel);
    settle().await;
    assert!(!child.is_done());
    token.cancel();
    let err = tokio::time::timeout(BOUND, waiter).await.unwrap().unwrap();
    assert_eq!(
        err.cause().unwrap().to_string(),
        "its cancellation token was canceled"
    );
}

#[test]
fn a_runtime_without_a_timer_leaves_its_deadlines_to_the_real_clock() {
    let rt = Builder::new_current_thread().build().unwrap();
    let (fired, f) = signal();
    let (_ctx, _cancel, _registration) = rt.block_on(async {
        let (ctx, cancel) = Context::background().child_with_timeout(Duration::from_millis(20));
        let registration = ctx.on_done(f);
        (ctx, cancel, registration)
    });
    fired
        .recv_timeout(BOUND)
        .expect("the deadline fired the callback");
}
