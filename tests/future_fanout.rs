//! `race!`, `select_first!`, `join!` and `try_join!`: fan-out over closures
//! of different types, each branch under its own child, with the causes of
//! the list forms; and the boxing recipe for dynamic lists.

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::{Context, TryJoinError};

type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Records, under `label`, the cause its context ends with, from a task
/// that outlives the branch: what a sub-task of the branch would see.
fn watch(seen: &Seen, label: &str, ctx: &Context) {
    let (seen, label, ctx) = (Arc::clone(seen), label.to_string(), ctx.clone());
    tokio::spawn(async move {
        let err = ctx.done().await;
        let cause = err.cause().map_or(String::new(), |c| c.to_string());
        seen.lock().unwrap().push((label, cause));
    });
}

fn sorted(seen: &Seen) -> Vec<(String, String)> {
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    seen
}

async fn settle_tasks() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn race_takes_closures_of_different_types_and_tells_the_losers() {
    let seen = Seen::default();
    let start = Instant::now();
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let (index, winner) = tokio_ctx::race!(
        Context::background(),
        move |ctx| {
            watch(&s1, "slow", &ctx);
            async {
                time::sleep(Duration::from_millis(30)).await;
                "slow"
            }
        },
        move |ctx| {
            watch(&s2, "fast", &ctx);
            async {
                time::sleep(Duration::from_millis(10)).await;
                "fast"
            }
        },
        move |ctx| {
            watch(&s3, "never", &ctx);
            pending::<&str>()
        },
    )
    .await
    .unwrap();
    assert_eq!((index, winner), (1, "fast"));
    assert_eq!(start.elapsed(), Duration::from_millis(10));
    settle_tasks().await;
    assert_eq!(
        sorted(&seen),
        [
            (
                "fast".into(),
                "the operation it was derived for finished".into()
            ),
            ("never".into(), "lost the race".into()),
            ("slow".into(), "lost the race".into()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn race_ends_with_its_context_and_cancels_every_branch() {
    let (ctx, cancel) = Context::background().named("request").child();
    let seen = Seen::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    let race = tokio_ctx::race!(
        ctx,
        move |ctx| {
            watch(&s1, "a", &ctx);
            pending::<u8>()
        },
        move |ctx| {
            watch(&s2, "b", &ctx);
            async { pending::<u8>().await }
        },
    );
    let race = tokio::spawn(race);
    settle_tasks().await;
    cancel.cancel_with("the client hung up");
    let err = race.await.unwrap().unwrap_err();
    assert_eq!(err.context_name(), Some("request"));
    settle_tasks().await;
    assert_eq!(
        sorted(&seen),
        [
            ("a".into(), "the client hung up".into()),
            ("b".into(), "the client hung up".into()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn each_branch_runs_under_its_own_named_child_as_current() {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let (k0, k1) = (Arc::clone(&kept), Arc::clone(&kept));
    let line = line!() + 1;
    let (index, ()) = tokio_ctx::race!(
        Context::background().named("mirror"),
        move |ctx| async move {
            k0.lock().unwrap().push((ctx, Context::current()));
            pending::<()>().await
        },
        move |ctx| async move {
            k1.lock().unwrap().push((ctx, Context::current()));
        },
    )
    .await
    .unwrap();
    assert_eq!(index, 1);
    let kept = kept.lock().unwrap();
    for (given, current) in kept.iter() {
        // Both read the branch's own child, which the race ended.
        let (given, current) = (given.err().unwrap(), current.err().unwrap());
        assert!(given.is_own() && current.is_own());
        assert_eq!(given.context_name(), current.context_name());
        assert_eq!(given.location().line(), line, "located at the macro call");
    }
    let mut names: Vec<_> = kept
        .iter()
        .map(|(ctx, _)| ctx.err().unwrap().context_name().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["mirror[0]", "mirror[1]"]);
}

#[tokio::test(start_paused = true)]
async fn select_first_takes_different_closures_and_keeps_every_failure() {
    async fn refused(_ctx: Context) -> Result<u32, String> {
        Err("primary: connection refused".into())
    }
    let (index, value) = tokio_ctx::select_first!(
        Context::background(),
        refused,
        |_ctx| async {
            time::sleep(Duration::from_millis(5)).await;
            Ok(5)
        },
        |_ctx| async {
            time::sleep(Duration::from_millis(50)).await;
            Ok(50)
        },
    )
    .await
    .unwrap();
    assert_eq!((index, value), (1, 5));

    let err = tokio_ctx::select_first!(Context::background(), refused, |_ctx| async {
        Err::<u32, _>("secondary: timed out".to_string())
    })
    .await
    .unwrap_err();
    assert!(!err.is_ended());
    assert_eq!(
        err.to_string(),
        "all 2 candidates failed: [0] primary: connection refused; [1] secondary: timed out"
    );

    let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(20));
    let err = tokio_ctx::select_first!(ctx, refused, |_ctx| pending::<Result<u32, String>>())
        .await
        .unwrap_err();
    assert!(err.ended().unwrap().is_deadline_exceeded());
    assert_eq!(err.failures().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn select_first_cancels_the_losers_once_one_succeeds() {
    let seen = Seen::default();
    let s1 = seen.clone();
    let (index, _) = tokio_ctx::select_first!(
        Context::background(),
        move |ctx| {
            watch(&s1, "slow", &ctx);
            pending::<Result<(), ()>>()
        },
        |_ctx| async { Ok(()) },
    )
    .await
    .unwrap();
    assert_eq!(index, 1);
    settle_tasks().await;
    assert_eq!(sorted(&seen), [("slow".into(), "lost the race".into())]);
}

#[tokio::test(start_paused = true)]
async fn join_gives_outputs_of_different_types_in_input_order() {
    let start = Instant::now();
    let (name, ids, flag) = tokio_ctx::join!(
        Context::background(),
        |_ctx| async {
            time::sleep(Duration::from_millis(30)).await;
            String::from("ada")
        },
        |_ctx| async {
            time::sleep(Duration::from_millis(10)).await;
            vec![1u32, 2]
        },
        |ctx: Context| async move { ctx.is_done() },
    )
    .await
    .unwrap();
    assert_eq!((name.as_str(), ids, flag), ("ada", vec![1, 2], false));
    assert_eq!(start.elapsed(), Duration::from_millis(30));
}

#[tokio::test(start_paused = true)]
async fn join_ends_early_only_when_its_context_ends() {
    let (ctx, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_millis(25));
    let err = tokio_ctx::join!(ctx, |_ctx| async { 1u8 }, |_ctx| time::sleep(
        Duration::from_secs(1)
    ),)
    .await
    .unwrap_err();
    assert!(err.is_deadline_exceeded());
    assert_eq!(err.context_name(), Some("request"));
}

#[tokio::test(start_paused = true)]
async fn try_join_gives_values_of_different_types_or_the_first_failure() {
    let (a, b) = tokio_ctx::try_join!(
        Context::background(),
        |_ctx| async { Ok::<_, String>(1u8) },
        |_ctx| async { Ok::<_, String>("two") },
    )
    .await
    .unwrap();
    assert_eq!((a, b), (1, "two"));

    let seen = Seen::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    let err = tokio_ctx::try_join!(
        Context::background(),
        move |ctx| {
            watch(&s1, "orders", &ctx);
            async {
                time::sleep(Duration::from_secs(1)).await;
                Ok::<_, String>(vec![1u32])
            }
        },
        move |ctx| {
            watch(&s2, "payments", &ctx);
            async {
                time::sleep(Duration::from_millis(5)).await;
                Err::<u8, _>("payments: 503".to_string())
            }
        },
    )
    .await
    .unwrap_err();
    match err {
        TryJoinError::Failed { index, error } => {
            assert_eq!((index, error.as_str()), (1, "payments: 503"));
        }
        other => panic!("unexpected {other:?}"),
    }
    settle_tasks().await;
    assert_eq!(
        sorted(&seen),
        [
            ("orders".into(), "a sibling failed".into()),
            (
                "payments".into(),
                "the operation it was derived for finished".into()
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn try_join_reports_a_hang_up_as_the_end() {
    let (ctx, cancel) = Context::background().named("request").child();
    let join = tokio::spawn(tokio_ctx::try_join!(
        ctx,
        |ctx: Context| async move { Err::<u8, _>(ctx.done().await) },
        |ctx: Context| async move { ctx.run(pending::<String>()).await },
    ));
    settle_tasks().await;
    cancel.cancel_with("the client hung up");
    match join.await.unwrap() {
        Err(TryJoinError::Ended(err)) => {
            assert_eq!(err.cause().unwrap().to_string(), "the client hung up");
        }
        other => panic!("a hang-up is the end, not a failure: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn twelve_branches_and_one() {
    let all = tokio_ctx::join!(
        Context::background(),
        |_c| async { 1 },
        |_c| async { 2u8 },
        |_c| async { 3u16 },
        |_c| async { 4u32 },
        |_c| async { 5u64 },
        |_c| async { 6i8 },
        |_c| async { 7i16 },
        |_c| async { 8i32 },
        |_c| async { 9i64 },
        |_c| async { 10usize },
        |_c| async { 11isize },
        |_c| async { "twelve" },
    )
    .await
    .unwrap();
    assert_eq!(all.11, "twelve");
    let (one,) = tokio_ctx::join!(Context::background(), |_c| async { 1 })
        .await
        .unwrap();
    assert_eq!(one, 1);
}

/// The documented recipe for a list built at run time: box each closure
/// and its future, then use the list forms.
type BoxedBranch<T> = Box<dyn FnOnce(Context) -> Pin<Box<dyn Future<Output = T> + Send>> + Send>;

#[tokio::test(start_paused = true)]
async fn a_dynamic_list_of_different_closures_works_once_boxed() {
    let mut backends: Vec<BoxedBranch<Result<&str, String>>> = Vec::new();
    backends.push(Box::new(|_ctx| {
        Box::pin(async { Err::<&str, _>("cache miss".to_string()) })
    }));
    let wait = Duration::from_millis(10);
    backends.push(Box::new(move |ctx| {
        Box::pin(async move {
            time::sleep(wait).await;
            ctx.check().map_err(|e| e.to_string())?;
            Ok("database")
        })
    }));
    let (index, value) = Context::background().select_first(backends).await.unwrap();
    assert_eq!((index, value), (1, "database"));
}

/// Records what `Context::current()` says about why it ended, when dropped.
struct CurrentOnDrop(Arc<Mutex<Vec<String>>>, &'static str);

impl Drop for CurrentOnDrop {
    fn drop(&mut self) {
        let why = Context::current()
            .err()
            .and_then(|e| e.cause().map(|c| c.to_string()))
            .unwrap_or_else(|| "live".into());
        self.0.lock().unwrap().push(format!("{}: {why}", self.1));
    }
}

#[tokio::test(start_paused = true)]
async fn branches_that_kept_no_context_see_why_through_current_when_dropped() {
    // The losers dropped the context their closure got; their drop code
    // asks `Context::current()`, which tells them why all the same. The
    // winner finished, so it saw its child live.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let (index, ()) = tokio_ctx::race!(
        Context::background(),
        move |_ctx| async move {
            let _guard = CurrentOnDrop(s1, "slow");
            time::sleep(Duration::from_secs(1)).await
        },
        move |_ctx| async move {
            let _guard = CurrentOnDrop(s2, "fast");
            time::sleep(Duration::from_millis(1)).await
        },
        move |_ctx| async move {
            let _guard = CurrentOnDrop(s3, "never");
            pending::<()>().await
        },
    )
    .await
    .unwrap();
    assert_eq!(index, 1);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        ["fast: live", "never: lost the race", "slow: lost the race"]
    );
}
