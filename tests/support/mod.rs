//! Real servers and clients for the integration tests: a gRPC service
//! written by hand (no `protoc`: its messages are UTF-8 strings), tonic and
//! axum servers on 127.0.0.1 port 0 that stop when dropped, and a log of
//! how each hop's context ended.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut};
use futures::stream::BoxStream;
use http::uri::PathAndQuery;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_ctx::Context;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::NamedService;
use tonic::{Request, Response, Status, Streaming};

/// How long any one test may take before it fails: generous, for a loaded
/// two-core machine.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs a test body with a bound on its duration.
pub async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test took too long")
}

// ------------------------------------------------------------------ codec

/// Messages are strings, sent as their UTF-8 bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Text;

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

// ---------------------------------------------------------------- service

pub type Unary = Arc<
    dyn Fn(
            Request<String>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<String>, Status>> + Send>>
        + Send
        + Sync,
>;
pub type Replies = BoxStream<'static, Result<String, Status>>;
pub type ServerStream = Arc<
    dyn Fn(
            Request<String>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<Replies>, Status>> + Send>>
        + Send
        + Sync,
>;
pub type Bidi = Arc<
    dyn Fn(
            Request<Streaming<String>>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<Replies>, Status>> + Send>>
        + Send
        + Sync,
>;

/// The service `chain.Hop`: `Call` (unary), `Stream` (server streaming)
/// and `Pipe` (bidi streaming), each answered by a closure.
#[derive(Clone)]
pub struct Hop {
    pub call: Unary,
    pub stream: ServerStream,
    pub pipe: Bidi,
}

impl Default for Hop {
    fn default() -> Self {
        Hop {
            call: Arc::new(|request| {
                Box::pin(async move { Ok(Response::new(request.into_inner())) })
            }),
            stream: Arc::new(|_| Box::pin(async { Err(Status::unimplemented("Stream")) })),
            pipe: Arc::new(|_| Box::pin(async { Err(Status::unimplemented("Pipe")) })),
        }
    }
}

impl Hop {
    pub fn unary<F, Fut>(f: F) -> Hop
    where
        F: Fn(Request<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<String>, Status>> + Send + 'static,
    {
        Hop {
            call: Arc::new(move |request| Box::pin(f(request))),
            ..Hop::default()
        }
    }

    pub fn streaming<F, Fut>(f: F) -> Hop
    where
        F: Fn(Request<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<Replies>, Status>> + Send + 'static,
    {
        Hop {
            stream: Arc::new(move |request| Box::pin(f(request))),
            ..Hop::default()
        }
    }

    pub fn bidi<F, Fut>(f: F) -> Hop
    where
        F: Fn(Request<Streaming<String>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<Replies>, Status>> + Send + 'static,
    {
        Hop {
            pipe: Arc::new(move |request| Box::pin(f(request))),
            ..Hop::default()
        }
    }
}

impl NamedService for Hop {
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
            let mut grpc = tonic::server::Grpc::new(Text);
            Ok(match request.uri().path() {
                "/chain.Hop/Call" => {
                    let call = hop.call.clone();
                    grpc.unary(tower::service_fn(move |r| call(r)), request)
                        .await
                }
                "/chain.Hop/Stream" => {
                    let stream = hop.stream.clone();
                    grpc.server_streaming(tower::service_fn(move |r| stream(r)), request)
                        .await
                }
                "/chain.Hop/Pipe" => {
                    let pipe = hop.pipe.clone();
                    grpc.streaming(tower::service_fn(move |r| pipe(r)), request)
                        .await
                }
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

/// A client of `chain.Hop` over any gRPC transport.
#[derive(Clone)]
pub struct HopClient<T> {
    grpc: tonic::client::Grpc<T>,
}

impl<T> HopClient<T>
where
    T: tonic::client::GrpcService<Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    pub fn new(transport: T) -> Self {
        HopClient {
            grpc: tonic::client::Grpc::new(transport),
        }
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("not ready: {}", e.into())))
    }

    pub async fn call(&mut self, request: Request<String>) -> Result<Response<String>, Status> {
        self.ready().await?;
        self.grpc
            .unary(request, PathAndQuery::from_static("/chain.Hop/Call"), Text)
            .await
    }

    pub async fn stream(
        &mut self,
        request: Request<String>,
    ) -> Result<Response<Streaming<String>>, Status> {
        self.ready().await?;
        self.grpc
            .server_streaming(
                request,
                PathAndQuery::from_static("/chain.Hop/Stream"),
                Text,
            )
            .await
    }

    pub async fn pipe<S>(
        &mut self,
        request: Request<S>,
    ) -> Result<Response<Streaming<String>>, Status>
    where
        S: futures::Stream<Item = String> + Send + 'static,
    {
        self.ready().await?;
        self.grpc
            .streaming(request, PathAndQuery::from_static("/chain.Hop/Pipe"), Text)
            .await
    }
}

// ---------------------------------------------------------------- servers

/// A server running on 127.0.0.1; shut down (and then aborted) when dropped.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Asks the server to stop and waits until it has.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// The server's task, to see it finish on its own.
    pub fn take_task(&mut self) -> JoinHandle<()> {
        self.task.take().expect("the task")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves `hop` with tonic behind `layer`; the server also stops when
/// `stop_when` ends (a server context, typically).
pub async fn tonic_server<L>(layer: L, hop: Hop, stop_when: Context) -> Server
where
    L: tower::Layer<tonic::service::Routes> + Clone + Send + 'static,
    L::Service: tower::Service<
            http::Request<Body>,
            Response = http::Response<tokio_ctx::tower::ContextBody<Body>>,
        > + Clone
        + Send
        + 'static,
    <L::Service as tower::Service<http::Request<Body>>>::Future: Send,
    <L::Service as tower::Service<http::Request<Body>>>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let task = tokio::spawn(async move {
        let signal = async move {
            tokio::select! {
                _ = stop => {}
                _ = stop_when.done() => {}
            }
        };
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(hop)
            .serve_with_incoming_shutdown(incoming, signal)
            .await
            .unwrap();
    });
    Server {
        addr,
        shutdown: Some(shutdown),
        task: Some(task),
    }
}

/// Serves `router` with axum.
pub async fn axum_server(router: axum::Router) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.await;
            })
            .await
            .unwrap();
    });
    Server {
        addr,
        shutdown: Some(shutdown),
        task: Some(task),
    }
}

/// A channel to `server`, connected lazily.
pub fn channel(server: &Server) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect_lazy()
}

// ------------------------------------------------------------------- log

/// What a hop saw: the budget at the start, and how its context ended.
#[derive(Debug, Clone)]
pub struct Seen {
    pub hop: &'static str,
    pub budget: Option<Duration>,
    pub ended_at: Option<Instant>,
    pub ending: Option<String>,
    /// When a task the hop spawned under its context saw it end.
    pub task_stopped_at: Option<Instant>,
}

/// Records when the task holding it stopped.
struct Stopped {
    log: Log,
    index: usize,
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Ok(mut seen) = self.log.seen.lock() {
            seen[self.index].task_stopped_at = Some(Instant::now());
        }
    }
}

/// A log of every hop's context, shared by the servers of a test.
#[derive(Clone, Default)]
pub struct Log {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Log {
    /// Records `ctx`'s budget now and its ending when it comes, and starts
    /// a task under it that records when it stopped.
    pub fn watch(&self, hop: &'static str, ctx: &Context) {
        let index = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(Seen {
                hop,
                budget: ctx.remaining(),
                ended_at: None,
                ending: None,
                task_stopped_at: None,
            });
            seen.len() - 1
        };
        let log = self.clone();
        let watched = ctx.clone();
        tokio::spawn(async move {
            let err = watched.done().await;
            let mut seen = log.seen.lock().unwrap();
            seen[index].ended_at = Some(Instant::now());
            seen[index].ending = Some(match err.cause() {
                Some(cause) => format!("canceled: {cause}"),
                None => err.to_string(),
            });
        });
        // Work started under the request: it stops with it, and says when
        // as it is dropped.
        let stopped = Stopped {
            log: self.clone(),
            index,
        };
        let _detached = ctx
            .spawn(move |_ctx| async move {
                let _stopped = stopped;
                std::future::pending::<()>().await
            })
            .detach();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn of(&self, hop: &str) -> Seen {
        self.seen()
            .into_iter()
            .find(|seen| seen.hop == hop)
            .unwrap_or_else(|| panic!("{hop} saw no request"))
    }

    /// Waits until every context recorded has ended, or the limit passes.
    pub async fn wait_all_ended(&self, limit: Duration) -> Vec<Seen> {
        let until = Instant::now() + limit;
        loop {
            let seen = self.seen();
            if seen.iter().all(|s| s.ended_at.is_some()) || Instant::now() >= until {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every hop named has a recorded ending (and its task
    /// stopped), or the limit passes.
    pub async fn wait_ended(&self, hops: &[&str], limit: Duration) -> Vec<Seen> {
        let until = Instant::now() + limit;
        loop {
            let seen = self.seen();
            let all = hops.iter().all(|hop| {
                seen.iter()
                    .any(|s| s.hop == *hop && s.ended_at.is_some() && s.task_stopped_at.is_some())
            });
            if all || Instant::now() >= until {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

// ------------------------------------------------------------ raw client

/// What a gRPC call answered, as it came off the wire.
#[derive(Debug)]
pub struct RawAnswer {
    pub http_status: http::StatusCode,
    /// `grpc-status` and `grpc-message`, from the headers of a
    /// trailers-only answer or else from the trailers.
    pub grpc_status: Option<String>,
    pub grpc_message: Option<String>,
}

/// Calls `path` on `server` with a bare HTTP/2 client, which arms no timer
/// of its own (tonic's channel would, from `grpc-timeout`): what the
/// server answers is what comes back. An error is a reset stream or a
/// broken connection.
pub async fn raw_grpc_call(
    server: &Server,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<RawAnswer, Box<dyn std::error::Error + Send + Sync>> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    // One empty message: no compression, length zero.
    let frame = bytes::Bytes::from_static(&[0, 0, 0, 0, 0]);
    let mut request = http::Request::post(format!("{}{path}", server.url()))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(http_body_util::Full::new(frame))?;
    let response = client.request(request).await?;
    let http_status = response.status();
    let head = response.headers().clone();
    let body = response.into_body().collect().await?;
    let trailers = body.trailers().cloned().unwrap_or_default();
    let read = |name: &str| {
        head.get(name)
            .or_else(|| trailers.get(name))
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    Ok(RawAnswer {
        http_status,
        grpc_status: read("grpc-status"),
        grpc_message: read("grpc-message").map(|m| percent_decode(&m)),
    })
}

/// grpc-message is percent-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
