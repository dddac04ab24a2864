//! [`PropagateBudgetLayer`] for tonic clients: the budget on every call, and
//! the context's end as the call's status.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tonic::body::Body;
use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;

use super::is_failure;
use crate::headers::BudgetHeaders;
use crate::integrations::body::{ContextBody, Ending};
use crate::integrations::client::{context_of, target_of, Called, Calling, ClientOptions};
use crate::tower::BoxError;

/// Carries the caller's budget on every call made through a tonic
/// `Channel` (or any `GrpcService`), and fails a call whose context ended
/// with the context's status.
///
/// The context is the one [set on the request](super::RequestExt::set_context),
/// else [`Context::current`](crate::Context::current) when the call is
/// made: inside a handler behind
/// [`RequestContextLayer`](super::RequestContextLayer), the handler's
/// call. Its remaining budget, less the [margin](Self::margin), goes into
/// `grpc-timeout` (a shorter one set with `Request::set_timeout` is kept),
/// and the call runs under a context with exactly that budget.
///
/// When that context ends, the call fails with `DEADLINE_EXCEEDED` (or
/// `CANCELLED`, for a cancellation) and the context's message, whichever
/// timer fired first: the channel arms its own timer from the header, and
/// would answer `CANCELLED "Timeout expired"`; the call's context is
/// derived before the channel reads the header and never ends later, and
/// it decides. A call whose context has already ended is not sent. The
/// request stream of a client- or bidi-streaming call is reset (HTTP/2
/// `CANCEL`) when the context ends, and the response stream then ends with
/// the context's status.
///
/// ```no_run
/// use std::time::Duration;
/// use tokio_ctx::tonic::PropagateBudgetLayer;
/// use tonic::transport::Endpoint;
/// use tower_layer::Layer;
///
/// # async fn run() -> Result<(), tonic::transport::Error> {
/// let channel = Endpoint::from_static("http://127.0.0.1:50051").connect().await?;
/// let channel = PropagateBudgetLayer::new()
///     .margin(Duration::from_millis(5))
///     .layer(channel);
/// // let mut client = InventoryClient::new(channel);
/// # drop(channel);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PropagateBudgetLayer {
    options: ClientOptions,
}

impl Default for PropagateBudgetLayer {
    #[track_caller]
    fn default() -> Self {
        PropagateBudgetLayer::new()
    }
}

impl PropagateBudgetLayer {
    /// A layer that writes `grpc-timeout` with no margin; see the example on
    /// [`PropagateBudgetLayer`]. Errors of the calls' contexts point at the
    /// line that called this.
    #[track_caller]
    pub fn new() -> Self {
        PropagateBudgetLayer {
            options: ClientOptions::new(BudgetHeaders::none().grpc(), Location::caller()),
        }
    }

    /// Which headers carry the budget; `grpc-timeout` unless set (add
    /// `connect-timeout-ms` for a peer that speaks Connect).
    ///
    /// ```
    /// use tokio_ctx::headers::BudgetHeaders;
    /// use tokio_ctx::tonic::PropagateBudgetLayer;
    ///
    /// let layer = PropagateBudgetLayer::new().headers(BudgetHeaders::none().grpc().connect());
    /// # drop(layer);
    /// ```
    pub fn headers(mut self, headers: BudgetHeaders) -> Self {
        self.options.headers = headers;
        self
    }

    /// Time kept back from the budget the next service is told, so that
    /// its deadline comes first and its `DEADLINE_EXCEEDED` reaches the
    /// caller before the caller's own budget is spent, leaving it that
    /// long to answer. None by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::tonic::PropagateBudgetLayer;
    ///
    /// let layer = PropagateBudgetLayer::new().margin(Duration::from_millis(5));
    /// # drop(layer);
    /// ```
    pub fn margin(mut self, margin: Duration) -> Self {
        self.options.margin = margin;
        self
    }
}

impl<S> Layer<S> for PropagateBudgetLayer {
    type Service = PropagateBudget<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateBudget {
            inner,
            options: self.options.clone(),
        }
    }
}

/// The service made by [`PropagateBudgetLayer`]; a `GrpcService` for tonic's
/// generated clients.
///
/// ```
/// use tokio_ctx::tonic::{PropagateBudget, PropagateBudgetLayer};
/// use tower_layer::Layer;
///
/// struct Channel;
/// let client: PropagateBudget<Channel> = PropagateBudgetLayer::new().layer(Channel);
/// # drop(client);
/// ```
#[derive(Debug, Clone)]
pub struct PropagateBudget<S> {
    inner: S,
    options: ClientOptions,
}

impl<S, ResBody> Service<Request<Body>> for PropagateBudget<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ContextBody<ResBody>>;
    type Error = BoxError;
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let ctx = context_of(&request);
        let target = target_of(request.uri());
        let call = self.options.prepare(ctx, &target, request.headers_mut());
        if let Ok(call) = &call {
            // The request stream is reset when the call's context ends.
            let ctx = call.ctx.clone();
            request =
                request.map(|body| Body::new(ContextBody::borrowed(body, ctx, Ending::GrpcReset)));
        }
        let inner = &mut self.inner;
        CallFuture {
            calling: Calling::start(call, || inner.call(request)),
        }
    }
}

pin_project! {
    /// The response future of [`PropagateBudget`].
    ///
    /// Resolves to the response, whose body is read under the call's
    /// context and ends with its status if the context ends first; or to
    /// a boxed `tonic::Status`: the context's (`DEADLINE_EXCEEDED`,
    /// `CANCELLED`) when it ended, first or while the channel was failing,
    /// else whatever the channel failed with.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the call, which resets its stream.
    ///
    /// # Panics
    ///
    /// Polling it again after it resolved panics.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::{pending, Pending};
    /// use std::task::{Context as TaskContext, Poll};
    /// use std::time::Duration;
    ///
    /// use http::{Request, Response};
    /// use tokio_ctx::tonic::PropagateBudgetLayer;
    /// use tokio_ctx::Context;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// struct Slow;
    ///
    /// impl Service<Request<tonic::body::Body>> for Slow {
    ///     type Response = Response<tonic::body::Body>;
    ///     type Error = Infallible;
    ///     type Future = Pending<Result<Self::Response, Infallible>>;
    ///
    ///     fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
    ///         Poll::Ready(Ok(()))
    ///     }
    ///
    ///     fn call(&mut self, _: Request<tonic::body::Body>) -> Self::Future {
    ///         pending()
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut client = PropagateBudgetLayer::new().layer(Slow);
    /// let (ctx, _) = Context::background().named("checkout").child_with_timeout(Duration::from_millis(30));
    /// let call = ctx.attach(async { client.call(Request::new(tonic::body::Body::empty())).await });
    /// let err = call.await.unwrap_err();
    /// let status = err.downcast_ref::<tonic::Status>().unwrap();
    /// assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct CallFuture<F> {
        #[pin]
        calling: Calling<F>,
    }
}

impl<F, B, E> Future for CallFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ContextBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Poll::Ready(match std::task::ready!(self.project().calling.poll(cx)) {
            Called::Answered(response, ctx, handle) => {
                match ctx.err() {
                    // A failure with the context ended is the context's end.
                    Some(ended) if is_failure(&response) => Err(Box::new(Status::from(ended))),
                    _ => Ok(response
                        .map(|body| ContextBody::call(body, ctx, handle, Ending::GrpcStatus))),
                }
            }
            Called::Failed(failed) => Err(failed.into()),
            Called::Ended(ended) => Err(Box::new(Status::from(ended))),
        })
    }
}

impl<F> std::fmt::Debug for CallFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFuture").finish_non_exhaustive()
    }
}
