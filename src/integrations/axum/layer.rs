//! [`RequestContextLayer`] for axum routers: every ending a response.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum_core::response::{IntoResponse, Response};
use http::Request;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::integrations::body::{ContextBody, Ending};
use crate::integrations::server::{server_options, Refusal, Served, ServerOptions, Serving};
use crate::Context;

/// Gives each request a context with the caller's budget, and answers
/// every ending with a response; for `Router::layer`, which wants a
/// service that cannot fail.
///
/// The options, and the way a request's context ends, are those of the
/// tower [`RequestContextLayer`](crate::tower::RequestContextLayer). The
/// answers:
///
/// | the request's context | the caller gets |
/// |---|---|
/// | ran out of budget | `504 Gateway Timeout`, naming the request |
/// | ended with the server's (shutdown) | `503 Service Unavailable`, with the cause |
/// | budget header malformed, read strictly | `400 Bad Request` (by default the header is ignored) |
/// | ended before the handler answered with a 5xx | the ending's answer instead |
///
/// A response body that is still streaming when the context ends is cut
/// off with an error, which makes the server close the connection (or
/// reset the stream): the status has been sent already, and a cut body
/// must not pass for a complete one.
///
/// ```
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use tokio_ctx::axum::RequestContextLayer;
/// use tokio_ctx::Context;
///
/// let (server_ctx, _shutdown) = Context::background().named("api").child();
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(RequestContextLayer::new(server_ctx).default_budget(Duration::from_secs(5)));
/// # drop(app);
/// ```
#[derive(Debug, Clone)]
pub struct RequestContextLayer {
    options: Arc<ServerOptions>,
}

impl RequestContextLayer {
    /// Derives every request's context from `parent`, typically the
    /// server's own context; see the example on [`RequestContextLayer`].
    #[track_caller]
    pub fn new(parent: Context) -> Self {
        RequestContextLayer {
            options: Arc::new(ServerOptions::new(parent, Location::caller())),
        }
    }
}

server_options!(RequestContextLayer, "axum");

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
/// use tokio_ctx::axum::{RequestContext, RequestContextLayer};
/// use tokio_ctx::Context;
/// use tower_layer::Layer;
///
/// struct Route;
/// let service: RequestContext<Route> =
///     RequestContextLayer::new(Context::background()).layer(Route);
/// # drop(service);
/// ```
#[derive(Debug, Clone)]
pub struct RequestContext<S> {
    inner: S,
    options: Arc<ServerOptions>,
}

impl<S, B, ResBody> Service<Request<B>> for RequestContext<S>
where
    S: Service<Request<B>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body,
    http::Response<ContextBody<ResBody>>: IntoResponse,
{
    type Response = Response;
    // The inner service's: this one adds no failure of its own. A
    // router's routes cannot fail, and neither can this layer over them.
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = &mut self.inner;
        ResponseFuture {
            serving: Serving::start(&self.options, request, |request| inner.call(request)),
        }
    }
}

pin_project! {
    /// The response future of [`RequestContext`]: the handler, run under
    /// the request's context. Fails only with an error of the inner
    /// service's own, and only while the request's context lives: every
    /// ending is a response.
    ///
    /// # Cancel safety
    ///
    /// Dropping it before it resolves drops the handler and cancels the
    /// request's context as the caller leaving.
    ///
    /// # Panics
    ///
    /// Polling it again after it resolved panics.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use tokio_ctx::axum::RequestContextLayer;
    /// use tokio_ctx::Context;
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let app: Router = Router::new()
    ///     .route("/", get(|| std::future::pending::<&'static str>()))
    ///     .layer(RequestContextLayer::new(Context::background()));
    /// let request = http::Request::builder().header("connect-timeout-ms", "50").body(axum::body::Body::empty()).unwrap();
    /// let response = app.oneshot(request).await.unwrap();
    /// assert_eq!(response.status(), 504);
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
    F: Future<Output = Result<http::Response<B>, E>>,
    B: http_body::Body,
    http::Response<ContextBody<B>>: IntoResponse,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(
            match std::task::ready!(self.project().serving.poll(cx)) {
                Served::Answered(response, end) => match end.context().err() {
                    // Failed because the budget was spent: say so.
                    Some(ended) if response.status().is_server_error() => ended.into_response(),
                    _ => response
                        .map(|body| ContextBody::request(body, end, Ending::Error))
                        .into_response(),
                },
                Served::Failed(_, Some(ended)) => ended.into_response(),
                Served::Failed(failed, None) => return Poll::Ready(Err(failed)),
                Served::Ended(ended) | Served::Refused(Refusal::Ended(ended)) => {
                    ended.into_response()
                }
                Served::Refused(Refusal::Malformed(malformed)) => malformed.into_response(),
            },
        ))
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
