//! The tower middleware: a request's budget carried across a service hop in
//! the budget headers, the request's context ending with the request, and a
//! caller giving up reaching the handler.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::future::{pending, Future};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio_ctx::headers::{BudgetHeaders, InvalidBudgetHeader, Parsing, GRPC_TIMEOUT};
use tokio_ctx::tower::{ContextBody, PropagateBudgetLayer, RequestContextLayer};
use tokio_ctx::{Context, Error};
use tokio_test::{assert_pending, assert_ready, task};
use tower_layer::Layer;
use tower_service::Service;

const MS: Duration = Duration::from_millis(1);

/// A service made of a closure, counting its calls.
#[derive(Clone)]
struct Handler<F> {
    f: F,
    calls: Arc<AtomicUsize>,
}

fn handler<F>(f: F) -> Handler<F> {
    Handler {
        f,
        calls: Arc::default(),
    }
}

impl<F, Fut> Service<Request<()>> for Handler<F>
where
    F: FnMut(Request<()>) -> Fut,
    Fut: Future<Output = Result<Response<String>, Infallible>>,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Fut {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (self.f)(request)
    }
}

fn request(timeout: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/svc/Method");
    if let Some(timeout) = timeout {
        builder = builder.header(GRPC_TIMEOUT, timeout);
    }
    builder.body(()).unwrap()
}

fn ok(body: String) -> Result<Response<String>, Infallible> {
    Ok(Response::new(body))
}

/// The text of a body the server layer wrapped.
fn text(response: &Response<ContextBody<String>>) -> &str {
    response.body().get_ref().map_or("", String::as_str)
}

#[tokio::test(start_paused = true)]
async fn the_callers_budget_becomes_the_request_deadline() {
    let mut server =
        RequestContextLayer::new(Context::background()).layer(handler(|request: Request<()>| {
            let current = Context::current().remaining();
            let attached = request.extensions().get::<Context>().unwrap().remaining();
            async move { ok(format!("{current:?} {attached:?}")) }
        }));
    let response = server.call(request(Some("250m"))).await.unwrap();
    assert_eq!(text(&response), "Some(250ms) Some(250ms)");
}

#[tokio::test(start_paused = true)]
async fn without_the_header_only_the_servers_limits_apply() {
    let (server_ctx, _) = Context::background().child_with_timeout(10 * 1000 * MS);
    let read_budget =
        |_: Request<()>| async { ok(format!("{:?}", Context::current().remaining())) };
    let mut limited = RequestContextLayer::new(server_ctx.clone()).layer(handler(read_budget));
    assert_eq!(
        text(&limited.call(request(None)).await.unwrap()),
        "Some(10s)"
    );
    // A caller cannot stretch the server's own limit.
    assert_eq!(
        text(&limited.call(request(Some("1H"))).await.unwrap()),
        "Some(10s)"
    );
    let mut open = RequestContextLayer::new(Context::background()).layer(handler(read_budget));
    assert_eq!(text(&open.call(request(None)).await.unwrap()), "None");
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_outlives_the_budget_is_dropped_with_a_deadline_error() {
    let seen = Arc::new(Mutex::new(None::<Context>));
    let kept = Arc::clone(&seen);
    let (alive, handler_dropped) = tokio::sync::oneshot::channel::<()>();
    let alive = Arc::new(Mutex::new(Some(alive)));
    let mut server =
        RequestContextLayer::new(Context::background()).layer(handler(move |_: Request<()>| {
            *kept.lock().unwrap() = Some(Context::current());
            // Dropped with the handler's future.
            let alive = alive.lock().unwrap().take();
            async move {
                let _alive = alive;
                pending::<Result<Response<String>, Infallible>>().await
            }
        }));
    let mut call = task::spawn(server.call(request(Some("10m"))));
    assert_pending!(call.poll());
    tokio::time::advance(10 * MS).await;
    let err = assert_ready!(call.poll()).unwrap_err();
    let mut handler_dropped = task::spawn(handler_dropped);
    assert!(
        assert_ready!(handler_dropped.poll()).is_err(),
        "the handler is dropped as the call fails, not later"
    );
    let err = err.downcast_ref::<Error>().expect("the context's error");
    assert!(err.is_deadline_exceeded());
    assert_eq!(err.context_name(), Some("request /svc/Method"));
    assert_eq!(err.budget(), Some(10 * MS));
    let handlers_ctx = seen.lock().unwrap().take().unwrap();
    assert!(
        handlers_ctx.is_done(),
        "work started under the request sees it end"
    );
}

#[tokio::test(start_paused = true)]
async fn a_malformed_header_is_refused_before_the_handler_runs_when_strict() {
    let service = handler(|_: Request<()>| async { ok(String::new()) });
    let calls = Arc::clone(&service.calls);
    let mut server = RequestContextLayer::new(Context::background())
        .headers(BudgetHeaders::default().parsing(Parsing::Strict))
        .layer(service);
    for malformed in ["1.5S", "10", "123456789m", "10ms", ""] {
        let err = server.call(request(Some(malformed))).await.unwrap_err();
        let err = err
            .downcast_ref::<InvalidBudgetHeader>()
            .expect("the header's error");
        assert!(err.to_string().contains(&format!("{malformed:?}")), "{err}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_header_is_ignored_by_default() {
    let mut server =
        RequestContextLayer::new(Context::background()).layer(handler(|_: Request<()>| async {
            ok(format!("{:?}", Context::current().remaining()))
        }));
    for malformed in ["1.5S", "10", "123456789m", "-1S", ""] {
        let response = server.call(request(Some(malformed))).await.unwrap();
        assert_eq!(text(&response), "None", "{malformed:?}");
    }
    // What people write by hand is read.
    let response = server.call(request(Some("10ms"))).await.unwrap();
    assert_eq!(text(&response), "Some(10ms)");
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_cancels_the_request() {
    let seen = Arc::new(Mutex::new(None::<Context>));
    let kept = Arc::clone(&seen);
    let mut server = RequestContextLayer::new(Context::background()).layer(handler(
        move |request: Request<()>| {
            *kept.lock().unwrap() = request.extensions().get::<Context>().cloned();
            async { pending::<Result<Response<String>, Infallible>>().await }
        },
    ));
    let mut call = task::spawn(server.call(request(Some("5S"))));
    assert_pending!(call.poll());
    let request_ctx = seen.lock().unwrap().take().unwrap();
    assert!(!request_ctx.is_done());
    drop(call);
    let err = request_ctx.err().expect("canceled when the caller left");
    assert!(err.is_canceled());
    assert_eq!(
        err.cause().unwrap().to_string(),
        "the caller gave up on the request"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_ends_when_its_response_is_complete() {
    let seen = Arc::new(Mutex::new(None::<Context>));
    let kept = Arc::clone(&seen);
    let mut server =
        RequestContextLayer::new(Context::background()).layer(handler(move |_: Request<()>| {
            *kept.lock().unwrap() = Some(Context::current());
            async { ok("body".into()) }
        }));
    let response = server.call(request(Some("5S"))).await.unwrap();
    let request_ctx = seen.lock().unwrap().take().unwrap();
    assert!(!request_ctx.is_done(), "the body is still to be sent");
    let mut body = task::spawn(http_body_util::BodyExt::collect(response.into_body()));
    let body = assert_ready!(body.poll()).unwrap().to_bytes();
    assert_eq!(body, "body");
    let err = request_ctx.err().expect("ended with its response");
    assert!(err.is_canceled());
    assert_eq!(err.cause().unwrap().to_string(), "the request completed");
}

#[tokio::test(start_paused = true)]
async fn a_lingering_request_is_left_to_its_budget() {
    let seen = Arc::new(Mutex::new(None::<Context>));
    let kept = Arc::clone(&seen);
    let mut server = RequestContextLayer::new(Context::background())
        .linger(true)
        .layer(handler(move |_: Request<()>| {
            *kept.lock().unwrap() = Some(Context::current());
            async { ok(String::new()) }
        }));
    let response = server.call(request(Some("50m"))).await.unwrap();
    drop(response);
    let request_ctx = seen.lock().unwrap().take().unwrap();
    assert!(
        !request_ctx.is_done(),
        "not canceled by the call completing"
    );
    tokio::time::advance(50 * MS).await;
    assert!(request_ctx.err().unwrap().is_deadline_exceeded());
}

#[tokio::test(start_paused = true)]
async fn shutting_the_server_down_ends_the_requests_in_flight() {
    let (server_ctx, shutdown) = Context::background().named("server").child();
    let mut server = RequestContextLayer::new(server_ctx).layer(handler(|_: Request<()>| async {
        pending::<Result<Response<String>, Infallible>>().await
    }));
    let mut call = task::spawn(server.call(request(Some("1M"))));
    assert_pending!(call.poll());
    shutdown.cancel_with("shutting down");
    assert!(call.is_woken());
    let err = assert_ready!(call.poll()).unwrap_err();
    let err = err.downcast_ref::<Error>().unwrap();
    assert!(err.is_canceled());
    assert_eq!(err.context_name(), Some("server"));
    assert_eq!(err.cause().unwrap().to_string(), "shutting down");
}

/// A client stack's last service: records the header it was handed.
fn recorder(
    headers: &Arc<Mutex<Vec<Option<String>>>>,
) -> impl FnMut(Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>> + Clone {
    let headers = Arc::clone(headers);
    move |request: Request<()>| {
        let value = request
            .headers()
            .get(GRPC_TIMEOUT)
            .map(|value| value.to_str().unwrap().to_owned());
        headers.lock().unwrap().push(value);
        std::future::ready(ok(String::new()))
    }
}

#[tokio::test(start_paused = true)]
async fn the_remaining_budget_travels_in_the_header() {
    let sent = Arc::default();
    let mut client = PropagateBudgetLayer::new().layer(handler(recorder(&sent)));
    let (ctx, _) = Context::background().child_with_timeout(2000 * MS);
    tokio::time::advance(500 * MS).await;

    // From the context current when the call is made...
    ctx.attach(async { client.call(request(None)).await })
        .await
        .unwrap();
    // ...or from one the request carries.
    let mut carried = request(None);
    carried.extensions_mut().insert(ctx.clone());
    client.call(carried).await.unwrap();
    // No deadline, no header.
    client.call(request(None)).await.unwrap();

    let sent = sent.lock().unwrap().clone();
    let expected = Some("1500000u".to_owned());
    assert_eq!(sent, vec![expected.clone(), expected, None]);
}

#[tokio::test(start_paused = true)]
async fn a_tighter_header_is_kept_and_a_looser_or_malformed_one_replaced() {
    let sent = Arc::default();
    let mut client = PropagateBudgetLayer::new().layer(handler(recorder(&sent)));
    let (ctx, _) = Context::background().child_with_timeout(1000 * MS);
    for asked in ["100m", "5S", "soon"] {
        ctx.attach(async { client.call(request(Some(asked))).await })
            .await
            .unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    let sent: Vec<_> = sent.iter().map(|value| value.as_deref().unwrap()).collect();
    assert_eq!(sent, ["100m", "1000000u", "1000000u"]);
}

#[tokio::test(start_paused = true)]
async fn a_request_whose_context_ended_is_not_sent() {
    let service = handler(|_: Request<()>| async { ok(String::new()) });
    let calls = Arc::clone(&service.calls);
    let mut client = PropagateBudgetLayer::new().layer(service);
    let (ctx, cancel) = Context::background().child();
    cancel.cancel();
    let err = ctx
        .attach(async { client.call(request(None)).await })
        .await
        .unwrap_err();
    assert!(err.downcast_ref::<Error>().unwrap().is_canceled());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_call_outliving_the_budget_is_given_up() {
    let mut client = PropagateBudgetLayer::new().layer(handler(|_: Request<()>| async {
        pending::<Result<Response<String>, Infallible>>().await
    }));
    let (ctx, _) = Context::background().child_with_timeout(20 * MS);
    let mut call = task::spawn(ctx.attach(async move { client.call(request(None)).await }));
    assert_pending!(call.poll());
    tokio::time::advance(20 * MS).await;
    let err = assert_ready!(call.poll()).unwrap_err();
    assert!(err.downcast_ref::<Error>().unwrap().is_deadline_exceeded());
}

#[tokio::test(start_paused = true)]
async fn across_a_hop_the_budget_keeps_shrinking() {
    // The downstream service, reached "over the wire": its stack starts
    // from the header alone.
    let downstream =
        RequestContextLayer::new(Context::background()).layer(handler(|_: Request<()>| async {
            ok(format!("{:?}", Context::current().remaining()))
        }));
    let mut upstream_client = PropagateBudgetLayer::new().layer(downstream);

    let (incoming, _) = Context::background().child_with_timeout(1000 * MS);
    tokio::time::advance(300 * MS).await; // upstream spends some of it
    let response = incoming
        .attach(async { upstream_client.call(request(None)).await })
        .await
        .unwrap();
    let body = response.body().get_ref().and_then(ContextBody::get_ref);
    assert_eq!(body.map(String::as_str), Some("Some(700ms)"));
}

#[tokio::test(start_paused = true)]
async fn a_servers_default_and_maximum_bound_every_request() {
    let read_budget =
        |_: Request<()>| async { ok(format!("{:?}", Context::current().remaining())) };
    let mut server = RequestContextLayer::new(Context::background())
        .default_budget(5000 * MS)
        .max_budget(10 * 1000 * MS)
        .layer(handler(read_budget));
    let budget = |response: Response<ContextBody<String>>| text(&response).to_owned();
    assert_eq!(
        budget(server.call(request(None)).await.unwrap()),
        "Some(5s)"
    );
    assert_eq!(
        budget(server.call(request(Some("1H"))).await.unwrap()),
        "Some(10s)"
    );
    assert_eq!(
        budget(server.call(request(Some("2S"))).await.unwrap()),
        "Some(2s)"
    );
    let mut capped = RequestContextLayer::new(Context::background())
        .max_budget(200 * MS)
        .layer(handler(read_budget));
    assert_eq!(
        budget(capped.call(request(None)).await.unwrap()),
        "Some(200ms)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_as_its_budget_runs_out_is_a_deadline_not_the_caller_leaving() {
    // An outer timer on the same budget (tonic's, on a grpc-timeout) drops
    // the call as the budget runs out: the caller has not left.
    let seen = Arc::new(Mutex::new(None::<Context>));
    let kept = Arc::clone(&seen);
    let mut server = RequestContextLayer::new(Context::background()).layer(handler(
        move |request: Request<()>| {
            *kept.lock().unwrap() = request.extensions().get::<Context>().cloned();
            async { pending::<Result<Response<String>, Infallible>>().await }
        },
    ));
    let mut call = task::spawn(server.call(request(Some("100m"))));
    assert_pending!(call.poll());
    tokio::time::advance(99 * MS).await;
    drop(call);
    let request_ctx = seen.lock().unwrap().take().unwrap();
    assert!(!request_ctx.is_done(), "not canceled: its deadline ends it");
    tokio::time::advance(MS).await;
    assert!(request_ctx.err().unwrap().is_deadline_exceeded());
}

#[tokio::test(start_paused = true)]
async fn a_response_body_runs_under_the_request_and_ends_with_its_budget() {
    use futures::StreamExt;
    use http_body_util::{BodyExt, StreamBody};
    type Chunks = StreamBody<
        futures::stream::BoxStream<'static, Result<http_body::Frame<bytes::Bytes>, Infallible>>,
    >;
    let mut server = RequestContextLayer::new(Context::background()).layer(tower::service_fn(
        |_: Request<()>| async {
            // A chunk every 100 ms, naming the context it was made under.
            let chunks = futures::stream::unfold((), |()| async {
                tokio::time::sleep(100 * MS).await;
                let budget = format!("{:?};", Context::current().remaining());
                Some((Ok(http_body::Frame::data(bytes::Bytes::from(budget))), ()))
            });
            Ok::<_, Infallible>(Response::new(Chunks::new(chunks.boxed())))
        },
    ));
    let response = server.call(request(Some("250m"))).await.unwrap();
    let mut body = response.into_body();
    let mut chunks = Vec::new();
    let ended = loop {
        match body.frame().await {
            Some(Ok(frame)) => chunks.push(frame.into_data().unwrap()),
            Some(Err(ended)) => break ended,
            None => panic!("the body outlived its budget"),
        }
    };
    assert_eq!(chunks, ["Some(150ms);", "Some(50ms);"]);
    let ended = ended.downcast_ref::<Error>().expect("the context's error");
    assert!(ended.is_deadline_exceeded());
    assert_eq!(ended.context_name(), Some("request /svc/Method"));
    assert!(
        ended.location().file().ends_with("tower_budget.rs"),
        "the layer's line"
    );
    assert!(body.frame().await.is_none(), "and nothing after");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_response_body_before_its_end_is_the_caller_leaving() {
    let seen = Arc::new(Mutex::new(None::<Context>));
    let kept = Arc::clone(&seen);
    let mut server =
        RequestContextLayer::new(Context::background()).layer(handler(move |_: Request<()>| {
            *kept.lock().unwrap() = Some(Context::current());
            async { ok("a body never read".into()) }
        }));
    let response = server.call(request(Some("5S"))).await.unwrap();
    let request_ctx = seen.lock().unwrap().take().unwrap();
    drop(response);
    let err = request_ctx.err().expect("canceled with the body");
    assert_eq!(
        err.cause().unwrap().to_string(),
        "the caller gave up on the request"
    );
}

#[tokio::test(start_paused = true)]
async fn the_margin_is_kept_back_and_the_call_runs_under_what_was_sent() {
    let seen = Arc::new(Mutex::new(None::<Context>));
    let kept = Arc::clone(&seen);
    let mut client =
        PropagateBudgetLayer::new()
            .margin(100 * MS)
            .layer(handler(move |request: Request<()>| {
                *kept.lock().unwrap() = Some(Context::current());
                let sent = request.headers()[GRPC_TIMEOUT].to_str().unwrap().to_owned();
                std::future::ready(ok(sent))
            }));
    let (ctx, _) = Context::background().child_with_timeout(1000 * MS);
    let mut call = request(None);
    *call.uri_mut() = "http://inventory.internal:50051/svc/Method"
        .parse()
        .unwrap();
    let response = ctx.attach(async { client.call(call).await }).await.unwrap();
    assert_eq!(response.body().get_ref().unwrap(), "900000u");
    let call_ctx = seen.lock().unwrap().take().unwrap();
    assert_eq!(call_ctx.remaining(), Some(900 * MS));
    tokio::time::advance(900 * MS).await;
    let err = call_ctx.err().unwrap();
    assert_eq!(
        err.context_name(),
        Some("call inventory.internal:50051/svc/Method")
    );
    assert!(
        err.location().file().ends_with("tower_budget.rs"),
        "the layer's line"
    );
    assert!(!ctx.is_done(), "the caller still has its margin");
}

#[tokio::test(start_paused = true)]
async fn a_failure_as_the_context_ends_is_the_contexts_error() {
    // The inner client's own timer on the same budget fires with the
    // context's: the context decides what the caller is told.
    #[derive(Debug)]
    struct TimedOut;
    impl std::fmt::Display for TimedOut {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the client's own timer")
        }
    }
    impl std::error::Error for TimedOut {}

    let mut client = PropagateBudgetLayer::new().layer(tower::service_fn(|_: Request<()>| {
        let left = Context::current().remaining().unwrap();
        async move {
            tokio::time::sleep(left).await;
            Err::<Response<String>, _>(TimedOut)
        }
    }));
    let (ctx, _) = Context::background().child_with_timeout(50 * MS);
    let err = ctx
        .attach(async { client.call(request(None)).await })
        .await
        .unwrap_err();
    let err = err
        .downcast_ref::<Error>()
        .expect("the context's error, not the timer's");
    assert!(err.is_deadline_exceeded());
}
