//! `scope`: tasks that never outlive their scope, the first failure cancels
//! the rest, every error is kept, panics come back after the others stop.

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::{Context, ScopeError};

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<String> {
    let mut entries = log.lock().unwrap().clone();
    entries.sort();
    entries
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_cancels_the_siblings_and_the_scope_waits_for_them() {
    let seen = log();
    let start = Instant::now();
    let err: ScopeError<String> = Context::background()
        .scope(|scope| {
            let seen = Arc::clone(&seen);
            async move {
                for name in ["a", "b"] {
                    let seen = Arc::clone(&seen);
                    scope.spawn(move |ctx: Context| async move {
                        let err = ctx.done().await;
                        // Cooperative: record why, then finish after a short cleanup.
                        time::sleep(Duration::from_millis(5)).await;
                        seen.lock()
                            .unwrap()
                            .push(format!("{name}: {}", err.cause().unwrap()));
                        Ok::<(), String>(())
                    });
                }
                scope.spawn(|_ctx| async {
                    time::sleep(Duration::from_millis(10)).await;
                    Err::<(), _>("c failed".to_string())
                });
                Ok(())
            }
        })
        .await
        .unwrap_err();
    assert_eq!(err.errors(), ["c failed".to_string()]);
    assert!(!err.is_ended());
    assert_eq!(
        entries(&seen),
        ["a: a sibling failed", "b: a sibling failed"],
        "both siblings saw why, and the scope waited for their cleanup"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(15));
}

#[tokio::test(start_paused = true)]
async fn collect_all_lets_every_task_finish_and_keeps_every_error() {
    let finished = Arc::new(AtomicUsize::new(0));
    let err = Context::background()
        .scope(|scope| {
            let finished = Arc::clone(&finished);
            async move {
                for i in 0..4u64 {
                    let finished = Arc::clone(&finished);
                    scope.spawn(move |_ctx| async move {
                        time::sleep(Duration::from_millis(10 * i)).await;
                        finished.fetch_add(1, Ordering::SeqCst);
                        if i % 2 == 0 {
                            Err(i)
                        } else {
                            Ok(())
                        }
                    });
                }
                Ok(())
            }
        })
        .collect_all()
        .await
        .unwrap_err();
    assert_eq!(err.errors(), [0, 2], "in the order they happened");
    assert_eq!(finished.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn the_body_failing_cancels_the_tasks() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let err = Context::background()
        .scope(|scope| async move {
            scope.spawn(move |ctx: Context| async move {
                let _ = tx.send(ctx.done().await);
                Ok::<(), &str>(())
            });
            tokio::task::yield_now().await;
            Err::<(), _>("body failed")
        })
        .await
        .unwrap_err();
    assert_eq!(err.errors(), ["body failed"]);
    assert_eq!(
        rx.await.unwrap().cause().unwrap().to_string(),
        "the scope's body failed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_normal_shutdown_where_every_task_stops_cleanly_is_ok() {
    // A worker pool under a server context: shutting down is not a failure.
    let (server, _) = Context::background()
        .named("server")
        .child_with_timeout(Duration::from_millis(50));
    let start = Instant::now();
    let stopped = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&stopped);
    let out = server
        .scope(move |scope| async move {
            for _ in 0..3 {
                let counter = Arc::clone(&counter);
                scope.spawn(move |ctx: Context| async move {
                    // Stops on its own when the context ends.
                    ctx.done().await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), ()>(())
                });
            }
            Ok("pool stopped")
        })
        .await;
    assert_eq!(out.unwrap(), "pool stopped");
    assert_eq!(stopped.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(50));
}

#[tokio::test(start_paused = true)]
async fn the_outer_end_is_reported_when_tasks_give_up_with_an_error() {
    let (ctx, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_millis(50));
    let err = ctx
        .scope(|scope| async move {
            for _ in 0..3 {
                // Go style: give up with the context's error.
                scope.spawn(|ctx: Context| async move { Err::<(), _>(ctx.done().await) });
            }
            Ok(())
        })
        .await
        .unwrap_err();
    let ended = err.ended().unwrap();
    assert!(ended.is_deadline_exceeded());
    assert_eq!(ended.context_name(), Some("request"));
    assert!(err.first().is_none(), "nothing failed on its own");
    assert_eq!(err.after_cancel().count(), 3);
    assert!(err
        .to_string()
        .ends_with(") exceeded (3 failed after the scope was canceled)"));
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_is_kept_apart_from_the_siblings_it_stopped() {
    let err = Context::background()
        .scope(|scope| async move {
            for _ in 0..3 {
                scope.spawn(|ctx: Context| async move {
                    Err::<(), String>(ctx.done().await.to_string())
                });
            }
            scope.spawn(|_ctx| async {
                time::sleep(Duration::from_millis(5)).await;
                Err::<(), _>("backend answered 503".to_string())
            });
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.first().unwrap(), "backend answered 503");
    assert_eq!(err.failures().count(), 1);
    assert_eq!(err.errors().len(), 4, "none is lost");
    assert!(err.after_cancel().all(|e| e.ends_with("a sibling failed")));
    assert_eq!(
        err.to_string(),
        "1 failed in the scope: backend answered 503 (3 more failed after the scope was canceled)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ignores_cancellation_is_stopped_after_the_grace_period() {
    let dropped = Arc::new(AtomicUsize::new(0));
    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (ctx, cancel) = Context::background().child();
    let counter = Arc::clone(&dropped);
    let scope = tokio::spawn(
        ctx.scope(move |scope| async move {
            scope.spawn(move |_ctx| async move {
                let _guard = CountDrop(counter);
                pending::<Result<(), ()>>().await
            });
            Ok(())
        })
        .grace_period(Duration::from_millis(200)),
    );
    time::sleep(Duration::from_millis(10)).await;
    let canceled_at = Instant::now();
    cancel.cancel_with("shutdown");
    let err = scope.await.unwrap().unwrap_err();
    assert_eq!(
        err.ended().unwrap().cause().unwrap().to_string(),
        "shutdown"
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert_eq!(canceled_at.elapsed(), Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_resumed_after_the_other_tasks_stopped() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&stopped);
    let scope = tokio::spawn(Context::background().scope(move |scope| async move {
        scope.spawn(move |ctx: Context| async move {
            ctx.done().await;
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        });
        scope.spawn(|_ctx| async {
            time::sleep(Duration::from_millis(1)).await;
            panic!("task blew up");
            #[allow(unreachable_code)]
            Ok::<(), ()>(())
        });
        Ok(())
    }));
    let join_error = scope.await.unwrap_err();
    assert!(join_error.is_panic());
    let payload = join_error.into_panic();
    assert_eq!(*payload.downcast_ref::<&str>().unwrap(), "task blew up");
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        1,
        "the sibling stopped first"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_scope_cancels_its_tasks_none_outlive_it() {
    let children = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&children);
    let scope = Context::background().scope(move |scope| async move {
        for _ in 0..3 {
            let recorded = Arc::clone(&recorded);
            scope.spawn(move |ctx: Context| {
                recorded.lock().unwrap().push(ctx.clone());
                async move { ctx.run(pending::<Result<(), ()>>()).await.unwrap_or(Ok(())) }
            });
        }
        pending::<Result<(), ()>>().await
    });
    let mut scope = tokio_test::task::spawn(scope);
    tokio_test::assert_pending!(scope.poll());
    assert_eq!(children.lock().unwrap().len(), 3);
    drop(scope);
    for child in children.lock().unwrap().iter() {
        assert!(child.is_done());
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_spawned_into_a_canceled_scope_starts_canceled_and_joins() {
    let polled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&polled);
    let err = Context::background()
        .scope(move |scope| async move {
            scope.spawn(|_ctx| async { Err::<(), _>("first") });
            // Let the failure land and cancel the scope.
            scope.context().done().await;
            let late = scope.spawn(move |_ctx| async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
            assert!(late.await.is_err());
            Ok(())
        })
        .await;
    // The body was dropped once the scope was canceled, or finished first;
    // either way the late task never ran and nothing hangs.
    assert_eq!(err.unwrap_err().errors(), ["first"]);
    assert_eq!(polled.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn nested_scopes_carry_the_outer_cause_to_the_top() {
    // An inner task fails while the outer request is canceled in the same
    // instant: the caller must still learn about the outer cancellation.
    let (request, cancel) = Context::background().named("request").child();
    let outer = request.scope(move |outer| async move {
        let inner = outer.context().scope(|inner| async move {
            inner.spawn(|_ctx| async {
                time::sleep(Duration::from_millis(10)).await;
                Err::<(), String>("inner failed".into())
            });
            inner.spawn(move |_ctx| async move {
                time::sleep(Duration::from_millis(10)).await;
                cancel.cancel_with("client went away");
                Ok(())
            });
            Ok(())
        });
        inner.await.map_err(|e| e.to_string())
    });
    let err = outer.await.unwrap_err();
    let ended = err.ended().expect("the outer cancellation reaches the top");
    assert_eq!(ended.cause().unwrap().to_string(), "client went away");
}

#[tokio::test(start_paused = true)]
async fn scope_handles_give_the_task_values() {
    let sum = Context::background()
        .scope(|scope| async move {
            let handles: Vec<_> = (1..=4u32)
                .map(|i| scope.spawn(move |_ctx| async move { Ok::<_, ()>(i * i) }))
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            Ok(sum)
        })
        .await
        .unwrap();
    assert_eq!(sum, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_in_parallel_on_a_multi_thread_runtime_and_all_stop() {
    let running = Arc::new(AtomicUsize::new(0));
    let (ctx, cancel) = Context::background().child();
    let counter = Arc::clone(&running);
    let scope = tokio::spawn(ctx.scope(move |scope| async move {
        for _ in 0..8 {
            let counter = Arc::clone(&counter);
            scope.spawn(move |ctx: Context| async move {
                counter.fetch_add(1, Ordering::SeqCst);
                ctx.done().await;
                counter.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), ()>(())
            });
        }
        Ok(())
    }));
    while running.load(Ordering::SeqCst) < 8 {
        tokio::task::yield_now().await;
    }
    cancel.cancel();
    time::timeout(Duration::from_secs(30), scope)
        .await
        .expect("the scope finishes")
        .unwrap()
        .expect("every task stopped cleanly: a normal shutdown");
    assert_eq!(running.load(Ordering::SeqCst), 0, "every task stopped");
}

#[tokio::test(start_paused = true)]
async fn nested_scopes_carry_an_outer_timeout_to_the_top() {
    // The inner task fails in the very instant the request's budget runs out.
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_millis(10));
    let outer = request.scope(|outer| async move {
        let inner = outer.context().scope(|inner| async move {
            inner.spawn(|_ctx| async {
                time::sleep(Duration::from_millis(10)).await;
                Err::<(), String>("inner failed".into())
            });
            Ok(())
        });
        inner.await.map_err(|e| e.to_string())
    });
    let err = outer.await.unwrap_err();
    let ended = err.ended().expect("the outer deadline reaches the top");
    assert!(ended.is_deadline_exceeded());
    assert_eq!(ended.context_name(), Some("request"));
}

#[tokio::test(start_paused = true)]
async fn a_scope_under_an_ended_or_zero_budget_runs_nothing_and_returns() {
    let ran = Arc::new(AtomicUsize::new(0));
    for budget in [Duration::ZERO, Duration::from_nanos(1)] {
        let (ctx, _) = Context::background().child_with_timeout(budget);
        time::sleep(budget).await;
        let counter = Arc::clone(&ran);
        let err = ctx
            .scope(move |scope| async move {
                scope.spawn(move |_ctx| async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), ()>(())
                });
                Ok(())
            })
            .await;
        // The body may finish before it notices; the task never starts.
        if let Err(err) = err {
            assert!(err.ended().unwrap().is_deadline_exceeded());
        }
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    let (huge, _) = Context::background().child_with_timeout(Duration::MAX);
    let out = huge
        .scope(|scope| async move {
            scope
                .spawn(|_ctx| async { Ok::<_, ()>(5) })
                .await
                .map_err(|_| ())
        })
        .await;
    assert_eq!(out.unwrap(), 5);
}

/// Counts how many times it was dropped.
struct CountDrop(Arc<AtomicUsize>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Fails the way a closure that panics halfway does, with a type to infer.
fn explode<T>() -> T {
    panic!("the scope's closure blew up")
}

#[tokio::test(start_paused = true)]
async fn a_scope_closure_that_panics_leaves_no_task_running() {
    // Issue 10, defect 6: the closure spawns a task that keeps a clone of
    // the scope, then panics before the scope future exists.
    let dropped = Arc::new(AtomicUsize::new(0));
    let task_ctx = Arc::new(Mutex::new(None));
    let (counter, seen) = (Arc::clone(&dropped), Arc::clone(&task_ctx));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Context::background().scope(move |scope: tokio_ctx::Scope<()>| {
            let keep = scope.clone();
            let count = CountDrop(counter);
            let task = scope.spawn(move |_ctx| async move {
                let _keep = keep;
                let _count = count;
                pending::<Result<(), ()>>().await
            });
            *seen.lock().unwrap() = Some(task.context().clone());
            explode::<std::future::Ready<Result<(), ()>>>()
        })
    }));
    assert!(panicked.is_err());
    let ctx = task_ctx.lock().unwrap().clone().unwrap();
    assert!(ctx.is_done(), "the task's context ended with the closure");
    // It ignores its context: the grace period (one second) bounds it.
    time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the task's future was dropped"
    );
}

/// When dropped, spawns a task into `scope` that holds the next one, `depth`
/// times: user code that spawns from a destructor.
struct SpawnOnDrop(tokio_ctx::Scope<()>, usize);

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        if self.1 > 0 {
            let next = SpawnOnDrop(self.0.clone(), self.1 - 1);
            // The handle is not needed: the scope owns the task.
            drop(self.0.spawn(move |_ctx| async move {
                let _next = next;
                Ok(())
            }));
        }
    }
}

#[test]
fn a_drop_that_spawns_into_its_scope_during_runtime_shutdown_does_not_hang() {
    // Issue 10, defect 4. On a runtime that is shutting down, tokio drops a
    // new task's future inside `spawn`; that drop spawns into the same scope
    // again. Bounded: a hang fails the test instead of stalling the suite.
    let (finished, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut scope = Box::pin(Context::background().scope(
            |scope: tokio_ctx::Scope<()>| async move {
                let spawner = SpawnOnDrop(scope.clone(), 3);
                scope.spawn(move |_ctx| async move {
                    let _spawner = spawner;
                    pending::<Result<(), ()>>().await
                });
                pending::<Result<(), ()>>().await
            },
        ));
        rt.block_on(async {
            let waker = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(std::future::Future::poll(scope.as_mut(), &mut cx).is_pending());
            // Let the task start.
            tokio::task::yield_now().await;
        });
        // The scope is still open while the runtime drops its task.
        drop(rt);
        drop(scope);
        finished.send(()).unwrap();
    });
    wait.recv_timeout(Duration::from_secs(20))
        .expect("shutting the runtime down hung (or panicked)");
}

#[tokio::test(start_paused = true)]
async fn a_scope_kept_past_its_end_spawns_nothing() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    Context::background()
        .scope(|scope: tokio_ctx::Scope<()>| async move {
            let _ = tx.send(scope.clone());
            Ok(())
        })
        .await
        .unwrap();
    let late = rx.await.unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&called);
    let handle = late.spawn(move |_ctx| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    // Its context is a child of the scope's, which ended with the scope.
    assert!(handle.await.unwrap_err().is_canceled());
    assert_eq!(called.load(Ordering::SeqCst), 0, "nothing was made or run");
}

/// Spawns `n` tasks that each take `ms`, counting how many run at once.
async fn run_limited(limit: usize, n: usize, ms: u64) -> (usize, Duration) {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (Arc::clone(&running), Arc::clone(&most));
    let start = Instant::now();
    Context::background()
        .scope(move |scope| async move {
            for _ in 0..n {
                let (running, most) = (Arc::clone(&r), Arc::clone(&m));
                scope.spawn(move |_ctx| async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    time::sleep(Duration::from_millis(ms)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<(), ()>(())
                });
            }
            Ok(())
        })
        .limit(limit)
        .await
        .unwrap();
    (most.load(Ordering::SeqCst), start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_limit_runs_at_most_so_many_tasks_at_once_and_queues_the_rest() {
    assert_eq!(
        run_limited(3, 10, 10).await,
        (3, Duration::from_millis(40)),
        "ten tasks of 10ms, three at a time: four rounds"
    );
    assert_eq!(run_limited(1, 3, 10).await, (1, Duration::from_millis(30)));
    assert_eq!(
        run_limited(0, 2, 10).await,
        (1, Duration::from_millis(20)),
        "zero is taken as one: the scope still makes progress"
    );
    assert_eq!(
        run_limited(100, 5, 10).await,
        (5, Duration::from_millis(10))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_holds_on_a_multi_thread_runtime() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (Arc::clone(&running), Arc::clone(&most));
    let done = Context::background()
        .scope(move |scope| async move {
            for _ in 0..64 {
                let (running, most) = (Arc::clone(&r), Arc::clone(&m));
                scope.spawn(move |_ctx| async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, ()>(1)
                });
            }
            Ok(())
        })
        .limit(4);
    time::timeout(Duration::from_secs(30), done)
        .await
        .expect("the scope finishes")
        .unwrap();
    assert!(most.load(Ordering::SeqCst) <= 4);
    assert_eq!(running.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn queued_tasks_of_a_failed_scope_never_start() {
    let started = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&started);
    let err = Context::background()
        .scope(move |scope| async move {
            scope.spawn(|_ctx| async {
                time::sleep(Duration::from_millis(5)).await;
                Err::<(), _>("first")
            });
            let queued: Vec<_> = (0..3)
                .map(|_| {
                    let counter = Arc::clone(&counter);
                    scope.spawn(move |_ctx| async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                })
                .collect();
            for handle in queued {
                assert!(handle.await.unwrap_err().is_canceled());
            }
            Ok(())
        })
        .limit(1)
        .await
        .unwrap_err();
    assert_eq!(err.first(), Some(&"first"));
    assert_eq!(started.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn ready_holds_a_producer_back_until_there_is_room() {
    let start = Instant::now();
    let waited = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&waited);
    Context::background()
        .scope(move |scope| async move {
            for _ in 0..4 {
                scope.ready().await;
                log.lock().unwrap().push(start.elapsed().as_millis());
                scope.spawn(|_ctx| async {
                    time::sleep(Duration::from_millis(10)).await;
                    Ok::<_, ()>(())
                });
            }
            Ok(())
        })
        .limit(2)
        .await
        .unwrap();
    assert_eq!(*waited.lock().unwrap(), [0, 0, 10, 10]);
}

#[tokio::test(start_paused = true)]
async fn ready_returns_once_the_scope_has_finished() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    Context::background()
        .scope(|scope: tokio_ctx::Scope<()>| async move {
            let _ = tx.send(scope.clone());
            Ok(())
        })
        .limit(1)
        .await
        .unwrap();
    let late = rx.await.unwrap();
    time::timeout(Duration::from_secs(1), late.ready())
        .await
        .expect("a finished scope never makes a producer wait");
}

#[tokio::test(start_paused = true)]
async fn a_task_cut_after_the_grace_period_is_reported_as_such() {
    let (request, cancel) = Context::background().child();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let scope = request
        .scope(|scope| async move {
            let stubborn = scope.spawn(|ctx: Context| async move {
                ctx.done().await;
                // A cleanup longer than the scope's grace period.
                let _ = ctx
                    .cleanup(Duration::from_secs(5), |_ctx| {
                        time::sleep(Duration::from_secs(1))
                    })
                    .await;
                Ok::<_, &str>(())
            });
            let _ = tx.send(stubborn);
            Ok(())
        })
        .grace_period(Duration::from_millis(100));
    let scope = tokio::spawn(scope);
    let stubborn = rx.await.unwrap();
    let canceled_at = Instant::now();
    cancel.cancel_with("shutting down");
    let err = scope.await.unwrap().unwrap_err();
    assert_eq!(canceled_at.elapsed(), Duration::from_millis(100));
    assert_eq!(err.forced(), 1);
    assert_eq!(
        err.ended().unwrap().cause().unwrap().to_string(),
        "shutting down"
    );
    assert!(err
        .to_string()
        .ends_with("; 1 dropped after the grace period"));
    assert_eq!(
        stubborn.await.unwrap_err().cause().unwrap().to_string(),
        "the task did not stop within its grace period and was dropped"
    );
}
