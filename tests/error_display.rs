//! `Error`: what it prints, and how it converts to `std::io::Error`.

use std::io;
use std::time::Duration;

use tokio_ctx::Context;

#[tokio::test(start_paused = true)]
async fn a_deadline_names_the_context_its_budget_and_where_it_was_set() {
    let line = line!() + 3;
    let (ctx, _) = Context::background()
        .named("connect")
        .child_with_timeout(Duration::from_millis(1));
    tokio::time::advance(Duration::from_millis(1)).await;
    let err = ctx.err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(r#"deadline of "connect" (1ms, set at tests/error_display.rs:{line}) exceeded"#)
    );
    assert_eq!(err.location().file(), "tests/error_display.rs");
    assert_eq!(err.location().line(), line);
}

#[tokio::test(start_paused = true)]
async fn an_unnamed_deadline_falls_back_to_the_call_site() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(2));
    let line = line!() - 1;
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        ctx.err().unwrap().to_string(),
        format!("deadline (2s, set at tests/error_display.rs:{line}) exceeded")
    );
}

#[test]
fn a_cancellation_names_its_context_and_prints_its_cause() {
    let (ctx, cancel) = Context::background().child();
    let line = line!() - 1;
    cancel.cancel_with("shutting down");
    assert_eq!(
        ctx.err().unwrap().to_string(),
        format!("canceled (context set at tests/error_display.rs:{line}): shutting down")
    );

    let (named, cancel) = Context::background().named("upload").child();
    let line = line!() - 1;
    cancel.cancel();
    assert_eq!(
        named.err().unwrap().to_string(),
        format!(r#"canceled (context "upload", set at tests/error_display.rs:{line})"#)
    );

    // Read from below, the message names the context that was canceled,
    // as a deadline's does.
    let (server, shutdown) = Context::background().named("server").child();
    let line = line!() - 1;
    let (request, _) = server.named("request").child();
    shutdown.cancel_with("SIGINT");
    assert_eq!(
        request.err().unwrap().to_string(),
        format!(r#"canceled (context "server", set at tests/error_display.rs:{line}): SIGINT"#)
    );
}

#[test]
fn the_cause_is_the_error_source() {
    use std::error::Error as _;
    let (ctx, cancel) = Context::background().child();
    cancel.cancel_with(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed"));
    let err = ctx.err().unwrap();
    let source = err.source().unwrap();
    assert_eq!(
        source.downcast_ref::<io::Error>().unwrap().kind(),
        io::ErrorKind::BrokenPipe
    );
    let debug = format!("{err:?}");
    assert!(
        debug.contains("Canceled") && debug.contains("pipe closed"),
        "{debug}"
    );
}

#[tokio::test(start_paused = true)]
async fn io_errors_keep_the_kind_and_the_original() {
    let (timed_out, _) = Context::background().child_with_timeout(Duration::ZERO);
    let io_err: io::Error = timed_out.check().unwrap_err().into();
    assert_eq!(io_err.kind(), io::ErrorKind::TimedOut);
    let original = io_err
        .get_ref()
        .unwrap()
        .downcast_ref::<tokio_ctx::Error>()
        .unwrap();
    assert!(original.is_deadline_exceeded());

    let (canceled, cancel) = Context::background().child();
    cancel.cancel();
    let io_err = io::Error::from(canceled.err().unwrap());
    assert_eq!(io_err.kind(), io::ErrorKind::Interrupted);
}

#[test]
fn a_question_mark_turns_it_into_an_io_error() {
    fn read_header(ctx: &Context) -> io::Result<u8> {
        ctx.check()?;
        Ok(1)
    }
    let (ctx, cancel) = Context::background().child();
    assert_eq!(read_header(&ctx).unwrap(), 1);
    cancel.cancel();
    assert_eq!(
        read_header(&ctx).unwrap_err().kind(),
        io::ErrorKind::Interrupted
    );
}

#[tokio::test(start_paused = true)]
async fn gathered_errors_point_at_what_stopped_them() {
    use std::error::Error as _;
    let err = Context::background()
        .select_first([1, 2].map(|n| {
            move |_ctx| async move { Err::<(), _>(io::Error::other(format!("replica {n} down"))) }
        }))
        .await
        .unwrap_err();
    assert_eq!(
        err.source().unwrap().to_string(),
        "replica 1 down",
        "the first failure"
    );

    let (ctx, cancel) = Context::background().child();
    cancel.cancel_with("shutdown");
    let err = ctx
        .scope(|scope| async move {
            scope.spawn(|_ctx| async { Err::<(), _>(io::Error::other("late")) });
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(
        err.source().unwrap().to_string().ends_with("): shutdown"),
        "the context's end"
    );
}
