//! [`PropagateBudgetLayer`]: the caller's remaining budget on every outgoing
//! request.

use std::task::{Context as TaskContext, Poll};

use http::{HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::{BoxError, ResponseFuture, GRPC_TIMEOUT};
use crate::{Context, GrpcTimeout};

/// Carries the caller's budget to the service it calls; see the [module
/// docs](super).
///
/// The context is the one in the request's extensions if there is one,
/// else [`Context::current`] at the time of the call
/// ([`Service::call`], not the first poll of its future): make the call
/// from code running under the context, as a handler's calls are. Its remaining budget goes into the
/// `grpc-timeout` header, unless the header already asks for less. A
/// request whose context has already ended is not sent: the call fails at
/// once with the context's [`Error`](crate::Error). A call still running
/// when the context ends is dropped and fails the same way; dropping it
/// closes the request, which is how the next service learns that nobody
/// waits for its answer any more.
///
/// ```
/// use tokio_ctx::tower::PropagateBudgetLayer;
///
/// let layer = PropagateBudgetLayer::new();
/// # drop(layer);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PropagateBudgetLayer {
    _private: (),
}

impl PropagateBudgetLayer {
    /// A layer that reads each request's context as described above; see
    /// the example on [`PropagateBudgetLayer`].
    pub fn new() -> Self {
        PropagateBudgetLayer::default()
    }
}

impl<S> Layer<S> for PropagateBudgetLayer {
    type Service = PropagateBudget<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateBudget { inner }
    }
}

/// The service made by [`PropagateBudgetLayer`].
///
/// ```
/// use tokio_ctx::tower::{PropagateBudget, PropagateBudgetLayer};
/// use tower_layer::Layer;
///
/// struct Channel;
/// let client: PropagateBudget<Channel> = PropagateBudgetLayer::new().layer(Channel);
/// # drop(client);
/// ```
#[derive(Debug, Clone)]
pub struct PropagateBudget<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for PropagateBudget<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let ctx = request
            .extensions()
            .get::<Context>()
            .cloned()
            .unwrap_or_else(Context::current);
        // One clock read serves both the check and the header.
        let left = ctx.remaining();
        let out_of_time = left.is_some_and(|left| left.is_zero());
        if out_of_time || ctx.node().is_some_and(|node| node.is_canceled()) {
            if let Some(ended) = ctx.err() {
                return ResponseFuture::refused(Box::new(ended));
            }
        }
        if let Some(budget) = left.map(GrpcTimeout::from) {
            let asked = request
                .headers()
                .get(GRPC_TIMEOUT)
                .and_then(|value| GrpcTimeout::from_bytes(value.as_bytes()).ok());
            if asked.map_or(true, |asked| asked.duration() > budget.duration()) {
                request
                    .headers_mut()
                    .insert(GRPC_TIMEOUT, HeaderValue::from(budget));
            }
        }
        let call = self.inner.call(request);
        ResponseFuture::running(ctx.run(call), None)
    }
}
