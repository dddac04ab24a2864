//! Moving a deadline (asyncio's `Timeout.reschedule`, Trio's assignable
//! `deadline`): earlier or later, never past the parent's, and everything
//! that waits follows: `done()`, steps' timers, children, `on_done`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::{self, Instant};
use tokio_ctx::Context;
use tokio_test::{assert_pending, assert_ready, task};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_waiter_wakes_at_a_later_deadline() {
    let (ctx, deadline) = Context::background()
        .named("idle")
        .child_with_movable_timeout(5 * SEC);
    let start = Instant::now();
    let waiter = tokio::spawn(ctx.done_owned());
    time::sleep(4 * SEC).await;
    assert!(!waiter.is_finished());
    assert_eq!(deadline.reschedule_in(5 * SEC), Some(start + 9 * SEC));
    time::sleep(2 * SEC).await;
    assert!(!waiter.is_finished(), "not at the old deadline");
    let err = waiter.await.unwrap();
    assert_eq!(start.elapsed(), 9 * SEC, "at the new one");
    assert!(err.is_deadline_exceeded() && err.is_own());
    assert_eq!(err.context_name(), Some("idle"));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_wakes_at_an_earlier_deadline() {
    let (ctx, deadline) = Context::background().child_with_movable_timeout(60 * SEC);
    let start = Instant::now();
    let mut waiter = task::spawn(ctx.done_owned());
    assert_pending!(waiter.poll(), "its timer is armed for 60s");
    deadline.reschedule_in(2 * SEC);
    assert!(
        waiter.is_woken(),
        "a move earlier wakes the waiter to re-arm"
    );
    assert_pending!(waiter.poll());
    time::sleep(2 * SEC).await;
    assert!(waiter.is_woken());
    assert!(assert_ready!(waiter.poll()).is_deadline_exceeded());
    assert_eq!(start.elapsed(), 2 * SEC);
}

#[tokio::test(start_paused = true)]
async fn never_past_the_parents_deadline() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(10 * SEC);
    let (ctx, deadline) = request.named("session").child_with_movable_timeout(SEC);
    let start = Instant::now();
    let waiter = tokio::spawn(ctx.done_owned());
    assert_eq!(deadline.reschedule_in(3600 * SEC), request.deadline());
    assert_eq!(ctx.deadline(), request.deadline());
    assert_eq!(deadline.reschedule(None), request.deadline());
    let err = waiter.await.unwrap();
    assert_eq!(start.elapsed(), 10 * SEC);
    assert!(
        !err.is_own(),
        "the request's deadline fired, not the session's"
    );
    assert_eq!(err.context_name(), Some("request"));
    assert_eq!(err.levels_up(), Some(1));
}

#[tokio::test(start_paused = true)]
async fn steps_and_children_follow_a_move() {
    let (ctx, deadline) = Context::background()
        .named("stream")
        .child_with_movable_timeout(SEC);
    // Derived before the moves: they follow them.
    let (child, _) = ctx.named("child").child_with_timeout(60 * SEC);
    let (own, _) = ctx.named("own").child_with_timeout(3 * SEC);
    let start = Instant::now();
    let step = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            ctx.named("step")
                .with_timeout(60 * SEC, |_ctx| std::future::pending::<()>())
                .await
                .unwrap_err()
        }
    });
    tokio::task::yield_now().await;

    deadline.reschedule_in(5 * SEC);
    assert_eq!(child.deadline(), Some(start + 5 * SEC));
    assert_eq!(
        own.deadline(),
        Some(start + 3 * SEC),
        "its own is earlier now"
    );
    time::sleep(3 * SEC).await;
    let err = own.err().unwrap();
    assert!(err.is_own(), "{err}");
    assert!(child.err().is_none());

    deadline.reschedule(Some(start + 4 * SEC));
    let err = step.await.unwrap();
    assert_eq!(
        start.elapsed(),
        4 * SEC,
        "the step's timer followed both moves"
    );
    assert_eq!(err.context_name(), Some("stream"));
    assert!(!err.is_own());
    assert_eq!(child.err().unwrap().context_name(), Some("stream"));
}

#[tokio::test(start_paused = true)]
async fn children_derived_after_a_move_see_it() {
    let (ctx, deadline) = Context::background().child_with_movable_timeout(SEC);
    deadline.reschedule_in(10 * SEC);
    let (child, _) = ctx.child_with_timeout(60 * SEC);
    assert_eq!(child.remaining(), Some(10 * SEC));
    deadline.reschedule_in(2 * SEC);
    assert_eq!(child.remaining(), Some(2 * SEC));
}

#[tokio::test(start_paused = true)]
async fn on_done_callbacks_follow_a_move() {
    let (ctx, deadline) = Context::background().child_with_movable_timeout(10 * SEC);
    let (child, _) = ctx.child();
    let fired = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&fired);
    let _callback = child.on_done(move || flag.store(true, Ordering::SeqCst));

    deadline.reschedule_in(20 * SEC);
    time::sleep(15 * SEC).await;
    assert!(!fired.load(Ordering::SeqCst), "not at the old deadline");

    deadline.reschedule_in(SEC);
    time::sleep(SEC).await;
    tokio::task::yield_now().await;
    assert!(fired.load(Ordering::SeqCst), "at the new, earlier one");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_in_the_past_ends_the_context_now() {
    let (ctx, deadline) = Context::background().child_with_movable_timeout(SEC);
    let waiter = tokio::spawn(ctx.done_owned());
    tokio::task::yield_now().await;
    time::advance(100 * MS).await;
    let past = Instant::now() - 50 * MS;
    assert_eq!(deadline.reschedule(Some(past)), Some(Instant::now()));
    assert!(ctx.is_done());
    assert!(waiter.await.unwrap().is_deadline_exceeded());
}

#[tokio::test(start_paused = true)]
async fn a_move_after_the_end_changes_nothing() {
    let (ctx, deadline) = Context::background().child_with_movable_timeout(SEC);
    deadline.cancel_with("done with it");
    let before = ctx.deadline();
    assert_eq!(deadline.reschedule_in(60 * SEC), before);
    assert!(ctx.err().unwrap().cause_is("done with it"));

    let (ctx, deadline) = Context::background().child_with_movable_timeout(SEC);
    time::advance(SEC).await;
    deadline.reschedule_in(60 * SEC);
    assert!(
        ctx.err().unwrap().is_deadline_exceeded(),
        "an expired deadline stays expired"
    );
}

#[tokio::test(start_paused = true)]
async fn movable_contexts_nest() {
    let (outer, outer_deadline) = Context::background()
        .named("outer")
        .child_with_movable_timeout(10 * SEC);
    let (inner, inner_deadline) = outer.named("inner").child_with_movable_timeout(5 * SEC);
    let (leaf, _) = inner.named("leaf").child();
    assert_eq!(leaf.remaining(), Some(5 * SEC));
    outer_deadline.reschedule_in(2 * SEC);
    assert_eq!(leaf.remaining(), Some(2 * SEC));
    inner_deadline.reschedule_in(SEC);
    assert_eq!(leaf.remaining(), Some(SEC));
    let err = leaf.done().await;
    assert_eq!(
        (err.context_name(), err.levels_up()),
        (Some("inner"), Some(1))
    );
    assert!(inner.is_done() && !outer.is_done());
}

#[tokio::test(start_paused = true)]
async fn a_stream_item_limit_follows_its_contexts_deadline() {
    let (ctx, deadline) = Context::background().child_with_movable_timeout(SEC);
    let start = Instant::now();
    let mut items = ctx
        .named("chunk")
        .stream(futures::stream::pending::<u8>())
        .item_timeout(60 * SEC);
    let next = tokio::spawn(async move { items.next().await });
    tokio::task::yield_now().await;
    deadline.reschedule_in(3 * SEC);
    let err = next.await.unwrap().unwrap().unwrap_err();
    assert_eq!(start.elapsed(), 3 * SEC);
    assert!(!err.is_own(), "the context's deadline, not the item's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_other_threads_follow_a_move_earlier() {
    // Real time: the deadline is moved to now, and the bound only catches
    // a lost wakeup.
    let (ctx, deadline) = Context::background().child_with_movable_timeout(3600 * SEC);
    let mut waiters = Vec::new();
    for depth in 0..20 {
        let mut leaf = ctx.clone();
        for _ in 0..depth % 4 {
            leaf = leaf.child().0;
        }
        let (armed_tx, armed_rx) = tokio::sync::oneshot::channel();
        waiters.push(tokio::spawn(async move {
            let mut done = std::pin::pin!(leaf.done());
            // Registered and its timer armed for an hour before the move.
            std::future::poll_fn(|cx| {
                assert!(std::future::Future::poll(done.as_mut(), cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            let _ = armed_tx.send(());
            done.await
        }));
        armed_rx.await.unwrap();
    }
    deadline.reschedule(Some(Instant::now()));
    for waiter in waiters {
        let err = time::timeout(30 * SEC, waiter)
            .await
            .expect("woken by the move")
            .unwrap();
        assert!(err.is_deadline_exceeded());
    }
}

/// A move later that races the old deadline's expiry never revives a
/// context a reader on another thread already saw ended: an expiry once
/// reported stays. Each round moves the deadline an hour later within a
/// couple of microseconds of its passing, while the other thread watches.
/// The clock is the real one, since the race is with it; every wait is a
/// bounded spin.
#[test]
fn a_move_racing_the_expiry_never_revives_a_reported_end() {
    let mut races_seen = 0;
    for round in 0..400u32 {
        let (ctx, deadline) =
            Context::background().child_with_movable_timeout(Duration::from_micros(200));
        let expiry = ctx.deadline().unwrap();
        let watcher = {
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                let give_up = expiry + Duration::from_millis(2);
                while !ctx.is_done() {
                    if Instant::now() > give_up {
                        return None;
                    }
                    std::hint::spin_loop();
                }
                // Seen ended: every later read must agree.
                Some((0..2_000).filter(|_| !ctx.is_done()).count())
            })
        };
        // From 1.5 µs before the expiry to 0.5 µs after it.
        let at =
            expiry - Duration::from_nanos(1_500) + Duration::from_nanos(u64::from(round % 40) * 50);
        while Instant::now() < at {
            std::hint::spin_loop();
        }
        deadline.reschedule_in(Duration::from_secs(3600));
        if let Some(revived) = watcher.join().unwrap() {
            races_seen += 1;
            assert_eq!(revived, 0, "round {round}: seen ended, then live again");
            assert!(
                ctx.is_done(),
                "round {round}: the end the watcher saw was undone"
            );
            assert!(ctx.err().unwrap().is_deadline_exceeded(), "round {round}");
        }
    }
    // Not a timing claim: only that the rounds did land around the expiry.
    assert!(races_seen > 0, "no round saw the context end");
}
