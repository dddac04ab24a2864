//! `Error::reason` and `Error::cause_is`: every reason this crate cancels a
//! context for can be matched without comparing strings, each produced the
//! way a user meets it, and a cause given as a string can be compared
//! without turning it into one.

use std::future::{pending, ready, Ready};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time;
use tokio_ctx::{Context, Error, Reason, Scope};
use tokio_util::sync::CancellationToken;

const HOUR: Duration = Duration::from_secs(3600);

/// A place for a closure to leave the context it was given.
#[derive(Clone, Default)]
struct Stash(Arc<Mutex<Option<Context>>>);

impl Stash {
    fn keep(&self, ctx: &Context) {
        *self.0.lock().unwrap() = Some(ctx.clone());
    }

    fn err(&self) -> Error {
        let ctx = self.0.lock().unwrap().take().expect("a context was kept");
        ctx.err().expect("the kept context has ended")
    }
}

/// What every crate reason must satisfy: matched by `reason()`, by a
/// downcast of the cause, and by `cause_is` with its message.
#[track_caller]
fn assert_reason(err: &Error, reason: Reason) {
    assert_eq!(err.reason(), Some(reason), "{err}");
    assert_eq!(
        err.cause().and_then(|c| c.downcast_ref::<Reason>()),
        Some(&reason),
        "{err}"
    );
    assert!(err.cause_is(reason.message()), "{err}");
    assert!(err.is_canceled(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_finished_step() {
    let stash = Stash::default();
    Context::background()
        .with_timeout(HOUR, |ctx| {
            stash.keep(&ctx);
            ready(())
        })
        .await
        .unwrap();
    assert_reason(&stash.err(), Reason::Finished);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_maker() {
    let stash = Stash::default();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        drop(Context::background().with_timeout(HOUR, |ctx: Context| {
            stash.keep(&ctx);
            panic!("the maker panicked");
            #[allow(unreachable_code)]
            ready(())
        }));
    }));
    assert!(caught.is_err());
    assert_reason(&stash.err(), Reason::MakerPanicked);
}

#[tokio::test(start_paused = true)]
async fn a_lost_race() {
    let stash = Stash::default();
    let slow = stash.clone();
    let won = tokio_ctx::race!(
        Context::background(),
        move |ctx: Context| async move {
            slow.keep(&ctx);
            pending::<u8>().await
        },
        |_ctx| async { 1u8 },
    )
    .await
    .unwrap();
    assert_eq!(won, (1, 1));
    assert_reason(&stash.err(), Reason::LostRace);
}

#[tokio::test(start_paused = true)]
async fn a_failed_sibling() {
    let stash = Stash::default();
    let waiting = stash.clone();
    let _ = tokio_ctx::try_join!(
        Context::background(),
        move |ctx: Context| async move {
            waiting.keep(&ctx);
            pending::<Result<(), &str>>().await
        },
        |_ctx| async { Err::<(), _>("down") },
    )
    .await;
    assert_reason(&stash.err(), Reason::SiblingFailed);
}

#[tokio::test(start_paused = true)]
async fn scope_reasons() {
    // The body failed: its tasks stop.
    let stash = Stash::default();
    let task = stash.clone();
    let _ = Context::background()
        .scope(|scope| async move {
            scope.spawn(move |ctx: Context| async move {
                task.keep(&ctx);
                ctx.done().await;
                Ok::<(), &str>(())
            });
            tokio::task::yield_now().await;
            Err::<(), _>("body failed")
        })
        .await;
    assert_reason(&stash.err(), Reason::BodyFailed);

    // A task failed: its own context says so.
    let stash = Stash::default();
    let failing = stash.clone();
    let _ = Context::background()
        .scope(|scope| async move {
            scope.spawn(move |ctx: Context| async move {
                failing.keep(&ctx);
                Err::<(), _>("task failed")
            });
            Ok(())
        })
        .await;
    assert_reason(&stash.err(), Reason::TaskFailed);

    // A task spawned into a scope that has returned.
    let kept: Arc<Mutex<Option<Scope<&str>>>> = Arc::default();
    let keep = Arc::clone(&kept);
    Context::background()
        .scope(|scope| async move {
            *keep.lock().unwrap() = Some(scope);
            Ok::<(), &str>(())
        })
        .await
        .unwrap();
    let late = kept
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .spawn(|_ctx| async { Ok(()) });
    assert_reason(&late.context().err().unwrap(), Reason::Finished);
    assert_reason(&late.await.unwrap_err(), Reason::ScopeClosed);

    // A task that outstays the grace period.
    let (cancel_ctx, cancel) = Context::background().child();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let scope = cancel_ctx
        .scope(|scope| async move {
            let stubborn = scope.spawn(|ctx: Context| async move {
                ctx.done().await;
                time::sleep(HOUR).await;
                Ok::<(), &str>(())
            });
            let _ = tx.send(stubborn);
            Ok(())
        })
        .grace_period(Duration::from_millis(10));
    let scope = tokio::spawn(scope);
    let stubborn = rx.await.unwrap();
    cancel.cancel();
    let _ = scope.await.unwrap();
    assert_reason(&stubborn.await.unwrap_err(), Reason::GracePeriodOver);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_sibling() {
    let stash = Stash::default();
    let waiting = stash.clone();
    let scope = Context::background().scope(|scope| async move {
        scope.spawn(move |ctx: Context| async move {
            waiting.keep(&ctx);
            ctx.done().await;
            Ok::<(), &str>(())
        });
        scope.spawn(|_ctx| async {
            tokio::task::yield_now().await;
            panic!("a task panicked");
            #[allow(unreachable_code)]
            Ok::<(), &str>(())
        });
        Ok(())
    });
    let joined = tokio::spawn(scope).await;
    assert!(joined.unwrap_err().is_panic(), "the panic is resumed");
    assert_reason(&stash.err(), Reason::SiblingPanicked);
}

#[tokio::test(start_paused = true)]
async fn spawned_tasks() {
    // Its handle dropped.
    let stash = Stash::default();
    let task = stash.clone();
    let handle = Context::background().spawn(move |ctx| async move {
        task.keep(&ctx);
        ctx.done().await;
    });
    tokio::task::yield_now().await;
    drop(handle);
    assert_reason(&stash.err(), Reason::HandleDropped);

    // It panicked.
    let stash = Stash::default();
    let task = stash.clone();
    let handle = Context::background()
        .spawn(move |ctx| async move {
            task.keep(&ctx);
            tokio::task::yield_now().await;
            panic!("the task panicked");
        })
        .detach();
    assert!(handle.await.unwrap_err().is_panic());
    assert_reason(&stash.err(), Reason::TaskPanicked);
}

#[test]
fn an_aborted_task() {
    // Tokio aborts the tasks of a runtime that shuts down.
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let handle = {
        let _entered = other.enter();
        Context::background().spawn(|_ctx| pending::<()>())
    };
    drop(other);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = runtime.block_on(handle).unwrap_err();
    assert_reason(&err, Reason::Aborted);
}

#[tokio::test(start_paused = true)]
async fn an_empty_race() {
    let nobody: Vec<fn(Context) -> Ready<()>> = Vec::new();
    let err = Context::background().race(nobody).await.unwrap_err();
    assert_reason(&err, Reason::NothingToRace);
}

#[tokio::test(start_paused = true)]
async fn a_canceled_token() {
    let token = CancellationToken::new();
    let (ctx, _) = Context::background().child_with_token(token.clone());
    token.cancel();
    assert_reason(&ctx.done().await, Reason::TokenCanceled);
}

#[tokio::test(start_paused = true)]
async fn a_reserve_handed_to_cleanup() {
    let (request, _) = Context::background().child_with_timeout(HOUR);
    let (work, reserve) = request.reserve(Duration::from_secs(1));
    reserve.cleanup(|_ctx| ready(())).await.unwrap();
    assert_reason(&work.err().unwrap(), Reason::CleanupStarted);
}

#[cfg(feature = "tower")]
mod requests {
    use std::convert::Infallible;
    use std::task::{Context as TaskContext, Poll};

    use http::{Request, Response};
    use tokio_ctx::tower::RequestContextLayer;
    use tower_layer::Layer;
    use tower_service::Service;

    use super::*;

    /// A service that keeps the request's context and answers with `body`,
    /// or never.
    #[derive(Clone)]
    struct Keep {
        stash: Stash,
        answer: bool,
    }

    impl Service<Request<()>> for Keep {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Response<String>, Infallible>> + Send>,
        >;

        fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            self.stash.keep(&Context::current());
            let answer = self.answer;
            Box::pin(async move {
                if !answer {
                    pending::<()>().await;
                }
                Ok(Response::new("done".to_owned()))
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_left_and_a_request_that_completed() {
        let stash = Stash::default();
        let mut server = RequestContextLayer::new(Context::background()).layer(Keep {
            stash: stash.clone(),
            answer: false,
        });
        let mut call = tokio_test::task::spawn(server.call(Request::new(())));
        assert!(call.poll().is_pending());
        drop(call);
        assert_reason(&stash.err(), Reason::CallerLeft);

        let stash = Stash::default();
        let mut server = RequestContextLayer::new(Context::background()).layer(Keep {
            stash: stash.clone(),
            answer: true,
        });
        let response = server.call(Request::new(())).await.unwrap();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        assert_eq!(body.to_bytes(), "done");
        assert_reason(&stash.err(), Reason::RequestCompleted);
    }
}

#[test]
fn string_causes_compare_without_allocating_a_copy() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel_with("client went away");
    let err = ctx.err().unwrap();
    assert!(err.cause_is("client went away"));
    assert!(!err.cause_is("client went"), "a prefix is not the cause");
    assert!(!err.cause_is("client went away!"), "nor is a longer text");
    assert_eq!(
        err.reason(),
        None,
        "a cause of the user's is no reason of the crate's"
    );

    let (ctx, cancel) = Context::background().child();
    cancel.cancel_with(format!("shutting down after {} requests", 12));
    assert!(ctx
        .err()
        .unwrap()
        .cause_is("shutting down after 12 requests"));

    // Any error compares by what it prints.
    let (ctx, cancel) = Context::background().child();
    cancel.cancel_with(std::io::Error::other("disk full"));
    assert!(ctx.err().unwrap().cause_is("disk full"));

    // Without a cause, nothing matches, not even the empty text.
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    assert!(!ctx.err().unwrap().cause_is(""));
    assert_eq!(ctx.err().unwrap().reason(), None);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_has_no_reason() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::ZERO);
    let err = ctx.err().unwrap();
    assert_eq!(err.reason(), None);
    assert!(!err.cause_is(""));
}
