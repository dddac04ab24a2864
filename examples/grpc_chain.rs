//! A request's budget across four services over real connections:
//! reqwest → axum ("front") → tonic ("mid") → tonic ("last"), each on
//! 127.0.0.1, each hop spending 20 ms before it calls the next.
//!
//! Every hop prints the budget it was given and, when its request is over,
//! how its context ended. Three cases run:
//!
//! 1. an 800 ms budget, and every hop answers: the budget shrinks at each
//!    hop by what the hop before spent and a 20 ms margin, and each
//!    request's context ends as its response completes;
//! 2. a 300 ms budget, and the last hop is slow: every gRPC caller gets
//!    `DEADLINE_EXCEEDED` and the HTTP caller a `504`, each naming the
//!    context whose limit fired;
//! 3. a 10 s budget, and the HTTP caller hangs up after 150 ms: every
//!    hop's context is canceled at once, as left by its caller.
//!
//! The gRPC service is written by hand (its messages are UTF-8 strings),
//! so that nothing needs `protoc`.
//!
//! ```text
//! cargo run --example grpc_chain --features tonic,axum,reqwest
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::get;
use bytes::{Buf, BufMut};
use http::uri::PathAndQuery;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::time::{sleep, Instant};
use tokio_ctx::reqwest::PropagateBudget;
use tokio_ctx::tonic::{PropagateBudgetLayer, RequestContextLayer, RequestExt};
use tokio_ctx::Context;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Request, Response, Status};
use tower::Layer;

const MS: Duration = Duration::from_millis(1);
const WORK: Duration = Duration::from_millis(20);
const MARGIN: Duration = Duration::from_millis(20);

/// When the current case started.
static CASE_STARTED: Mutex<Option<Instant>> = Mutex::new(None);

/// Prints what `hop` did, and when.
fn say(hop: &str, what: String) {
    let case = CASE_STARTED
        .lock()
        .map(|started| *started)
        .unwrap_or_default();
    let at = case.map(|started| started.elapsed()).unwrap_or_default();
    println!("  {:>4} ms  {hop:<6} {what}", at.as_millis());
}

#[tokio::main]
async fn main() {
    // The last hop is slow for calls that say so.
    let last = serve_grpc(Hop {
        name: "last",
        next: None,
    })
    .await;
    let mid = serve_grpc(Hop {
        name: "mid",
        next: Some(client(last)),
    })
    .await;
    let front = serve_http(Front { mid: client(mid) }).await;

    let http = reqwest::Client::new();
    // The HTTP caller keeps back enough for the front's answer to reach it.
    let outbound = PropagateBudget::new().margin(100 * MS);
    let cases = [
        (
            "1. an 800 ms budget, every hop answers",
            800 * MS,
            "fast",
            None,
        ),
        (
            "2. a 300 ms budget, the last hop is slow",
            300 * MS,
            "slow",
            None,
        ),
        (
            "3. a 10 s budget, the caller hangs up after 150 ms",
            10_000 * MS,
            "slow",
            Some(150 * MS),
        ),
    ];
    for (title, budget, pace, hang_up_after) in cases {
        println!("\n{title}");
        if let Ok(mut started) = CASE_STARTED.lock() {
            *started = Some(Instant::now());
        }
        let (caller, hang_up) = Context::background()
            .named("http caller")
            .child_with_timeout(budget);
        if let Some(after) = hang_up_after {
            tokio::spawn(async move {
                sleep(after).await;
                hang_up.cancel_with("the user hung up");
            });
        }
        let url = format!("http://{front}/?pace={pace}");
        match outbound.send(&caller, http.get(url)).await {
            Ok(response) => {
                let status = response.status();
                let body = caller.run(response.text()).await;
                let body = body.map_or_else(|e| e.to_string(), |b| b.unwrap_or_default());
                say("caller", format!("got {status}: {body}"));
            }
            Err(err) => say("caller", format!("gave up: {err}")),
        }
        // Let every hop report how its request ended.
        sleep(100 * MS).await;
    }
}

/// Prints a hop's budget now, and how its context ended when it does.
fn watch(hop: &'static str, ctx: &Context) {
    let left = ctx
        .remaining()
        .map_or_else(|| "no budget".to_owned(), |d| format!("{d:.1?} left"));
    say(hop, format!("has the request, {left}"));
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let ended = ctx.done().await;
        say(hop, format!("request over: {ended}"));
    });
}

type Client = tonic::client::Grpc<tokio_ctx::tonic::PropagateBudget<tonic::transport::Channel>>;

/// A client of the hop at `addr` whose calls carry the caller's budget,
/// less the margin.
fn client(addr: SocketAddr) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid address")
        .connect_lazy();
    tonic::client::Grpc::new(PropagateBudgetLayer::new().margin(MARGIN).layer(channel))
}

async fn call_next(client: &Client, message: String) -> Result<String, Status> {
    let mut client = client.clone();
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::from_static("/chain.Hop/Call");
    let reply = client.unary(Request::new(message), path, Text).await?;
    Ok(reply.into_inner())
}

// ------------------------------------------------------------ the front

#[derive(Clone)]
struct Front {
    mid: Client,
}

async fn front(
    ctx: Context,
    State(front): State<Front>,
    query: axum::extract::RawQuery,
) -> HttpResponse {
    watch("front", &ctx);
    sleep(WORK).await;
    let pace = query.0.unwrap_or_default();
    match call_next(&front.mid, pace).await {
        Ok(reply) => reply.into_response(),
        Err(status) => {
            say("front", format!("mid answered {:?}", status.code()));
            // What a gateway answers for a failed upstream call.
            let code = match status.code() {
                Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
                Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            };
            (code, status.message().to_owned()).into_response()
        }
    }
}

async fn serve_http(state: Front) -> SocketAddr {
    let router = axum::Router::new()
        .route("/", get(front))
        .with_state(state)
        .layer(tokio_ctx::axum::RequestContextLayer::new(
            Context::background(),
        ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

// ------------------------------------------------------------ gRPC hops

/// A hop of the `chain.Hop` service: `Call` does its share of work, then
/// calls the next hop, if any.
#[derive(Clone)]
struct Hop {
    name: &'static str,
    next: Option<Client>,
}

impl Hop {
    async fn call(self, request: Request<String>) -> Result<Response<String>, Status> {
        watch(self.name, &request.context());
        let pace = request.into_inner();
        match &self.next {
            Some(next) => {
                sleep(WORK).await;
                match call_next(next, pace).await {
                    Ok(reply) => Ok(Response::new(format!("{} <- {reply}", self.name))),
                    Err(status) => {
                        say(self.name, format!("next hop: {:?}", status.code()));
                        Err(status)
                    }
                }
            }
            None if pace.contains("slow") => {
                sleep(Duration::from_secs(10)).await;
                Ok(Response::new("late".to_owned()))
            }
            None => {
                sleep(WORK).await;
                Ok(Response::new(self.name.to_owned()))
            }
        }
    }
}

impl tonic::server::NamedService for Hop {
    const NAME: &'static str = "chain.Hop";
}

impl tower::Service<http::Request<Body>> for Hop {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let hop = self.clone();
        Box::pin(async move {
            if request.uri().path() != "/chain.Hop/Call" {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let unary = tower::service_fn(move |r| hop.clone().call(r));
            Ok(tonic::server::Grpc::new(Text).unary(unary, request).await)
        })
    }
}

async fn serve_grpc(hop: Hop) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let (server, _shutdown) = Context::background().named(hop.name).child();
    let layer = RequestContextLayer::new(server);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(hop)
            .serve_with_incoming(incoming)
            .await
    });
    addr
}

/// Messages are strings, sent as their UTF-8 bytes.
#[derive(Debug, Clone, Copy)]
struct Text;

impl Codec for Text {
    type Encode = String;
    type Decode = String;
    type Encoder = Text;
    type Decoder = Text;

    fn encoder(&mut self) -> Text {
        Text
    }

    fn decoder(&mut self) -> Text {
        Text
    }
}

impl Encoder for Text {
    type Item = String;
    type Error = Status;

    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for Text {
    type Item = String;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Status::invalid_argument("not UTF-8"))
    }
}
