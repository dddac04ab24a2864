//! Panics in every place this crate runs user code: `on_done` callbacks,
//! wakers, the closures that make a combinator's futures, the futures
//! themselves, scope bodies, and drops while a runtime shuts down. A panic
//! reaches whoever called, and nothing else is lost: no other callback is
//! skipped, no waiter goes unwoken, nothing aborts, and nothing started
//! under the panicking code runs on forever.
//!
//! Every wait is bounded, in paused time or by a timeout, so that a
//! regression fails instead of hanging.

use std::future::{pending, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Wake, Waker};
use std::thread;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio::time;
use tokio_ctx::{Context, Scope};

const HOUR: Duration = Duration::from_secs(3600);

/// A task that waits for `ctx` to end: if it is still running after the
/// test let paused time run for an hour, `ctx` was never ended.
fn watch(ctx: &Context) -> JoinHandle<()> {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        ctx.done().await;
    })
}

async fn assert_ended(watcher: JoinHandle<()>, what: &str) {
    let ended = time::timeout(HOUR, watcher).await;
    assert!(ended.is_ok(), "{what}: still running an hour later");
}

#[test]
fn a_panicking_on_done_callback_loses_no_other_callback_nor_token() {
    // Issue 10, defect 2.
    let (ctx, cancel) = Context::background().child();
    let ran = Arc::new(AtomicBool::new(false));
    let _panics = ctx.on_done(|| panic!("a callback panicked"));
    let after = {
        let ran = Arc::clone(&ran);
        ctx.on_done(move || ran.store(true, Ordering::SeqCst))
    };
    let token = ctx.cancellation_token();
    let panicked = catch_unwind(AssertUnwindSafe(|| cancel.cancel()));
    assert!(panicked.is_err(), "the panic reaches the canceller");
    assert!(ran.load(Ordering::SeqCst), "the other callback ran");
    assert!(token.is_cancelled(), "the token was canceled");
    assert!(!after.stop(), "nothing was left to stop");
    assert!(ctx.is_done());
}

/// The scenario of the next test, run in a child process: a cancel guard
/// dropped while its scope unwinds fires a panicking callback.
fn cancel_during_unwinding() {
    let (ctx, cancel) = Context::background().child();
    let _panics = ctx.on_done(|| panic!("a callback panicked"));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let _guard = cancel.drop_guard();
        panic!("the body panicked");
    }));
    assert!(unwound.is_err());
    assert!(ctx.is_done());
}

#[test]
fn a_panicking_callback_fired_during_unwinding_does_not_abort() {
    // Issue 10, defect 2: a second panic during unwinding aborts the
    // process, so this runs in a child process whose exit is checked.
    if std::env::var_os("TOKIO_CTX_CHILD").is_some() {
        cancel_during_unwinding();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_panicking_callback_fired_during_unwinding_does_not_abort",
            "--nocapture",
        ])
        .env("TOKIO_CTX_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the process ended with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A waker that panics when woken.
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("a waker panicked");
    }
}

/// A waker that counts its wakes.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_panicking_waker_loses_no_other_wakeup_nor_callback() {
    // Wakers are user code too: one that panics while a cancel wakes it
    // must not keep the others asleep.
    let (parent, cancel) = Context::background().child();
    let (child, _child_cancel) = parent.child();
    let panicking = Waker::from(Arc::new(PanickingWaker));
    let counting = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let counting_waker = Waker::from(Arc::clone(&counting));
    let mut first = Box::pin(parent.done());
    let mut second = Box::pin(parent.done());
    let mut below = Box::pin(child.done());
    let ran = Arc::new(AtomicBool::new(false));
    let _callback = {
        let ran = Arc::clone(&ran);
        child.on_done(move || ran.store(true, Ordering::SeqCst))
    };
    let poll = |fut: &mut std::pin::Pin<Box<tokio_ctx::future::Done<'_>>>, waker: &Waker| {
        fut.as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_pending()
    };
    assert!(poll(&mut first, &panicking));
    assert!(poll(&mut second, &counting_waker));
    assert!(poll(&mut below, &counting_waker));
    let panicked = catch_unwind(AssertUnwindSafe(|| cancel.cancel()));
    assert!(panicked.is_err(), "the panic reaches the canceller");
    assert_eq!(
        counting.0.load(Ordering::SeqCst),
        2,
        "the other waiters were woken"
    );
    assert!(ran.load(Ordering::SeqCst), "the callback below ran");
    assert!(!poll(&mut second, &counting_waker));
    assert!(!poll(&mut below, &counting_waker));
}

/// A way to run a set of futures, from the branches' makers.
type Combinator = fn(&Context, Vec<Maker>) -> Run;

/// Every combinator that runs a set of futures.
fn combinators() -> Vec<(&'static str, Combinator)> {
    vec![
        ("race", |ctx, fns| ctx.race(fns).map(drop).boxed()),
        ("join_all", |ctx, fns| ctx.join_all(fns).map(drop).boxed()),
        ("settle", |ctx, fns| ctx.settle(fns).map(drop).boxed()),
        ("select_first", |ctx, fns| {
            let fns = fns.into_iter().map(|f| move |ctx| f(ctx).map(Ok::<(), ()>));
            ctx.select_first(fns).map(drop).boxed()
        }),
        ("try_join_all", |ctx, fns| {
            let fns = fns.into_iter().map(|f| move |ctx| f(ctx).map(Ok::<(), ()>));
            ctx.try_join_all(fns).map(drop).boxed()
        }),
        ("as_completed", |ctx, fns| {
            let mut stream = ctx.as_completed(fns);
            async move { while futures::StreamExt::next(&mut stream).await.is_some() {} }.boxed()
        }),
    ]
}

type Maker = Box<dyn FnOnce(Context) -> futures::future::BoxFuture<'static, ()> + Send>;
type Run = futures::future::BoxFuture<'static, ()>;

#[tokio::test(start_paused = true)]
async fn a_panicking_branch_reaches_the_caller_and_its_siblings_stop() {
    for (name, run) in combinators() {
        let (tx, rx) = mpsc::channel();
        let sibling: Maker = Box::new(move |ctx: Context| {
            tx.send(watch(&ctx)).unwrap();
            pending().boxed()
        });
        let panicking: Maker = Box::new(|_ctx| {
            async {
                time::sleep(Duration::from_millis(1)).await;
                panic!("a branch panicked");
            }
            .boxed()
        });
        let caught = AssertUnwindSafe(run(&Context::background(), vec![sibling, panicking]))
            .catch_unwind()
            .await;
        assert!(caught.is_err(), "{name}: the panic reaches the caller");
        assert_ended(rx.recv().unwrap(), name).await;
    }
}

/// Runs each combinator with a first branch and a maker that panics; gives
/// the watchers on the first branch's context and on the panicking maker's.
fn with_a_panicking_maker(name: &str, run: Combinator) -> (JoinHandle<()>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let first: Maker = Box::new(move |ctx: Context| {
        tx.send(watch(&ctx)).unwrap();
        pending().boxed()
    });
    let panicking: Maker = Box::new(move |ctx: Context| {
        tx2.send(watch(&ctx)).unwrap();
        panic!("a maker panicked");
    });
    let caught = catch_unwind(AssertUnwindSafe(|| {
        drop(run(&Context::background(), vec![first, panicking]))
    }));
    assert!(caught.is_err(), "{name}: the panic reaches the caller");
    (rx.recv().unwrap(), rx.recv().unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_panicking_maker_stops_the_branches_made_before_it() {
    for (name, run) in combinators() {
        let (first, _panicking) = with_a_panicking_maker(name, run);
        assert_ended(first, name).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_maker_leaves_nothing_running_under_its_own_context() {
    for (name, run) in combinators() {
        let (_first, panicking) = with_a_panicking_maker(name, run);
        assert_ended(panicking, name).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_whose_maker_panics_leaves_nothing_running_under_its_context() {
    let (tx, rx) = mpsc::channel();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        drop(Context::background().with_timeout(HOUR, |ctx: Context| {
            tx.send(watch(&ctx)).unwrap();
            panic!("a maker panicked");
            #[allow(unreachable_code)]
            async {}
        }));
    }));
    assert!(caught.is_err());
    assert_ended(rx.recv().unwrap(), "with_timeout's maker").await;
}

#[tokio::test(start_paused = true)]
async fn a_spawned_task_that_panics_reaches_its_handle_and_stops_what_it_started() {
    let (tx, rx) = mpsc::channel();
    let task = Context::background().spawn(move |ctx| async move {
        tx.send(watch(&ctx)).unwrap();
        time::sleep(Duration::from_millis(1)).await;
        panic!("the task panicked");
    });
    let caught = AssertUnwindSafe(task).catch_unwind().await;
    assert!(
        caught.is_err(),
        "the panic is resumed where the handle is awaited"
    );
    assert_ended(rx.recv().unwrap(), "a watcher under the task").await;
}

#[tokio::test(start_paused = true)]
async fn a_scope_whose_body_maker_panics_stops_the_tasks_it_spawned() {
    // Issue 10, defect 6: the closure spawns a task that keeps a clone of
    // the scope, then panics before the scope's guard exists.
    let (tx, rx) = mpsc::channel();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _scope = Context::background().scope(|scope: Scope<()>| {
            let keep = scope.clone();
            let task = scope.spawn(move |ctx: Context| async move {
                let _keep = keep;
                ctx.done().await;
                Ok(())
            });
            tx.send(task.context().clone()).unwrap();
            panic!("the scope's closure panicked");
            #[allow(unreachable_code)]
            async {
                Ok::<(), ()>(())
            }
        });
    }));
    assert!(caught.is_err());
    let task_ctx = rx.recv().unwrap();
    assert_ended(watch(&task_ctx), "the scope's task").await;
}

#[tokio::test(start_paused = true)]
async fn a_scope_whose_body_panics_while_running_stops_its_tasks() {
    let (tx, rx) = mpsc::channel();
    let scope = Context::background().scope(|scope: Scope<()>| async move {
        let task = scope.spawn(|ctx: Context| async move {
            ctx.done().await;
            Ok(())
        });
        tx.send(task.context().clone()).unwrap();
        time::sleep(Duration::from_millis(1)).await;
        panic!("the scope's body panicked");
        #[allow(unreachable_code)]
        Ok::<(), ()>(())
    });
    let caught = AssertUnwindSafe(scope).catch_unwind().await;
    assert!(caught.is_err());
    assert_ended(watch(&rx.recv().unwrap()), "the scope's task").await;
}

/// Spawns a task into its scope when dropped, `depth` times over.
struct SpawnOnDrop {
    scope: Scope<()>,
    depth: usize,
}

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        if self.depth > 0 {
            let next = SpawnOnDrop {
                scope: self.scope.clone(),
                depth: self.depth - 1,
            };
            self.scope.spawn(move |_ctx| async move {
                let _next = next;
                pending::<Result<(), ()>>().await
            });
        }
    }
}

#[test]
fn a_drop_that_spawns_into_its_scope_while_the_runtime_shuts_down_does_not_hang() {
    // Issue 10, defect 4: a runtime shutting down drops a new task inside
    // `spawn`; if that runs under the scope's lock, a drop that spawns into
    // the same scope waits on the lock forever.
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // The scope outlives the runtime, so that the shutdown drops its
        // task while the scope still takes new ones.
        let scope = runtime.block_on(async {
            let mut scope = Box::pin(Context::background().scope(|scope: Scope<()>| async move {
                let on_drop = SpawnOnDrop {
                    scope: scope.clone(),
                    depth: 3,
                };
                scope.spawn(move |_ctx| async move {
                    let _on_drop = on_drop;
                    pending::<Result<(), ()>>().await
                });
                pending::<Result<(), ()>>().await
            }));
            assert!(futures::FutureExt::now_or_never(scope.as_mut()).is_none());
            tokio::task::yield_now().await;
            Some(scope)
        });
        drop(runtime);
        drop(scope);
        done.send(()).unwrap();
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(10)).is_ok(),
        "the runtime's shutdown hung"
    );
}
