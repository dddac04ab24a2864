//! `Named`: every method of `Context` that derives a context exists on a
//! named derivation, and the name reaches the errors of what it derives.

use std::future::pending;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio_ctx::{Context, Error};
use tokio_util::sync::CancellationToken;

/// The name of the context `err` says ended.
fn name(err: &Error) -> &str {
    err.context_name().unwrap_or("<unnamed>")
}

#[tokio::test(start_paused = true)]
async fn steps_and_tasks_carry_the_name() {
    let token = CancellationToken::new();
    let (ctx, _guard) = Context::background()
        .named("worker")
        .child_with_token(token.clone());
    token.cancel();
    assert_eq!(name(&ctx.done().await), "worker");

    let err = Context::background()
        .named("release lease")
        .cleanup(Duration::from_millis(5), |_ctx| pending::<()>())
        .await
        .unwrap_err();
    assert_eq!(name(&err), "release lease");
    assert!(err.is_own());

    let task = Context::background()
        .named("indexer")
        .spawn(|_ctx| pending::<()>());
    task.cancel();
    assert_eq!(name(&task.await.unwrap_err()), "indexer");

    let blocking = Context::background()
        .named("checksum")
        .spawn_blocking(|ctx| loop {
            // Blocking code checks its context between units of work.
            if let Some(err) = ctx.err() {
                return name(&err).to_string();
            }
            std::thread::yield_now();
        });
    blocking.cancel();
    // Canceled before or while it runs: either way the error names it.
    match blocking.await {
        Ok(seen) => assert_eq!(seen, "checksum"),
        Err(err) => assert_eq!(name(&err), "checksum"),
    }

    // `run` puts `fut` under a named child, current while it runs.
    let current = Context::background()
        .named("flush")
        .run(async { Context::current() })
        .await
        .unwrap();
    assert_eq!(
        name(&current.err().unwrap()),
        "flush",
        "ended with the step"
    );
}

#[tokio::test(start_paused = true)]
async fn a_named_scope_names_its_context() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let out = Context::background()
        .named("fetch")
        .scope(|scope: tokio_ctx::Scope<()>| async move {
            let _ = tx.send(scope.context().clone());
            Ok(1)
        })
        .await;
    assert_eq!(out.unwrap(), 1);
    assert_eq!(name(&rx.await.unwrap().err().unwrap()), "fetch");
}

/// Keeps each branch's context, to read its name once the combinator is
/// done with it.
fn keeper() -> Arc<Mutex<Vec<Context>>> {
    Arc::new(Mutex::new(Vec::new()))
}

fn names(kept: &Arc<Mutex<Vec<Context>>>) -> Vec<String> {
    let mut names: Vec<_> = kept
        .lock()
        .unwrap()
        .iter()
        .map(|ctx| name(&ctx.err().unwrap()).to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(start_paused = true)]
async fn every_fan_out_combinator_names_each_branch_with_its_index() {
    let expected = ["part[0]", "part[1]"];
    macro_rules! branches {
        ($kept:expr, $out:expr) => {
            [0u8, 1].map(|i| {
                let kept = Arc::clone(&$kept);
                move |ctx: Context| {
                    kept.lock().unwrap().push(ctx);
                    async move { $out(i) }
                }
            })
        };
    }

    let kept = keeper();
    let ctx = Context::background();
    ctx.named("part")
        .race(branches!(kept, |i| i))
        .await
        .unwrap();
    assert_eq!(names(&kept), expected);

    let kept = keeper();
    ctx.named("part")
        .select_first(branches!(kept, Ok::<u8, ()>))
        .await
        .unwrap();
    assert_eq!(names(&kept), expected);

    let kept = keeper();
    ctx.named("part")
        .join_all(branches!(kept, |i| i))
        .await
        .unwrap();
    assert_eq!(names(&kept), expected);

    let kept = keeper();
    ctx.named("part")
        .try_join_all(branches!(kept, Ok::<u8, ()>))
        .await
        .unwrap();
    assert_eq!(names(&kept), expected);

    let kept = keeper();
    ctx.named("part").settle(branches!(kept, |i| i)).await;
    assert_eq!(names(&kept), expected);

    let kept = keeper();
    let _: Vec<_> = ctx
        .named("part")
        .as_completed(branches!(kept, |i| i))
        .collect()
        .await;
    assert_eq!(names(&kept), expected);

    let kept = keeper();
    let (k0, k1) = (Arc::clone(&kept), Arc::clone(&kept));
    ctx.named("part")
        .race_either(
            move |ctx| {
                k0.lock().unwrap().push(ctx);
                async { 1u8 }
            },
            move |ctx| {
                k1.lock().unwrap().push(ctx);
                async { "two" }
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&kept), expected);
}

#[tokio::test(start_paused = true)]
async fn a_named_empty_race_names_its_error() {
    let none: Vec<fn(Context) -> std::future::Ready<()>> = Vec::new();
    let err = Context::background()
        .named("mirrors")
        .race(none)
        .await
        .unwrap_err();
    assert_eq!(name(&err), "mirrors");
}
