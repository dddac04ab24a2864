//! [`RequestContextLayer`] for tonic servers: every ending a status.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;

use super::{ending_status, is_failure};
use crate::integrations::body::{ContextBody, Ending};
use crate::integrations::server::{server_options, Refusal, Served, ServerOptions, Serving};
use crate::tower::BoxError;
use crate::Context;

/// tonic arms its own timer from `grpc-timeout` around its call to this
/// layer (in 0.14, just after it), and answers `CANCELLED` when it fires.
/// The budget is counted from this long before the layer saw the call, so
/// that its deadline comes first whatever the order, and the caller gets
/// `DEADLINE_EXCEEDED`.
const HEAD_START: Duration = Duration::from_millis(1);

/// Gives each call a context with the caller's budget, and answers every
/// ending with a gRPC status; for `tonic::transport::Server::layer`.
///
/// The options are those of the tower
/// [`RequestContextLayer`](crate::tower::RequestContextLayer), and so is
/// the way a call's context ends. What this one adds is the answer:
///
/// | the call's context | the caller gets |
/// |---|---|
/// | ran out of budget | `DEADLINE_EXCEEDED`, naming the request |
/// | ended with the server's (shutdown) | `UNAVAILABLE`, with the shutdown's cause |
/// | budget header malformed, read strictly | `INVALID_ARGUMENT` (by default the header is ignored) |
/// | ended before the handler failed | the ending's status instead of the handler's |
///
/// An answer made here is a trailers-only response (`grpc-status` and
/// `grpc-message` in the headers), and an ending in the middle of a
/// streamed response ends it with trailers that carry the status: the
/// stream is never reset. tonic arms a timer of its own from the same
/// header around its call to this layer, and would answer `CANCELLED`;
/// this layer counts the budget from a millisecond before it saw the call,
/// so that its own deadline ends the call first. Set
/// [`max_budget`](Self::max_budget) to the value of `Server::timeout`, if
/// you use it, for the same reason.
///
/// ```no_run
/// use tokio_ctx::tonic::RequestContextLayer;
/// use tokio_ctx::Context;
/// use tonic::transport::Server;
///
/// # async fn run(routes: tonic::service::Routes) -> Result<(), tonic::transport::Error> {
/// let (server_ctx, shutdown) = Context::background().named("inventory").child();
/// Server::builder()
///     .layer(RequestContextLayer::new(server_ctx))
///     .add_routes(routes)
///     .serve("127.0.0.1:50051".parse().unwrap())
///     .await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RequestContextLayer {
    options: Arc<ServerOptions>,
}

impl RequestContextLayer {
    /// Derives every call's context from `parent`, typically the server's
    /// own context; see the example on [`RequestContextLayer`].
    #[track_caller]
    pub fn new(parent: Context) -> Self {
        let mut options = ServerOptions::new(parent, Location::caller());
        options.head_start = HEAD_START;
        RequestContextLayer {
            options: Arc::new(options),
        }
    }
}

server_options!(RequestContextLayer, "tonic");

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContext {
            inner,
            options: Arc::clone(&self.options),
        }
    }
}

/// The service made by [`RequestContextLayer`].
///
/// ```
/// use tokio_ctx::tonic::{RequestContext, RequestContextLayer};
/// use tokio_ctx::Context;
/// use tower_layer::Layer;
///
/// struct Routes;
/// let service: RequestContext<Routes> =
///     RequestContextLayer::new(Context::background()).layer(Routes);
/// # drop(service);
/// ```
#[derive(Debug, Clone)]
pub struct RequestContext<S> {
    inner: S,
    options: Arc<ServerOptions>,
}

impl<S, B, ResBody> Service<Request<B>> for RequestContext<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: http_body::Body,
{
    type Response = Response<ContextBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = &mut self.inner;
        ResponseFuture {
            serving: Serving::start(&self.options, request, |request| inner.call(request)),
        }
    }
}

pin_project! {
    /// The response future of [`RequestContext`]: the call, run under its
    /// context, and answered with a status when the context ends.
    ///
    /// Fails only with an error of the inner service's own, which tonic
    /// turns into a status as it always does (unless the call's context
    /// had ended by then: then it answers with the ending's status).
    ///
    /// # Cancel safety
    ///
    /// Dropping it before it resolves drops the call and cancels its
    /// context as the caller leaving, as the tower layer's does.
    ///
    /// # Panics
    ///
    /// Polling it again after it resolved panics.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::{pending, Pending};
    /// use std::task::{Context as TaskContext, Poll};
    ///
    /// use http::{Request, Response};
    /// use tokio_ctx::tonic::RequestContextLayer;
    /// use tokio_ctx::Context;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// struct Slow;
    ///
    /// impl Service<Request<()>> for Slow {
    ///     type Response = Response<String>;
    ///     type Error = Infallible;
    ///     type Future = Pending<Result<Response<String>, Infallible>>;
    ///
    ///     fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
    ///         Poll::Ready(Ok(()))
    ///     }
    ///
    ///     fn call(&mut self, _: Request<()>) -> Self::Future {
    ///         pending()
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut service = RequestContextLayer::new(Context::background()).layer(Slow);
    /// let request = Request::builder().uri("/pkg.Svc/Get").header("grpc-timeout", "20m").body(()).unwrap();
    /// let response = service.call(request).await.unwrap();
    /// assert_eq!(response.headers()["grpc-status"], "4"); // DEADLINE_EXCEEDED
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        serving: Serving<F>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
    E: Into<BoxError>,
{
    type Output = Result<Response<ContextBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let answer = |status: Status| Ok(status.into_http());
        Poll::Ready(match std::task::ready!(self.project().serving.poll(cx)) {
            Served::Answered(response, end) => match end.context().err() {
                Some(ended) if is_failure(&response) => answer(ending_status(&ended)),
                _ => Ok(response.map(|body| ContextBody::request(body, end, Ending::GrpcTrailers))),
            },
            Served::Failed(_, Some(ended)) => answer(ending_status(&ended)),
            Served::Failed(failed, None) => Err(failed.into()),
            Served::Ended(ended) | Served::Refused(Refusal::Ended(ended)) => {
                answer(ending_status(&ended))
            }
            Served::Refused(Refusal::Malformed(malformed)) => {
                answer(Status::invalid_argument(malformed.to_string()))
            }
        })
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
