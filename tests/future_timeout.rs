//! `with_timeout` / `with_deadline` / `run`: the step's own limit against the
//! caller's, the child's lifetime, and the same-poll policy.

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use futures::future::Either;
use tokio::sync::Semaphore;
use tokio::time::{self, Instant};
use tokio_ctx::Context;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn a_step_whose_own_limit_fires_is_recoverable() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(60));
    let err = request
        .named("close")
        .with_timeout(5 * MS, |_| pending::<()>())
        .await
        .unwrap_err();
    assert!(err.is_deadline_exceeded());
    assert!(err.is_own());
    assert_eq!(err.context_name(), Some("close"));
    assert_eq!(err.budget(), Some(5 * MS));
    assert!(!request.is_done(), "the request goes on");
}

#[tokio::test(start_paused = true)]
async fn a_step_cut_short_by_the_request_budget_is_not() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(3 * MS);
    let err = request
        .named("close")
        .with_timeout(5 * MS, |ctx| async move {
            assert_eq!(ctx.remaining(), Some(3 * MS), "the step gets what is left");
            pending::<()>().await
        })
        .await
        .unwrap_err();
    assert!(err.is_deadline_exceeded());
    assert!(!err.is_own());
    assert_eq!(err.context_name(), Some("request"));
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_from_above_is_reported_as_not_own() {
    let (request, cancel) = Context::background().child();
    let step = request.with_timeout(Duration::from_secs(1), |_| pending::<()>());
    let mut step = task::spawn(step);
    assert_pending!(step.poll());
    cancel.cancel_with("client gone");
    assert!(step.is_woken());
    let err = assert_ready!(step.poll()).unwrap_err();
    assert!(err.is_canceled());
    assert!(!err.is_own());
    assert_eq!(err.cause().unwrap().to_string(), "client gone");
}

#[tokio::test(start_paused = true)]
async fn an_output_ready_in_the_poll_the_deadline_passes_wins() {
    // Both the sleep and the step's deadline end at 10ms; the inner future is
    // polled first, so its output is returned rather than thrown away.
    let out = Context::background()
        .with_timeout(10 * MS, |_| async {
            time::sleep(10 * MS).await;
            "finished"
        })
        .await;
    assert_eq!(out.unwrap(), "finished");
}

#[tokio::test(start_paused = true)]
async fn an_outer_cancellation_in_the_same_poll_is_still_visible_to_the_caller() {
    let (request, cancel) = Context::background().child();
    let out = request
        .with_timeout(Duration::from_secs(1), |_| async move {
            cancel.cancel_with("shutdown");
            42
        })
        .await;
    assert_eq!(out.unwrap(), 42);
    assert_eq!(
        request.check().unwrap_err().cause().unwrap().to_string(),
        "shutdown"
    );
}

#[tokio::test(start_paused = true)]
async fn a_value_produced_as_the_step_ends_is_returned_or_dropped_never_leaked() {
    let permits = Arc::new(Semaphore::new(1));
    let (request, cancel) = Context::background().child();
    let sem = Arc::clone(&permits);
    let mut step = task::spawn(
        request.with_timeout(Duration::from_secs(1), move |_| async move {
            let permit = sem.acquire_owned().await.unwrap();
            pending::<()>().await;
            permit
        }),
    );
    assert_pending!(step.poll());
    assert_eq!(permits.available_permits(), 0);
    cancel.cancel();
    assert!(assert_ready!(step.poll()).is_err());
    drop(step);
    assert_eq!(permits.available_permits(), 1, "the permit came back");
}

#[tokio::test(start_paused = true)]
async fn the_child_ends_when_the_step_finishes_so_its_tasks_stop() {
    let mut worker = None;
    let out = Context::background()
        .with_timeout(Duration::from_secs(60), |ctx| {
            worker = Some(tokio::spawn(ctx.done_owned()));
            async { "quick answer" }
        })
        .await;
    assert_eq!(out.unwrap(), "quick answer");
    let err = worker.unwrap().await.unwrap();
    assert!(err.is_canceled());
    assert!(err.is_own(), "the step's child ended, nothing above it");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_step_cancels_its_child() {
    let mut child = None;
    let step = Context::background().with_timeout(Duration::from_secs(60), |ctx| {
        child = Some(ctx);
        pending::<()>()
    });
    let child = child.unwrap();
    assert!(!child.is_done());
    drop(step);
    assert!(child.is_done());
}

#[tokio::test(start_paused = true)]
async fn with_deadline_takes_an_absolute_instant() {
    let at = Instant::now() + 20 * MS;
    let started = Instant::now();
    let err = Context::background()
        .with_deadline(at, |_| pending::<()>())
        .await
        .unwrap_err();
    assert!(err.is_own());
    assert_eq!(started.elapsed(), 20 * MS);
}

#[tokio::test(start_paused = true)]
async fn zero_past_and_huge_limits_behave() {
    let zero = Context::background()
        .with_timeout(Duration::ZERO, |_| pending::<()>())
        .await;
    assert!(zero.unwrap_err().is_deadline_exceeded());

    let ready_anyway = Context::background()
        .with_timeout(Duration::ZERO, |_| async { 1 })
        .await;
    assert_eq!(ready_anyway.unwrap(), 1, "the inner future is polled first");

    let past = Context::background()
        .with_deadline(Instant::now() - Duration::from_secs(1), |_| pending::<()>())
        .await;
    assert!(past.unwrap_err().is_deadline_exceeded());

    let huge = Context::background()
        .with_timeout(Duration::MAX, |ctx| async move { ctx.deadline() })
        .await;
    assert_eq!(huge.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn nested_steps_each_see_the_tightest_budget() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(10));
    let inner = request
        .with_timeout(Duration::from_secs(5), |ctx| async move {
            ctx.with_timeout(Duration::from_secs(7), |ctx| async move { ctx.remaining() })
                .await
        })
        .await;
    assert_eq!(inner.unwrap().unwrap(), Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn run_stops_a_future_when_its_context_ends() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let err = ctx.run(pending::<()>()).await.unwrap_err();
    assert!(err.is_deadline_exceeded());
    assert!(err.is_own());
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(ctx.run(async { 5 }).await.unwrap(), 5, "ready output wins");
}

#[tokio::test(start_paused = true)]
async fn steps_running_in_spawned_tasks_see_the_cancellation() {
    let (request, cancel) = Context::background().child();
    let step = tokio::spawn(request.with_timeout(Duration::from_secs(60), |_| {
        time::sleep(Duration::from_secs(30))
    }));
    time::sleep(Duration::from_secs(1)).await;
    cancel.cancel();
    let err = step.await.unwrap().unwrap_err();
    assert!(err.is_canceled());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_step_is_canceled_before_its_future_is_dropped() {
    struct Report(Context, Arc<std::sync::Mutex<bool>>);
    impl Drop for Report {
        fn drop(&mut self) {
            *self.1.lock().unwrap() = self.0.is_done();
        }
    }
    let saw_done = Arc::new(std::sync::Mutex::new(false));
    let slot = Arc::clone(&saw_done);
    let step = Context::background().with_timeout(Duration::from_secs(60), move |ctx| async move {
        let _report = Report(ctx, slot);
        pending::<()>().await
    });
    let mut step = task::spawn(step);
    assert_pending!(step.poll());
    drop(step);
    assert!(
        *saw_done.lock().unwrap(),
        "the drop code saw its context ended"
    );
}

#[tokio::test(start_paused = true)]
async fn a_step_under_a_context_without_handle_ends_with_its_ancestors() {
    let (server, shutdown) = Context::background().child();
    let (request, handle) = server.child();
    drop(handle);
    let mut step = tokio_test::task::spawn(
        request.with_timeout(Duration::from_secs(10), |_| std::future::pending::<()>()),
    );
    assert!(step.poll().is_pending());
    shutdown.cancel_with("shutting down");
    assert!(step.is_woken());
    let err = tokio_test::assert_ready!(step.poll()).unwrap_err();
    assert!(err.is_canceled() && !err.is_own());
    assert_eq!(err.cause().unwrap().to_string(), "shutting down");
}

#[tokio::test(start_paused = true)]
async fn a_step_after_steps_that_ended_sees_only_its_own_context() {
    // Steps on one thread reuse each other's nodes (docs/design.md, spare
    // nodes): nothing of an earlier step's name, value, deadline or ending
    // may show in a later one.
    #[derive(Debug, PartialEq)]
    struct Tag(&'static str);
    let root = Context::background();

    let expired = root
        .with_value(Tag("first"))
        .named("first")
        .with_timeout(MS, |_| pending::<()>())
        .await
        .unwrap_err();
    assert_eq!(expired.context_name(), Some("first"));
    let won = root
        .race_either(|_| pending::<()>(), |_| async {})
        .await
        .unwrap();
    assert!(matches!(won, Either::Right(())), "the loser was dropped");

    let start = Instant::now();
    let seen = root
        .with_timeout(Duration::from_secs(3600), |ctx| async move {
            assert_eq!(ctx.value::<Tag>(), None, "a value of an earlier step");
            assert!(ctx.err().is_none(), "an ending of an earlier step");
            assert!(Context::current().err().is_none());
            time::sleep(MS).await;
            ctx.deadline()
        })
        .await
        .unwrap();
    assert_eq!(seen, Some(start + Duration::from_secs(3600)));

    let own = root
        .with_timeout(2 * MS, |_| pending::<()>())
        .await
        .unwrap_err();
    assert!(own.is_deadline_exceeded());
    assert_eq!(own.context_name(), None, "the name of an earlier step");
    assert_eq!(own.budget(), Some(2 * MS), "the budget of an earlier step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_on_many_tasks_each_see_only_their_own_value_and_deadline() {
    // Steps that finish, expire and lose races on two workers, their nodes
    // passing through each worker's spares: every step must see exactly
    // the value and the deadline it was given.
    let root = Context::background();
    let base = Instant::now() + Duration::from_secs(3600);
    let tasks: Vec<_> = (0..64u64)
        .map(|task| {
            let root = root.clone();
            tokio::spawn(async move {
                for round in 0..50u64 {
                    let id = task * 1_000 + round;
                    let deadline = base + Duration::from_millis(id);
                    let ctx = root.with_value(id);
                    let (seen_id, seen_deadline) = ctx
                        .with_deadline(deadline, |ctx| async move {
                            tokio::task::yield_now().await;
                            (ctx.value::<u64>().copied(), ctx.deadline())
                        })
                        .await
                        .unwrap();
                    assert_eq!(seen_id, Some(id));
                    assert_eq!(seen_deadline, Some(deadline));
                    // A step that ends by its own limit, and a race whose
                    // loser is dropped, between the checked ones.
                    let expired = ctx.with_timeout(Duration::ZERO, |_| pending::<()>()).await;
                    assert!(expired.unwrap_err().is_deadline_exceeded());
                    let winner = ctx
                        .race_either(
                            |_| pending::<()>(),
                            |ctx| async move {
                                tokio::task::yield_now().await;
                                ctx.value::<u64>().copied()
                            },
                        )
                        .await
                        .unwrap();
                    assert!(matches!(winner, Either::Right(Some(v)) if v == id));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}
