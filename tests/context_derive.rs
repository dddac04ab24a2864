//! Deriving contexts: deadlines only tighten, bad limits never panic, and a
//! child of an ended parent is born ended.

use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::{CancelHandle, Context, Error};

#[test]
fn contexts_and_handles_cross_threads_and_tasks() {
    fn assert_send_sync_static<T: Send + Sync + 'static>() {}
    assert_send_sync_static::<Context>();
    assert_send_sync_static::<CancelHandle>();
    assert_send_sync_static::<Error>();
    assert_send_sync_static::<tokio_ctx::future::DoneOwned>();
    assert_send_sync_static::<tokio_ctx::OnDone>();
    assert_send_sync_static::<tokio_ctx::CancelGuard>();
    // A handle moved into `catch_unwind` needs no `AssertUnwindSafe`.
    fn assert_unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    assert_unwind_safe::<CancelHandle>();
    fn assert_send<T: Send>(_: &T) {}
    let ctx = Context::background();
    assert_send(&ctx.done());
    assert_send(&ctx.run(async {}));
    assert_send(&ctx.with_timeout(Duration::from_secs(1), |_| async {}));

    // The futures and streams that only wait box their timer, so they stay
    // `Unpin` whenever what they wrap is: `next()` and `select!` need no
    // pinning. (`Timeout` keeps its timer in place, as
    // `tokio::time::Timeout` does, and the fan-out macros their branches:
    // those are not `Unpin`.)
    fn assert_unpin<T: Unpin>(_: &T) {}
    assert_unpin(&ctx.done());
    assert_unpin(&ctx.stream(futures::stream::iter([1, 2])));
    assert_unpin(&ctx.as_completed([|_| std::future::ready(())]));
    assert_unpin(&ctx.race([|_| std::future::ready(())]));
    assert_unpin(&ctx.join_all([|_| std::future::ready(())]));
}

#[tokio::test(start_paused = true)]
async fn a_child_deadline_is_the_earlier_of_its_own_and_its_parents() {
    let start = Instant::now();
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(60));
    let (tighter, _) = request.child_with_timeout(Duration::from_secs(10));
    let (looser, _) = request.child_with_timeout(Duration::from_secs(600));
    let (plain, _) = request.child();

    assert_eq!(request.deadline(), Some(start + Duration::from_secs(60)));
    assert_eq!(tighter.deadline(), Some(start + Duration::from_secs(10)));
    assert_eq!(
        looser.deadline(),
        request.deadline(),
        "clipped to the parent"
    );
    assert_eq!(plain.deadline(), request.deadline(), "inherited");

    time::advance(Duration::from_secs(10)).await;
    assert!(tighter.is_done());
    assert!(!looser.is_done());
    assert_eq!(looser.remaining(), Some(Duration::from_secs(50)));
}

#[tokio::test(start_paused = true)]
async fn a_clipped_child_names_the_parent_whose_deadline_fired() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(1));
    let (step, _) = request
        .named("step")
        .child_with_timeout(Duration::from_secs(5));
    time::advance(Duration::from_secs(1)).await;

    let err = step.err().unwrap();
    assert!(err.is_deadline_exceeded());
    assert_eq!(err.context_name(), Some("request"));
    assert_eq!(err.budget(), Some(Duration::from_secs(1)));
    assert!(!err.is_own());
}

#[tokio::test(start_paused = true)]
async fn an_equal_deadline_is_inherited_not_owned() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_millis(5));
    let (step, _) = request
        .named("step")
        .child_with_deadline(request.deadline().unwrap());
    time::advance(Duration::from_millis(5)).await;
    let err = step.err().unwrap();
    assert_eq!(err.context_name(), Some("request"));
    assert!(!err.is_own(), "the caller's budget is gone too");
}

#[tokio::test(start_paused = true)]
async fn zero_and_past_limits_give_contexts_that_are_born_expired() {
    let (zero, _) = Context::background().child_with_timeout(Duration::ZERO);
    assert!(zero.is_done());
    assert!(zero.err().unwrap().is_deadline_exceeded());
    assert_eq!(zero.remaining(), Some(Duration::ZERO));

    time::advance(Duration::from_secs(5)).await;
    let past = Instant::now() - Duration::from_secs(1);
    let (late, _) = Context::background().child_with_deadline(past);
    assert!(late.err().unwrap().is_deadline_exceeded());
    assert_eq!(late.err().unwrap().budget(), Some(Duration::ZERO));
    assert_eq!(late.remaining(), Some(Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn huge_limits_neither_panic_nor_overflow() {
    let (unbounded, _) = Context::background().child_with_timeout(Duration::MAX);
    assert_eq!(
        unbounded.deadline(),
        None,
        "too far to represent: no deadline"
    );
    assert!(!unbounded.is_done());

    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let (distant, cancel) = unbounded.child_with_deadline(far);
    assert_eq!(distant.deadline(), Some(far));
    assert!(distant.remaining().unwrap() > Duration::from_secs(3_000_000_000));
    let (inner, _) = distant.child_with_timeout(Duration::MAX);
    assert_eq!(inner.deadline(), Some(far));

    // Waiting on a far deadline arms a timer without trouble, and a
    // cancellation still ends the wait.
    let waiter = tokio::spawn(inner.done_owned());
    tokio::task::yield_now().await;
    cancel.cancel();
    assert!(waiter.await.unwrap().is_canceled());
}

#[test]
fn deriving_with_a_deadline_needs_no_runtime_because_it_arms_no_timer() {
    let (ctx, cancel) = Context::background().child_with_timeout(Duration::from_secs(3600));
    let (_child, _) = ctx.child_with_deadline(Instant::now() + Duration::from_secs(1));
    assert!(!ctx.is_done());
    cancel.cancel();
    assert!(ctx.err().unwrap().is_canceled());
}

#[test]
fn a_child_of_an_ended_parent_is_born_ended_with_the_parents_error() {
    let (parent, cancel) = Context::background().named("parent").child();
    cancel.cancel_with("shutting down");
    let (child, child_cancel) = parent.child();
    let err = child.err().unwrap();
    assert_eq!(err.cause().unwrap().to_string(), "shutting down");
    assert_eq!(err.context_name(), Some("parent"));
    child_cancel.cancel_with("too late");
    assert_eq!(
        child.err().unwrap().cause().unwrap().to_string(),
        "shutting down",
        "cancelling an ended child changes nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancel_after_the_deadline_does_not_rewrite_history() {
    let (ctx, cancel) = Context::background().child_with_timeout(Duration::from_secs(1));
    time::advance(Duration::from_secs(2)).await;
    cancel.cancel_with("late");
    let err = ctx.err().unwrap();
    assert!(err.is_deadline_exceeded(), "the deadline came first");
    assert!(err.cause().is_none());
}

#[tokio::test(start_paused = true)]
async fn an_ancestor_canceled_after_the_childs_deadline_leaves_the_deadline() {
    let (parent, cancel) = Context::background().child();
    let (child, _) = parent.child_with_timeout(Duration::from_secs(1));
    time::advance(Duration::from_secs(1)).await;
    cancel.cancel_with("later");
    assert!(child.err().unwrap().is_deadline_exceeded());
    assert!(parent.err().unwrap().is_canceled());
}

#[tokio::test(start_paused = true)]
async fn an_ancestor_canceled_before_the_childs_deadline_is_the_childs_error() {
    let (parent, cancel) = Context::background().child();
    let (child, _) = parent.child_with_timeout(Duration::from_secs(1));
    cancel.cancel_with("earlier");
    time::advance(Duration::from_secs(2)).await;
    let err = child.err().unwrap();
    assert!(err.is_canceled());
    assert_eq!(err.cause().unwrap().to_string(), "earlier");
}

#[test]
fn without_cancel_keeps_values_and_drops_cancellation_and_deadline() {
    #[derive(Debug, PartialEq)]
    struct Tenant(&'static str);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (request, cancel) = Context::background()
            .with_value(Tenant("acme"))
            .child_with_timeout(Duration::from_secs(1));
        let detached = request.without_cancel();
        assert_eq!(detached.deadline(), None);
        cancel.cancel();
        time::advance(Duration::from_secs(5)).await;
        assert!(request.is_done());
        assert!(!detached.is_done());
        assert_eq!(detached.value::<Tenant>(), Some(&Tenant("acme")));

        // Its children are new roots: their own limits still apply.
        let (audit, _) = detached.child_with_timeout(Duration::from_millis(10));
        assert!(!audit.is_done());
        assert_eq!(audit.value::<Tenant>(), Some(&Tenant("acme")));
        time::advance(Duration::from_millis(10)).await;
        assert!(audit.err().unwrap().is_deadline_exceeded());
    });
}

#[test]
fn values_are_found_by_type_and_the_nearest_wins() {
    #[derive(Debug, PartialEq)]
    struct RequestId(u64);
    #[derive(Debug, PartialEq)]
    struct User(&'static str);

    let root = Context::background().with_value(RequestId(1));
    let (child, _) = root.with_value(User("ada")).child();
    let shadowed = child.with_value(RequestId(2));

    assert_eq!(shadowed.value::<RequestId>(), Some(&RequestId(2)));
    assert_eq!(shadowed.value::<User>(), Some(&User("ada")));
    assert_eq!(
        child.value::<RequestId>(),
        Some(&RequestId(1)),
        "the parent is untouched"
    );
    assert_eq!(root.value::<User>(), None);
    assert_eq!(shadowed.value::<String>(), None);
}

#[test]
fn a_chain_100_000_deep_derives_cancels_reports_and_drops_on_a_small_stack() {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            struct Depth(usize);
            let (root, cancel) = Context::background().named("root").child();
            let mut leaf = root.clone();
            let mut handles = Vec::new();
            for depth in 0..100_000 {
                let (next, handle) = leaf.with_value(Depth(depth)).child();
                leaf = next;
                handles.push(handle);
            }
            assert!(!leaf.is_done());
            assert_eq!(leaf.value::<Depth>().unwrap().0, 99_999);
            cancel.cancel_with("stop everything");
            let err = leaf.err().unwrap();
            assert_eq!(err.cause().unwrap().to_string(), "stop everything");
            assert_eq!(err.context_name(), Some("root"));
            drop(handles);
            drop(root);
            drop(leaf);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn debug_output_says_what_a_context_is() {
    let (ctx, cancel) = Context::background().named("job").child();
    let live = format!("{ctx:?}");
    assert!(
        live.contains("\"job\"") && live.contains("done: false"),
        "{live}"
    );
    cancel.cancel();
    assert!(format!("{ctx:?}").contains("done: true"));
    assert!(format!("{cancel:?}").contains("done: true"));
}
