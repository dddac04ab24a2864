//! `race` and `race_either`: the first to complete wins, losers are canceled
//! and dropped, and the context's end is reported when it comes first.

use std::future::pending;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::Either;
use tokio::sync::Semaphore;
use tokio::time::{self, Instant};
use tokio_ctx::Context;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

fn sleeper(ms: u64) -> impl FnOnce(Context) -> time::Sleep {
    move |_ctx| time::sleep(Duration::from_millis(ms))
}

#[tokio::test(start_paused = true)]
async fn the_first_to_complete_wins_whatever_its_output() {
    let start = Instant::now();
    let (index, ()) = Context::background()
        .race([300, 100, 200].map(sleeper))
        .await
        .unwrap();
    assert_eq!(index, 1);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_race_over_an_iterator_of_any_length_works() {
    let (index, value) = Context::background()
        .race((0..50u64).rev().map(|i| {
            move |_ctx| async move {
                time::sleep(Duration::from_millis(i + 1)).await;
                i
            }
        }))
        .await
        .unwrap();
    assert_eq!((index, value), (49, 0));
}

#[tokio::test(start_paused = true)]
async fn losers_and_the_tasks_they_spawned_see_they_lost() {
    let mut spawned = Vec::new();
    let fns = [5u64, 50, 60].map(|ms| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        spawned.push(rx);
        move |ctx: Context| {
            // Each branch starts a sub-task that lives as long as its context.
            let sub = tokio::spawn(ctx.done_owned());
            tokio::spawn(async move {
                let _ = tx.send(sub.await.unwrap());
            });
            time::sleep(Duration::from_millis(ms))
        }
    });
    let (winner, ()) = Context::background().race(fns).await.unwrap();
    assert_eq!(winner, 0);
    let mut causes = Vec::new();
    for rx in spawned {
        let err = rx.await.unwrap();
        assert!(err.is_canceled());
        causes.push(err.cause().unwrap().to_string());
    }
    assert_eq!(causes[0], "the operation it was derived for finished");
    assert_eq!(causes[1], "lost the race");
    assert_eq!(causes[2], "lost the race");
}

#[tokio::test(start_paused = true)]
async fn a_racer_ready_in_the_tick_the_context_ends_wins() {
    // The context's deadline and the racer's sleep both end at 10ms: the
    // racers are polled first, so the output is returned.
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(10));
    let (index, ()) = ctx.race([sleeper(10)]).await.unwrap();
    assert_eq!(index, 0);
    let err = ctx.race([sleeper(10)]).await.unwrap_err();
    assert!(err.is_deadline_exceeded(), "once ended, nothing new wins");
}

#[tokio::test(start_paused = true)]
async fn the_waiter_being_canceled_cancels_every_racer() {
    let (ctx, cancel) = Context::background().child();
    let children = Arc::new(Mutex::new(Vec::new()));
    let race = ctx.race((0..3).map(|_| {
        let children = Arc::clone(&children);
        move |child: Context| {
            children.lock().unwrap().push(child);
            pending::<()>()
        }
    }));
    let mut race = task::spawn(race);
    assert_pending!(race.poll());
    cancel.cancel_with("waiter gave up");
    let err = assert_ready!(race.poll()).unwrap_err();
    assert_eq!(err.cause().unwrap().to_string(), "waiter gave up");
    for child in children.lock().unwrap().iter() {
        assert_eq!(
            child.err().unwrap().cause().unwrap().to_string(),
            "waiter gave up"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_race_cancels_and_drops_every_racer() {
    let permits = Arc::new(Semaphore::new(3));
    let children = Arc::new(Mutex::new(Vec::new()));
    let race = Context::background().race((0..3).map(|_| {
        let permits = Arc::clone(&permits);
        let children = Arc::clone(&children);
        move |child: Context| {
            children.lock().unwrap().push(child);
            async move {
                let _permit = permits.acquire_owned().await.unwrap();
                pending::<()>().await
            }
        }
    }));
    let mut race = task::spawn(race);
    assert_pending!(race.poll());
    assert_eq!(permits.available_permits(), 0);
    drop(race);
    assert_eq!(
        permits.available_permits(),
        3,
        "every loser's future was dropped"
    );
    assert!(children.lock().unwrap().iter().all(Context::is_done));
}

#[tokio::test(start_paused = true)]
async fn a_race_under_an_ended_context_fails_unless_a_racer_is_ready_at_once() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    assert!(ctx.race([sleeper(1)]).await.unwrap_err().is_canceled());
    let (index, value) = ctx.race([|_ctx| async { "already there" }]).await.unwrap();
    assert_eq!((index, value), (0, "already there"));
}

#[tokio::test(start_paused = true)]
async fn zero_and_huge_budgets() {
    let (zero, _) = Context::background().child_with_timeout(Duration::ZERO);
    assert!(zero
        .race([sleeper(1)])
        .await
        .unwrap_err()
        .is_deadline_exceeded());
    let (huge, _) = Context::background().child_with_timeout(Duration::MAX);
    assert_eq!(huge.race([sleeper(1)]).await.unwrap().0, 0);
}

#[tokio::test(start_paused = true)]
async fn an_empty_race_fails_at_once_as_an_empty_select_first_does() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let none: Vec<fn(Context) -> std::future::Pending<()>> = Vec::new();
    let start = Instant::now();
    let err = ctx.race(none).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "no winner can ever come");
    assert!(err.is_canceled());
    assert_eq!(
        err.cause().unwrap().to_string(),
        "the race was given no futures"
    );
    assert!(!ctx.is_done(), "only the race's own child ended");

    type Candidate = fn(Context) -> std::future::Pending<Result<(), &'static str>>;
    let none: Vec<Candidate> = Vec::new();
    let err = ctx.select_first(none).await.unwrap_err();
    assert!(err.failures().is_empty() && !err.is_ended());
    assert_eq!(err.to_string(), "select_first was given no candidates");

    // Under a context that has already ended, its error comes first.
    let (ended, cancel) = Context::background().child();
    cancel.cancel_with("shutting down");
    let none: Vec<fn(Context) -> std::future::Pending<()>> = Vec::new();
    let err = ended.race(none).await.unwrap_err();
    assert_eq!(err.cause().unwrap().to_string(), "shutting down");
}

#[tokio::test(start_paused = true)]
async fn race_either_takes_two_different_types() {
    let work = |_ctx: Context| async {
        time::sleep(Duration::from_millis(20)).await;
        String::from("result")
    };
    let lost_connection = |_ctx: Context| async {
        time::sleep(Duration::from_millis(10)).await;
        std::io::Error::from(std::io::ErrorKind::ConnectionReset)
    };
    match Context::background()
        .race_either(work, lost_connection)
        .await
        .unwrap()
    {
        Either::Right(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset),
        Either::Left(s) => panic!("the work should have lost, got {s}"),
    }
}

#[tokio::test(start_paused = true)]
async fn each_racer_runs_under_its_own_child_as_current() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(5));
    let (_, remaining) = ctx
        .race([|_ctx| async { Context::current().remaining() }])
        .await
        .unwrap();
    assert_eq!(remaining, Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn a_loser_sees_why_while_it_is_being_dropped() {
    struct Report(Context, Arc<Mutex<Option<String>>>);
    impl Drop for Report {
        fn drop(&mut self) {
            *self.1.lock().unwrap() = self.0.err().and_then(|e| e.cause().map(|c| c.to_string()));
        }
    }
    let seen = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&seen);
    let fns = [
        Box::new(move |ctx: Context| {
            Box::pin(async move {
                let _report = Report(ctx, slot);
                pending::<()>().await
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        }) as Box<dyn FnOnce(Context) -> _>,
        Box::new(|_ctx: Context| {
            Box::pin(async {}) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        }),
    ];
    let (winner, ()) = Context::background().race(fns).await.unwrap();
    assert_eq!(winner, 1);
    assert_eq!(seen.lock().unwrap().as_deref(), Some("lost the race"));
}

/// Records what `Context::current()` says about its context when dropped.
struct SeesCurrentOnDrop(Arc<Mutex<Option<String>>>);

impl Drop for SeesCurrentOnDrop {
    fn drop(&mut self) {
        let cause = Context::current()
            .err()
            .and_then(|e| e.cause().map(|c| c.to_string()));
        *self.0.lock().unwrap() = Some(cause.unwrap_or_else(|| "live".into()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_loser_that_kept_no_context_still_sees_why_through_current() {
    // The loser's closure dropped its context: only `Context::current()`
    // can show its drop code why it is dropped.
    let seen = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&seen);
    let loser = move |_ctx: Context| async move {
        let _guard = SeesCurrentOnDrop(slot);
        pending::<()>().await
    };
    let winner = |_ctx: Context| async { time::sleep(Duration::from_millis(1)).await };
    let won = Context::background()
        .race_either(loser, winner)
        .await
        .unwrap();
    assert!(matches!(won, Either::Right(())));
    assert_eq!(seen.lock().unwrap().as_deref(), Some("lost the race"));
}

#[tokio::test(start_paused = true)]
async fn a_race_whose_racers_all_wait_does_not_wake_itself() {
    // One poll of the task per wake-up: nothing in the race wakes the task
    // just for having polled every racer.
    let mut race = task::spawn(Context::background().race([
        |_ctx: Context| pending::<()>(),
        |_ctx: Context| pending::<()>(),
    ]));
    assert_pending!(race.poll());
    assert!(!race.is_woken(), "a race of two woke its own task");

    let (mut pair, mut either) = (
        task::spawn(tokio_ctx::race!(
            Context::background(),
            |_ctx| pending::<()>(),
            |_ctx| pending::<()>()
        )),
        task::spawn(
            Context::background().race_either(|_ctx| pending::<()>(), |_ctx| pending::<u8>()),
        ),
    );
    assert_pending!(pair.poll());
    assert!(!pair.is_woken(), "race! woke its own task");
    assert_pending!(either.poll());
    assert!(!either.is_woken(), "race_either woke its own task");
}

#[tokio::test(start_paused = true)]
async fn racers_ready_in_the_same_poll_go_to_the_lowest_index() {
    let (index, ms) = Context::background()
        .race([3u64, 2, 2].map(|ms| {
            move |_ctx| async move {
                time::sleep(Duration::from_millis(ms)).await;
                ms
            }
        }))
        .await
        .unwrap();
    assert_eq!((index, ms), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_race_over_an_iterator_that_underestimates_its_length_works() {
    // `filter` tells the race to expect no racer at all; twenty come.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (index, value) = Context::background()
        .race((0..20u64).filter(|_| true).map(|i| {
            let seen = Arc::clone(&seen);
            move |ctx: Context| async move {
                let _watch = Watch(ctx, seen);
                time::sleep(Duration::from_millis(20 - i)).await;
                i
            }
        }))
        .await
        .unwrap();
    assert_eq!((index, value), (19, 19));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 20, "every racer was dropped");
    let lost = seen
        .iter()
        .filter(|cause| *cause == "lost the race")
        .count();
    assert_eq!(lost, 19, "{seen:?}");
}

/// Records its context's cause when dropped.
struct Watch(Context, Arc<Mutex<Vec<String>>>);

impl Drop for Watch {
    fn drop(&mut self) {
        let cause = self
            .0
            .err()
            .and_then(|e| e.cause().map(|c| c.to_string()))
            .unwrap_or_else(|| "live".into());
        self.1.lock().unwrap().push(cause);
    }
}
