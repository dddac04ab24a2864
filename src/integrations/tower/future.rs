//! The response futures of the tower layers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::{BoxError, ContextBody};
use crate::integrations::body::Ending;
use crate::integrations::client::{Called, Calling};
use crate::integrations::server::{Refusal, Served, Serving};

pin_project! {
    /// The response future of [`RequestContext`](super::RequestContext):
    /// the inner call, run under the request's context.
    ///
    /// Resolves to the inner service's response, its body wrapped so that
    /// it is produced under the request's context; or to an error: the
    /// inner service's, or the context's [`Error`](crate::Error) when the
    /// context ended first (the inner call is then dropped, unfinished) or
    /// before the inner service failed, or the reason the request was
    /// refused before it started.
    ///
    /// # Cancel safety
    ///
    /// Dropping it before it resolves drops the inner call and cancels the
    /// request's context as the caller leaving (see
    /// [`RequestContextLayer`](super::RequestContextLayer)), so that work
    /// started under it stops.
    ///
    /// # Panics
    ///
    /// Polling it again after it resolved panics.
    ///
    /// # Examples
    ///
    /// A request with a malformed header never reaches the handler when the
    /// headers are read strictly:
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::{ready, Ready};
    /// use std::task::{Context as TaskContext, Poll};
    ///
    /// use http::{Request, Response};
    /// use tokio_ctx::headers::{BudgetHeaders, InvalidBudgetHeader, Parsing};
    /// use tokio_ctx::tower::RequestContextLayer;
    /// use tokio_ctx::Context;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// struct Hello;
    ///
    /// impl Service<Request<()>> for Hello {
    ///     type Response = Response<String>;
    ///     type Error = Infallible;
    ///     type Future = Ready<Result<Response<String>, Infallible>>;
    ///
    ///     fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
    ///         Poll::Ready(Ok(()))
    ///     }
    ///
    ///     fn call(&mut self, _: Request<()>) -> Self::Future {
    ///         ready(Ok(Response::new("hello".to_owned())))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let strict = BudgetHeaders::default().parsing(Parsing::Strict);
    /// let mut service = RequestContextLayer::new(Context::background()).headers(strict).layer(Hello);
    /// let request = Request::builder().header("grpc-timeout", "soon").body(()).unwrap();
    /// let err = service.call(request).await.unwrap_err();
    /// assert!(err.is::<InvalidBudgetHeader>());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        serving: Serving<F>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(serving: Serving<F>) -> Self {
        ResponseFuture { serving }
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
        Poll::Ready(match std::task::ready!(self.project().serving.poll(cx)) {
            Served::Answered(response, end) => {
                Ok(response.map(|body| ContextBody::request(body, end, Ending::Error)))
            }
            // A failure after the context ended is the context's end.
            Served::Failed(_, Some(ended)) => Err(Box::new(ended)),
            Served::Failed(failed, None) => Err(failed.into()),
            Served::Ended(ended) => Err(Box::new(ended)),
            Served::Refused(Refusal::Ended(ended)) => Err(Box::new(ended)),
            Served::Refused(Refusal::Malformed(malformed)) => Err(Box::new(malformed)),
        })
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// The response future of [`PropagateBudget`](super::PropagateBudget):
    /// the inner call, run under the call's context.
    ///
    /// Resolves to the inner service's response, its body read under the
    /// call's context (which ends when the body does); or to an error: the
    /// inner service's, or the context's [`Error`](crate::Error) when the
    /// context ended, first or while the inner call was failing.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner call, which closes the request: that is
    /// how the next service learns that nobody waits for its answer.
    ///
    /// # Panics
    ///
    /// Polling it again after it resolved panics.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::{ready, Ready};
    /// use std::task::{Context as TaskContext, Poll};
    ///
    /// use http::{Request, Response};
    /// use tokio_ctx::tower::PropagateBudgetLayer;
    /// use tokio_ctx::{Context, Error};
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// struct Peer;
    ///
    /// impl Service<Request<()>> for Peer {
    ///     type Response = Response<String>;
    ///     type Error = Infallible;
    ///     type Future = Ready<Result<Response<String>, Infallible>>;
    ///
    ///     fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
    ///         Poll::Ready(Ok(()))
    ///     }
    ///
    ///     fn call(&mut self, _: Request<()>) -> Self::Future {
    ///         ready(Ok(Response::new(String::new())))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut client = PropagateBudgetLayer::new().layer(Peer);
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// let mut request = Request::new(());
    /// request.extensions_mut().insert(ctx);
    /// let err = client.call(request).await.unwrap_err();
    /// assert!(err.downcast_ref::<Error>().unwrap().is_canceled(), "never sent");
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct CallFuture<F> {
        #[pin]
        calling: Calling<F>,
    }
}

impl<F> CallFuture<F> {
    pub(super) fn new(calling: Calling<F>) -> Self {
        CallFuture { calling }
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
                Ok(response.map(|body| ContextBody::call(body, ctx, handle, Ending::Error)))
            }
            Called::Failed(failed) => Err(failed.into()),
            Called::Ended(ended) => Err(Box::new(ended)),
        })
    }
}

impl<F> std::fmt::Debug for CallFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFuture").finish_non_exhaustive()
    }
}
