//! [`ResponseFuture`]: a call running under a request's context.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::BoxError;
use crate::core::Cause;
use crate::error::CALLER_LEFT;
use crate::{CancelHandle, Run};

pin_project! {
    /// The response future of [`RequestContext`](super::RequestContext) and
    /// [`PropagateBudget`](super::PropagateBudget): the inner call, run
    /// under the request's context.
    ///
    /// Resolves to the inner service's response, or to an error: the inner
    /// service's, or the context's [`Error`](crate::Error) when the context
    /// ended first (the inner call is then dropped, unfinished), or the
    /// reason the call was refused before it started.
    ///
    /// # Cancel safety
    ///
    /// Dropping it before it resolves drops the inner call; on the server
    /// side it also cancels the request's context with the cause "the
    /// caller gave up on the request", so that work started under it stops.
    /// Once the response is ready the context is left alone: a streaming
    /// body may still be produced under it, within its budget.
    ///
    /// # Panics
    ///
    /// Polling it again after it resolved panics.
    ///
    /// # Examples
    ///
    /// A request with a malformed header never reaches the handler:
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::{ready, Ready};
    /// use std::task::{Context as TaskContext, Poll};
    ///
    /// use http::Request;
    /// use tokio_ctx::tower::RequestContextLayer;
    /// use tokio_ctx::{Context, InvalidGrpcTimeout};
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// struct Hello;
    ///
    /// impl Service<Request<()>> for Hello {
    ///     type Response = &'static str;
    ///     type Error = Infallible;
    ///     type Future = Ready<Result<&'static str, Infallible>>;
    ///
    ///     fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
    ///         Poll::Ready(Ok(()))
    ///     }
    ///
    ///     fn call(&mut self, _: Request<()>) -> Self::Future {
    ///         ready(Ok("hello"))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut service = RequestContextLayer::new(Context::background()).layer(Hello);
    /// let request = Request::builder().header("grpc-timeout", "soon").body(()).unwrap();
    /// let err = service.call(request).await.unwrap_err();
    /// assert!(err.is::<InvalidGrpcTimeout>());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        call: Option<Run<F>>,
        refused: Option<BoxError>,
        // The request's own handle, held until the call completes.
        unfinished: Option<CancelHandle>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Still running: the only sign that the caller left.
            if let Some(request) = this.project().unfinished.take() {
                request.cancel_for(Cause::Reason(&CALLER_LEFT));
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn running(call: Run<F>, request: Option<CancelHandle>) -> Self {
        ResponseFuture {
            call: Some(call),
            refused: None,
            unfinished: request,
        }
    }

    pub(super) fn refused(why: BoxError) -> Self {
        ResponseFuture {
            call: None,
            refused: Some(why),
            unfinished: None,
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut slot = this.call;
        let Some(call) = slot.as_mut().as_pin_mut() else {
            return match this.refused.take() {
                Some(why) => Poll::Ready(Err(why)),
                None => panic!("`ResponseFuture` polled after it completed"),
            };
        };
        let outcome = std::task::ready!(call.poll(cx));
        // Whatever ended it, the inner call goes now, not when the caller
        // gets round to dropping this future.
        slot.set(None);
        *this.unfinished = None;
        Poll::Ready(match outcome {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(failed)) => Err(failed.into()),
            Err(ended) => Err(Box::new(ended)),
        })
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("call", &self.call)
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}
