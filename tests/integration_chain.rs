//! The budget across four services over loopback, with the real crates:
//! reqwest (HTTP) → axum ("front") → tonic ("mid") → tonic ("last"), each
//! hop spending about 20 ms before it calls the next. Real time, generous
//! bounds; every test is bounded in time and stops its servers.
#![cfg(all(feature = "tonic", feature = "axum", feature = "reqwest"))]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::extract::State;
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use http::StatusCode;
use support::{bounded, channel, Hop, HopClient, Log, Server};
use tokio::time::{sleep, Instant};
use tokio_ctx::reqwest::PropagateBudget;
use tokio_ctx::tonic::{PropagateBudgetLayer, RequestContextLayer, RequestExt};
use tokio_ctx::{CancelHandle, Context};
use tonic::{Code, Request, Response, Status};
use tower::Layer;

const MS: Duration = Duration::from_millis(1);
/// What each hop spends before it calls the next.
const WORK: Duration = Duration::from_millis(20);
/// What each gRPC client keeps back from the budget it passes on.
const MARGIN: Duration = Duration::from_millis(20);
const CALLER_LEFT: &str = "canceled: the caller gave up on the request";

type Client = HopClient<tokio_ctx::tonic::PropagateBudget<tonic::transport::Channel>>;

/// A failed call: the hop that made it, the code and the message.
type Failure = (&'static str, Code, String);

/// The status each gRPC caller got, by hop.
#[derive(Clone, Default)]
struct Statuses(Arc<Mutex<Vec<Failure>>>);

impl Statuses {
    fn record(&self, hop: &'static str, result: &Result<Response<String>, Status>) {
        if let Err(status) = result {
            let mut seen = self.0.lock().unwrap();
            seen.push((hop, status.code(), status.message().to_owned()));
        }
    }

    fn take(&self) -> Vec<Failure> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[derive(Clone, Copy)]
enum Last {
    /// Answers after its share of work.
    Fast,
    /// Takes ten seconds: longer than any budget here.
    Slow,
}

struct Chain {
    front: Server,
    mid: Server,
    last: Server,
    log: Log,
    statuses: Statuses,
    /// Ends the last hop's server context.
    _last_shutdown: CancelHandle,
}

impl Chain {
    async fn stop(self) {
        self.front.stop().await;
        self.mid.stop().await;
        self.last.stop().await;
    }
}

#[track_caller]
fn client(server: &Server) -> Client {
    HopClient::new(
        PropagateBudgetLayer::new()
            .margin(MARGIN)
            .layer(channel(server)),
    )
}

/// The HTTP answer to a failed gRPC call, as a gateway maps the codes.
fn gateway_answer(status: &Status) -> AxumResponse {
    let code = match status.code() {
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    (code, status.message().to_owned()).into_response()
}

async fn chain(last: Last, front_max: Option<Duration>) -> Chain {
    let log = Log::default();
    let statuses = Statuses::default();

    // The last hop: a stream of chunks, or one answer, fast or slow.
    let (last_ctx, last_shutdown) = Context::background().named("last server").child();
    let mut hop = {
        let log = log.clone();
        Hop::unary(move |request: Request<String>| {
            let log = log.clone();
            async move {
                let ctx = request.context();
                log.watch("last", &ctx);
                match last {
                    Last::Fast => sleep(WORK).await,
                    Last::Slow => sleep(Duration::from_secs(10)).await,
                }
                Ok(Response::new(format!("last({})", request.into_inner())))
            }
        })
    };
    let stream_log = log.clone();
    hop.stream = Arc::new(move |request| {
        let log = stream_log.clone();
        Box::pin(async move {
            log.watch("last", &request.context());
            let chunks = futures::stream::unfold(0, |n| async move {
                sleep(10 * MS).await;
                Some((Ok(format!("chunk {n}\n")), n + 1))
            });
            Ok(Response::new(chunks.boxed()))
        })
    });
    let last =
        support::tonic_server(RequestContextLayer::new(last_ctx.clone()), hop, last_ctx).await;

    // The middle hop: its share of work, then the last hop.
    let to_last = client(&last);
    let (mid_log, mid_statuses) = (log.clone(), statuses.clone());
    let mut hop = Hop::unary(move |request: Request<String>| {
        let (log, statuses, mut to_last) = (mid_log.clone(), mid_statuses.clone(), to_last.clone());
        async move {
            log.watch("mid", &request.context());
            sleep(WORK).await;
            let reply = to_last.call(Request::new(request.into_inner())).await;
            statuses.record("mid", &reply);
            Ok(Response::new(format!("mid({})", reply?.into_inner())))
        }
    });
    let to_last = client(&last);
    let stream_log = log.clone();
    hop.stream = Arc::new(move |request| {
        let (log, mut to_last) = (stream_log.clone(), to_last.clone());
        Box::pin(async move {
            log.watch("mid", &request.context());
            let upstream = to_last.stream(Request::new(request.into_inner())).await?;
            Ok(Response::new(upstream.into_inner().boxed()))
        })
    });
    let mid = support::tonic_server(
        RequestContextLayer::new(Context::background()),
        hop,
        Context::background(),
    )
    .await;

    // The front: axum, calling the middle hop over gRPC.
    #[derive(Clone)]
    struct Front {
        mid: Client,
        log: Log,
        statuses: Statuses,
    }
    async fn call(ctx: Context, State(front): State<Front>) -> AxumResponse {
        front.log.watch("front", &ctx);
        sleep(WORK).await;
        let mut mid = front.mid.clone();
        let reply = mid.call(Request::new("front".to_owned())).await;
        front.statuses.record("front", &reply);
        match reply {
            Ok(reply) => reply.into_inner().into_response(),
            Err(status) => gateway_answer(&status),
        }
    }
    async fn stream(ctx: Context, State(front): State<Front>) -> AxumResponse {
        front.log.watch("front", &ctx);
        let mut mid = front.mid.clone();
        match mid.stream(Request::new("front".to_owned())).await {
            Ok(chunks) => AxumBody::from_stream(chunks.into_inner()).into_response(),
            Err(status) => gateway_answer(&status),
        }
    }
    let mut layer = tokio_ctx::axum::RequestContextLayer::new(Context::background());
    if let Some(max) = front_max {
        layer = layer.max_budget(max);
    }
    let router = Router::new()
        .route("/call", get(call))
        .route("/stream", get(stream))
        .with_state(Front {
            mid: client(&mid),
            log: log.clone(),
            statuses: statuses.clone(),
        })
        .layer(layer);
    let front = support::axum_server(router).await;

    Chain {
        front,
        mid,
        last,
        log,
        statuses,
        _last_shutdown: last_shutdown,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hop_sees_the_budget_shrink_by_what_was_spent_and_the_margin() {
    bounded(async {
        let chain = chain(Last::Fast, None).await;
        let http = reqwest::Client::new();
        let outbound = PropagateBudget::new().margin(MARGIN);
        let (caller, _) = Context::background()
            .named("http caller")
            .child_with_timeout(800 * MS);
        let response = outbound
            .send(&caller, http.get(format!("{}/call", chain.front.url())))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "mid(last(front))");

        let budget = |hop| chain.log.of(hop).budget.expect("a budget");
        let (front, mid, last) = (budget("front"), budget("mid"), budget("last"));
        eprintln!(
            "budget seen: caller 800ms -> front {front:.1?} -> mid {mid:.1?} -> last {last:.1?}"
        );
        assert!(front <= 800 * MS - MARGIN, "{front:?}");
        assert!(mid <= front - WORK - MARGIN, "{front:?} then {mid:?}");
        assert!(last <= mid - WORK - MARGIN, "{mid:?} then {last:?}");
        // Only what was spent and the margins: generous, for a busy machine.
        assert!(
            last >= 800 * MS - 3 * MARGIN - 2 * WORK - 300 * MS,
            "{last:?}"
        );
        chain.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_is_deadline_exceeded_and_504_every_time() {
    bounded(async {
        let chain = chain(Last::Slow, None).await;
        let http = reqwest::Client::new();
        // The HTTP caller keeps back enough for the 504 to reach it before
        // its own budget is spent, even on a busy machine.
        let outbound = PropagateBudget::new().margin(150 * MS);
        let mut tally = std::collections::BTreeMap::<String, usize>::new();
        for run in 0..20 {
            let (caller, _) = Context::background()
                .named("http caller")
                .child_with_timeout(300 * MS);
            let started = Instant::now();
            let response = outbound
                .send(&caller, http.get(format!("{}/call", chain.front.url())))
                .await
                .unwrap_or_else(|e| panic!("run {run}: the HTTP caller got {e} instead of a 504"));
            let status = response.status();
            let message = response.text().await.unwrap();
            let took = started.elapsed();
            assert_eq!(status, 504, "run {run}: {message}");
            assert!(
                message.starts_with("deadline of \"") && message.ends_with("exceeded"),
                "run {run}: {message}"
            );
            assert!(took < 300 * MS, "run {run}: the 504 came after {took:?}");
            *tally.entry(format!("http {status}")).or_default() += 1;

            // Every gRPC caller on the way got DEADLINE_EXCEEDED, naming
            // the context whose limit fired.
            let statuses = chain.statuses.take();
            assert_eq!(statuses.len(), 2, "run {run}: {statuses:?}");
            for (hop, code, message) in statuses {
                assert_eq!(code, Code::DeadlineExceeded, "run {run}, {hop}: {message}");
                assert!(
                    message.starts_with("deadline of \""),
                    "run {run}, {hop}: {message}"
                );
                let name = message.split('"').nth(1).unwrap_or("").to_owned();
                *tally
                    .entry(format!("{hop}: {code:?} naming {name:?}"))
                    .or_default() += 1;
            }
        }
        eprintln!("20 runs: {tally:#?}");
        chain.stop().await;
    })
    .await;
}

/// Asserts that every hop's context was canceled as left by its caller,
/// with the task it started, soon after `left`.
fn assert_all_left(seen: &[support::Seen], left: Instant) {
    for hop in ["front", "mid", "last"] {
        let seen = seen
            .iter()
            .find(|seen| seen.hop == hop)
            .unwrap_or_else(|| panic!("{hop} saw no request"));
        let ended = seen
            .ended_at
            .unwrap_or_else(|| panic!("{hop}'s context did not end"));
        let stopped = seen
            .task_stopped_at
            .unwrap_or_else(|| panic!("{hop}'s task did not stop"));
        let after = ended.saturating_duration_since(left);
        eprintln!(
            "{hop}: {:?} {after:.1?} after the caller left; its task {:.1?}",
            seen.ending.as_deref().unwrap_or(""),
            stopped.saturating_duration_since(left)
        );
        assert_eq!(seen.ending.as_deref(), Some(CALLER_LEFT), "{hop}");
        assert!(
            after <= 50 * MS,
            "{hop} ended {after:?} after the caller left"
        );
        assert!(
            stopped.saturating_duration_since(left) <= 50 * MS,
            "{hop}'s task"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_hangs_up_cancels_every_hop() {
    bounded(async {
        let chain = chain(Last::Slow, None).await;
        let (caller, hang_up) = Context::background()
            .named("http caller")
            .child_with_timeout(Duration::from_secs(10));
        let url = format!("{}/call", chain.front.url());
        let call = tokio::spawn(async move {
            PropagateBudget::new()
                .send(&caller, reqwest::Client::new().get(url))
                .await
        });
        // Hang up at 300 ms, once the last hop has the request.
        let started = Instant::now();
        while chain.log.seen().len() < 3 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "every hop has it"
            );
            sleep(5 * MS).await;
        }
        tokio::time::sleep_until(started + 300 * MS).await;
        let left = Instant::now();
        hang_up.cancel_with("the user hung up");
        let err = call.await.unwrap().unwrap_err();
        assert!(err.is_canceled(), "{err}");
        let seen = chain
            .log
            .wait_ended(&["front", "mid", "last"], 5 * 1000 * MS)
            .await;
        assert_all_left(&seen, left);
        chain.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_hangs_up_in_the_middle_of_a_body_cancels_every_hop() {
    bounded(async {
        let chain = chain(Last::Fast, None).await;
        let (caller, hang_up) = Context::background()
            .named("http caller")
            .child_with_timeout(Duration::from_secs(10));
        let response = PropagateBudget::new()
            .send(
                &caller,
                reqwest::Client::new().get(format!("{}/stream", chain.front.url())),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let reading = tokio::spawn(caller.run(async move {
            let mut response = response;
            let mut chunks = 0;
            while let Some(chunk) = response.chunk().await.unwrap() {
                chunks += chunk.iter().filter(|&&b| b == b'\n').count();
            }
            chunks
        }));
        sleep(300 * MS).await;
        let left = Instant::now();
        hang_up.cancel_with("the user hung up");
        assert!(reading.await.unwrap().is_err(), "stopped by the hang-up");
        let seen = chain
            .log
            .wait_ended(&["front", "mid", "last"], 5 * 1000 * MS)
            .await;
        assert_all_left(&seen, left);
        chain.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_cap_is_what_its_handler_and_its_downstream_see() {
    bounded(async {
        let chain = chain(Last::Fast, Some(200 * MS)).await;
        let (caller, _) = Context::background()
            .named("http caller")
            .child_with_timeout(800 * MS);
        let response = PropagateBudget::new()
            .send(
                &caller,
                reqwest::Client::new().get(format!("{}/call", chain.front.url())),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let front = chain.log.of("front").budget.unwrap();
        let mid = chain.log.of("mid").budget.unwrap();
        eprintln!("an 800ms header, a 200ms cap: front sees {front:.1?}, mid is told {mid:.1?}");
        assert!(front <= 200 * MS, "{front:?}");
        assert!(mid < front - WORK, "{mid:?}");
        chain.stop().await;
    })
    .await;
}
