//! axum servers and reqwest clients over loopback: every ending an HTTP
//! answer, the request's context as an extractor, bodies under their
//! context, and the budget sent by reqwest. Real time, generous bounds,
//! every test bounded.
#![cfg(all(feature = "axum", feature = "reqwest"))]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use http::{HeaderName, HeaderValue, StatusCode};
use support::{axum_server, bounded, Log};
use tokio::time::{sleep, Instant};
use tokio_ctx::axum::{handle_error, RequestContextLayer};
use tokio_ctx::headers::{BudgetHeaders, Parsing};
use tokio_ctx::reqwest::{PropagateBudget, RequestBuilderExt};
use tokio_ctx::Context;

const MS: Duration = Duration::from_millis(1);

fn x_timeout_ms() -> HeaderName {
    HeaderName::from_static("x-timeout-ms")
}

async fn budget(ctx: Context) -> String {
    format!("{:?}", ctx.remaining())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_budget_headers_get_the_configured_answer_and_the_server_goes_on() {
    bounded(async {
        let headers = BudgetHeaders::default().millis(x_timeout_ms());
        let strict = axum_server(
            Router::new().route("/", get(budget)).layer(
                RequestContextLayer::new(Context::background())
                    .headers(headers.clone().parsing(Parsing::Strict)),
            ),
        )
        .await;
        let lenient = axum_server(
            Router::new()
                .route("/", get(budget))
                .layer(RequestContextLayer::new(Context::background()).headers(headers)),
        )
        .await;
        let http = reqwest::Client::new();
        let bad: [&[u8]; 5] = [b"soon", b"12345678901", b"-5", b"", b"\xe4\xb8\x80"];
        for header in ["connect-timeout-ms", "x-timeout-ms"] {
            for value in bad {
                let value = HeaderValue::from_bytes(value).unwrap();
                let refused = http
                    .get(strict.url())
                    .header(header, value.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(refused.status(), 400, "{header}: {value:?}");
                let message = refused.text().await.unwrap();
                assert!(
                    message.starts_with(&format!("invalid {header} ")),
                    "{message}"
                );
                let ignored = http
                    .get(lenient.url())
                    .header(header, value.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(ignored.status(), 200, "{header}: {value:?}");
                assert_eq!(ignored.text().await.unwrap(), "None");
                // Both go on serving.
                for server in [&strict, &lenient] {
                    let fine = http
                        .get(server.url())
                        .header(header, "5000")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(fine.status(), 200);
                    assert!(fine.text().await.unwrap().starts_with("Some(4."));
                }
            }
        }
        strict.stop().await;
        lenient.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_context_has_ended_before_its_answer_arrives() {
    bounded(async {
        let kept = Arc::new(Mutex::new(None::<Context>));
        let keep = Arc::clone(&kept);
        let server = axum_server(
            Router::new()
                .route(
                    "/",
                    get(move |ctx: Context| {
                        *keep.lock().unwrap() = Some(ctx);
                        async { "done" }
                    }),
                )
                .layer(RequestContextLayer::new(Context::background())),
        )
        .await;
        let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(10));
        let response = reqwest::Client::new()
            .get(server.url())
            .send_with_context(&ctx)
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "done");
        let request_ctx = kept.lock().unwrap().take().unwrap();
        let err = request_ctx
            .err()
            .expect("ended before the answer reached the client");
        assert_eq!(err.cause().unwrap().to_string(), "the request completed");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_runs_under_its_context_and_is_cut_off_with_it() {
    bounded(async {
        // A chunk every 100 ms, for ever, each saying whether it was
        // produced under the request's context.
        async fn chunks(_ctx: Context) -> Body {
            Body::from_stream(futures::stream::unfold((), |()| async {
                sleep(100 * MS).await;
                let current = Context::current().remaining().is_some();
                Some((
                    Ok::<_, std::io::Error>(format!("under the request: {current}\n")),
                    (),
                ))
            }))
        }
        let server = axum_server(
            Router::new()
                .route("/", get(chunks))
                .layer(RequestContextLayer::new(Context::background())),
        )
        .await;
        let started = Instant::now();
        let mut response = reqwest::Client::new()
            .get(server.url())
            .header("connect-timeout-ms", "350")
            .send()
            .await
            .unwrap();
        let mut lines = String::new();
        let cut = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => lines.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(None) => panic!("the body ended as if complete: {lines:?}"),
                Err(cut) => break cut,
            }
        };
        let took = started.elapsed();
        eprintln!(
            "a 350ms body: {} chunks, then cut off after {took:.0?}: {cut}",
            lines.lines().count()
        );
        assert!(
            lines.lines().all(|line| line == "under the request: true"),
            "{lines:?}"
        );
        assert!((1..=3).contains(&lines.lines().count()), "{lines:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endings_are_answered_in_http_terms() {
    bounded(async {
        let (server_ctx, shutdown) = Context::background().named("api").child();
        let server = axum_server(
            Router::new()
                // A downstream call that failed because the budget was
                // spent, answered as a gateway answers a failed upstream.
                .route(
                    "/downstream",
                    get(|ctx: Context| async move {
                        let _ = ctx.done().await;
                        (StatusCode::BAD_GATEWAY, "the inventory call failed")
                    }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        sleep(Duration::from_secs(10)).await;
                        "late"
                    }),
                )
                .layer(RequestContextLayer::new(server_ctx)),
        )
        .await;
        let http = reqwest::Client::new();
        let url = |path| format!("{}{path}", server.url());

        let spent = http
            .get(url("/downstream"))
            .header("connect-timeout-ms", "100")
            .send()
            .await
            .unwrap();
        assert_eq!(spent.status(), 504, "not the handler's 502");
        let message = spent.text().await.unwrap();
        assert!(
            message.starts_with(
                "deadline of \"request /downstream\" (100ms, set at tests/integration_axum.rs:"
            ),
            "{message}"
        );

        let waiting = tokio::spawn(http.get(url("/slow")).send());
        sleep(100 * MS).await;
        shutdown.cancel_with("shutting down for maintenance");
        let unavailable = waiting.await.unwrap().unwrap();
        assert_eq!(unavailable.status(), 503);
        let message = unavailable.text().await.unwrap();
        assert!(
            message.starts_with("canceled (context ")
                && message.ends_with("): shutting down for maintenance"),
            "{message}"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extractor_needs_the_layer_and_the_tower_layer_needs_only_handle_error() {
    bounded(async {
        let server = axum_server(
            Router::new().route("/bare", get(budget)).merge(
                Router::new()
                    .route("/slow", get(|| sleep(Duration::from_secs(10))))
                    .layer(
                        tower::ServiceBuilder::new()
                            .layer(HandleErrorLayer::new(handle_error))
                            .layer(tokio_ctx::tower::RequestContextLayer::new(
                                Context::background(),
                            )),
                    ),
            ),
        )
        .await;
        let http = reqwest::Client::new();
        let missing = http
            .get(format!("{}/bare", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 500);
        assert!(missing
            .text()
            .await
            .unwrap()
            .contains("RequestContextLayer"));
        let spent = http
            .get(format!("{}/slow", server.url()))
            .header("grpc-timeout", "50m")
            .send()
            .await
            .unwrap();
        assert_eq!(spent.status(), 504);
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_sends_the_budget_and_gives_up_with_the_context() {
    bounded(async {
        let log = Log::default();
        let watch = log.clone();
        let server = axum_server(
            Router::new()
                .route(
                    "/",
                    get(move |ctx: Context, headers: http::HeaderMap| {
                        watch.watch("server", &ctx);
                        async move {
                            let sent = |name: &str| {
                                headers.get(name).map(|v| v.to_str().unwrap().to_owned())
                            };
                            let answer = format!(
                                "{:?} {:?}",
                                sent("connect-timeout-ms"),
                                sent("x-timeout-ms")
                            );
                            if headers.contains_key("slow") {
                                sleep(Duration::from_secs(10)).await;
                            }
                            answer.into_response()
                        }
                    }),
                )
                .layer(
                    RequestContextLayer::new(Context::background())
                        .headers(BudgetHeaders::default().millis(x_timeout_ms())),
                ),
        )
        .await;
        let http = reqwest::Client::new();

        // The budget, less the margin, in the headers chosen; a tighter
        // value already there is kept.
        let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(2));
        let outbound = PropagateBudget::new()
            .headers(BudgetHeaders::none().connect().millis(x_timeout_ms()))
            .margin(500 * MS);
        let response = outbound
            .send(&ctx, http.get(server.url()).header("x-timeout-ms", "700"))
            .await
            .unwrap();
        let sent = response.text().await.unwrap();
        let (connect, millis) = sent.split_once(' ').unwrap();
        let connect: u64 = connect
            .trim_start_matches("Some(\"")
            .trim_end_matches("\")")
            .parse()
            .unwrap();
        assert!(
            (1000..=1500).contains(&connect),
            "2 s less the margin: {sent}"
        );
        assert_eq!(millis, "Some(\"700\")", "a tighter value is kept");

        // A request whose context has ended is not sent.
        let (ended, cancel) = Context::background().child();
        cancel.cancel();
        let err = http
            .get(server.url())
            .send_with_context(&ended)
            .await
            .unwrap_err();
        assert!(err.is_canceled());
        assert_eq!(log.seen().len(), 1, "never reached the server");

        // A call outliving its budget fails with the context's error, and
        // the server learns that nobody waits. (The budget goes in a header
        // this server does not read: its own deadline would race the
        // client's, and its 504 could come first.)
        let (ctx, _) = Context::background()
            .named("client")
            .child_with_timeout(200 * MS);
        let unread = BudgetHeaders::none().millis(HeaderName::from_static("x-unread"));
        let err = PropagateBudget::new()
            .headers(unread)
            .send(&ctx, http.get(server.url()).header("slow", "yes"))
            .await
            .unwrap_err();
        assert!(err.is_deadline_exceeded(), "{err}");
        assert!(
            err.to_string().starts_with("deadline of \"call 127.0.0.1:"),
            "{err}"
        );
        let seen = log.wait_all_ended(Duration::from_secs(5)).await;
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[1].ending.as_deref(),
            Some("canceled: the caller gave up on the request")
        );
        server.stop().await;
    })
    .await;
}
