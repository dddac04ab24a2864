//! tonic servers and clients over loopback: every ending a gRPC status,
//! never a reset stream; a call's context that ends with the call; streams
//! under their context. Real time, generous bounds, every test bounded.
#![cfg(feature = "tonic")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use http::HeaderValue;
use support::{bounded, channel, Hop, HopClient, Log};
use tokio::time::{sleep, Instant};
use tokio_ctx::headers::{BudgetHeaders, Parsing};
use tokio_ctx::tonic::{PropagateBudgetLayer, RequestContextLayer, RequestExt};
use tokio_ctx::Context;
use tonic::{Code, Request, Response, Status};
use tower::{Layer, ServiceBuilder};

const MS: Duration = Duration::from_millis(1);

/// A hop that sleeps ten seconds, longer than any budget here.
fn slow(log: &Log) -> Hop {
    let log = log.clone();
    Hop::unary(move |request: Request<String>| {
        let log = log.clone();
        async move {
            log.watch("server", &request.context());
            sleep(Duration::from_secs(10)).await;
            Ok(Response::new(String::new()))
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_spent_budget_is_deadline_exceeded_every_time() {
    // No margin: the client's own deadline, tonic's timer on the same
    // header and the server's answer all race; the context decides.
    bounded(async {
        let log = Log::default();
        let server = support::tonic_server(
            RequestContextLayer::new(Context::background()),
            slow(&log),
            Context::background(),
        )
        .await;
        let mut client = HopClient::new(PropagateBudgetLayer::new().layer(channel(&server)));
        let mut names = std::collections::BTreeMap::<String, usize>::new();
        for run in 0..20 {
            let (ctx, _) = Context::background()
                .named("caller")
                .child_with_timeout(100 * MS);
            let status = ctx
                .attach(client.call(Request::new(String::new())))
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                Code::DeadlineExceeded,
                "run {run}: {status:?}"
            );
            assert!(
                status.message().starts_with("deadline of \""),
                "run {run}: {status:?}"
            );
            let name = status.message().split('"').nth(1).unwrap_or("").to_owned();
            *names.entry(name).or_default() += 1;
        }
        eprintln!("20 runs, DEADLINE_EXCEEDED naming: {names:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_spent_budget_is_deadline_exceeded_naming_the_request() {
    // A bare HTTP/2 client, with no timer of its own: only the header's
    // budget, and what the server answers. tonic's own timer on the same
    // header, on the server, would answer CANCELLED if it fired first.
    bounded(async {
        let log = Log::default();
        let server = support::tonic_server(
            RequestContextLayer::new(Context::background()),
            slow(&log),
            Context::background(),
        )
        .await;
        for run in 0..20 {
            let answer = support::raw_grpc_call(&server, "/chain.Hop/Call", &[("grpc-timeout", "50m")])
                .await
                .unwrap_or_else(|e| panic!("run {run}: not an answer but {e}"));
            assert_eq!(answer.http_status, 200, "run {run}");
            assert_eq!(answer.grpc_status.as_deref(), Some("4"), "run {run}: {answer:?}");
            let message = answer.grpc_message.unwrap_or_default();
            assert!(
                message.starts_with("deadline of \"request /chain.Hop/Call\" (49ms, set at tests/integration_tonic.rs:"),
                "run {run}: {message}"
            );
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_shutting_down_answers_unavailable_with_its_cause() {
    bounded(async {
        let log = Log::default();
        let (server_ctx, shutdown) = Context::background().named("server").child();
        let mut server = support::tonic_server(
            RequestContextLayer::new(server_ctx.clone()),
            slow(&log),
            server_ctx,
        )
        .await;
        let mut client = HopClient::new(channel(&server));
        let call = tokio::spawn(async move { client.call(Request::new(String::new())).await });
        // Shut down once the call is in flight.
        while log.seen().is_empty() {
            sleep(5 * MS).await;
        }
        shutdown.cancel_with("shutting down for maintenance");
        let status = call.await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().starts_with("canceled (context ")
                && status
                    .message()
                    .ends_with("): shutting down for maintenance"),
            "{status:?}"
        );
        // The graceful shutdown completes: nothing was left running.
        tokio::time::timeout(Duration::from_secs(10), server.take_task())
            .await
            .expect("the server stopped")
            .unwrap();
        let seen = log.wait_ended(&["server"], Duration::from_secs(5)).await;
        assert_eq!(
            seen[0].ending.as_deref(),
            Some("canceled: shutting down for maintenance")
        );
    })
    .await;
}

/// Budget headers no server should take: malformed, oversized, negative,
/// empty, not ASCII.
fn bad_grpc_timeouts() -> Vec<HeaderValue> {
    [&b"1.5S"[..], b"123456789S", b"-1S", b"", b"\xff1S"]
        .iter()
        .map(|value| HeaderValue::from_bytes(value).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_budget_headers_get_the_configured_answer_and_the_server_goes_on() {
    bounded(async {
        let echo_budget = Hop::unary(|request: Request<String>| async move {
            Ok(Response::new(format!(
                "{:?}",
                request.context().remaining()
            )))
        });
        let strict = support::tonic_server(
            RequestContextLayer::new(Context::background())
                .headers(BudgetHeaders::default().parsing(Parsing::Strict)),
            echo_budget.clone(),
            Context::background(),
        )
        .await;
        let lenient = support::tonic_server(
            RequestContextLayer::new(Context::background()),
            echo_budget,
            Context::background(),
        )
        .await;
        for value in bad_grpc_timeouts() {
            // A raw header, as a broken peer would send it.
            let with_header = |server| {
                let value = value.clone();
                HopClient::new(
                    ServiceBuilder::new()
                        .map_request(move |mut request: http::Request<tonic::body::Body>| {
                            request.headers_mut().insert("grpc-timeout", value.clone());
                            request
                        })
                        .service(channel(server)),
                )
            };
            let status = with_header(&strict)
                .call(Request::new(String::new()))
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{value:?}: {status:?}"
            );
            assert!(
                status.message().starts_with("invalid grpc-timeout"),
                "{status:?}"
            );
            let ignored = with_header(&lenient)
                .call(Request::new(String::new()))
                .await
                .unwrap();
            assert_eq!(
                ignored.into_inner(),
                "None",
                "{value:?}: ignored, as tonic does"
            );
            // Both go on serving.
            for server in [&strict, &lenient] {
                let mut request = Request::new(String::new());
                request
                    .metadata_mut()
                    .insert("grpc-timeout", "5S".parse().unwrap());
                let fine = HopClient::new(channel(server)).call(request).await.unwrap();
                assert!(
                    fine.into_inner().starts_with("Some(4."),
                    "a 5 s budget, less a little"
                );
            }
        }
        strict.stop().await;
        lenient.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unary_calls_context_has_ended_before_its_answer_arrives() {
    bounded(async {
        let kept = Arc::new(Mutex::new(None::<Context>));
        let keep = Arc::clone(&kept);
        let server = support::tonic_server(
            RequestContextLayer::new(Context::background()),
            Hop::unary(move |request: Request<String>| {
                *keep.lock().unwrap() = Some(request.context());
                async { Ok(Response::new("done".to_owned())) }
            }),
            Context::background(),
        )
        .await;
        let mut client = HopClient::new(PropagateBudgetLayer::new().layer(channel(&server)));
        let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(10));
        let reply = ctx
            .attach(client.call(Request::new(String::new())))
            .await
            .unwrap();
        // Read the very moment the answer is in: no waiting.
        let request_ctx = kept.lock().unwrap().take().unwrap();
        assert_eq!(reply.into_inner(), "done");
        let err = request_ctx
            .err()
            .expect("ended before the answer reached the client");
        assert_eq!(err.cause().unwrap().to_string(), "the request completed");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_stream_runs_under_its_context_and_ends_with_its_status() {
    bounded(async {
        // A message every 100 ms, for ever, each saying whether it was
        // produced under the request's context.
        let server = support::tonic_server(
            RequestContextLayer::new(Context::background()),
            Hop::streaming(|request: Request<String>| async move {
                let ctx = request.context();
                let messages = futures::stream::unfold(ctx, |ctx| async move {
                    sleep(100 * MS).await;
                    let current = Context::current().remaining().is_some();
                    Some((Ok(format!("under the request: {current}")), ctx))
                });
                Ok(Response::new(messages.boxed()))
            }),
            Context::background(),
        )
        .await;
        let mut client = HopClient::new(channel(&server));
        let mut request = Request::new(String::new());
        request
            .metadata_mut()
            .insert("grpc-timeout", "350m".parse().unwrap());
        let started = Instant::now();
        let mut messages = client.stream(request).await.unwrap().into_inner();
        let mut received = Vec::new();
        let status = loop {
            match messages.next().await {
                Some(Ok(message)) => received.push(message),
                Some(Err(status)) => break status,
                None => panic!("the stream ended without a status"),
            }
        };
        let took = started.elapsed();
        eprintln!(
            "a 350ms stream: {} messages, then {:?} after {took:.0?}",
            received.len(),
            status.code()
        );
        assert!(
            received.iter().all(|m| m == "under the request: true"),
            "{received:?}"
        );
        assert!((1..=3).contains(&received.len()), "{received:?}");
        assert_eq!(
            status.code(),
            Code::DeadlineExceeded,
            "trailers, not a reset: {status:?}"
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bidi_call_is_reset_when_its_context_ends() {
    bounded(async {
        let log = Log::default();
        let watch = log.clone();
        let server = support::tonic_server(
            RequestContextLayer::new(Context::background()),
            Hop::bidi(move |request: Request<tonic::Streaming<String>>| {
                watch.watch("server", &request.context());
                async move { Ok(Response::new(request.into_inner().boxed())) }
            }),
            Context::background(),
        )
        .await;
        let mut client = HopClient::new(PropagateBudgetLayer::new().layer(channel(&server)));
        let (ctx, cancel) = Context::background().named("caller").child();
        // Sends a message every 50 ms, for ever.
        let outgoing = futures::stream::unfold(0, |n| async move {
            sleep(50 * MS).await;
            Some((format!("{n}"), n + 1))
        });
        let mut echoes = ctx
            .attach(client.pipe(Request::new(outgoing)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(echoes.next().await.unwrap().unwrap(), "0");
        let left = Instant::now();
        cancel.cancel_with("the user closed the tab");
        let status = echoes.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Cancelled, "{status:?}");
        assert!(
            status.message().starts_with("canceled (context ")
                && status.message().ends_with("): the user closed the tab"),
            "{status:?}"
        );
        let seen = log.wait_ended(&["server"], Duration::from_secs(5)).await;
        let ended = seen[0].ended_at.expect("the server's context ended");
        eprintln!(
            "bidi: the server's context ended {:.1?} after the caller's",
            ended - left
        );
        assert_eq!(
            seen[0].ending.as_deref(),
            Some("canceled: the caller gave up on the request")
        );
        assert!(ended - left < 500 * MS, "{:?}", ended - left);
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_failing_after_its_budget_was_spent_answers_with_the_deadline() {
    bounded(async {
        // The handler turns a spent budget into a failure of its own, as a
        // handler whose downstream call failed would.
        let server = support::tonic_server(
            RequestContextLayer::new(Context::background()),
            Hop::unary(|request: Request<String>| async move {
                let ctx = request.context();
                let _ = ctx.done().await;
                Err(Status::internal("the database call failed"))
            }),
            Context::background(),
        )
        .await;
        let answer =
            support::raw_grpc_call(&server, "/chain.Hop/Call", &[("grpc-timeout", "100m")])
                .await
                .unwrap();
        assert_eq!(answer.grpc_status.as_deref(), Some("4"), "{answer:?}");
        server.stop().await;
    })
    .await;
}
