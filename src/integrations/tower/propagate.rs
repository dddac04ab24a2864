//! [`PropagateBudgetLayer`]: the caller's remaining budget on every outgoing
//! request.

use std::panic::Location;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{BoxError, CallFuture, ContextBody};
use crate::headers::BudgetHeaders;
use crate::integrations::client::{context_of, target_of, Calling, ClientOptions};

/// Carries the caller's budget to the service it calls; see the [module
/// docs](super).
///
/// The context is the one in the request's extensions if there is one,
/// else [`Context::current`](crate::Context::current) at the time of the
/// call ([`Service::call`], not the first poll of its future): make the
/// call from code running under the context, as a handler's calls are.
///
/// Its remaining budget, less the [margin](Self::margin), goes into the
/// `grpc-timeout` header (or the [headers](Self::headers) you choose),
/// unless the request already asks for less. The call then runs under a
/// child context whose budget is exactly what the header says, named
/// after the peer and the path (`call 10.0.0.7:50051/pkg.Service/Method`)
/// and located where the layer was built. A request whose
/// context has already ended is not sent: the call fails at once with the
/// context's [`Error`](crate::Error). A call still running when the
/// context ends is dropped and fails the same way; dropping it closes the
/// request, which is how the next service learns that nobody waits for its
/// answer any more. When the context has ended, a failure of the inner
/// service (its own timer on the same budget, say) is reported as the
/// context's error: the context decides.
///
/// ```
/// use tokio_ctx::tower::PropagateBudgetLayer;
///
/// let layer = PropagateBudgetLayer::new();
/// # drop(layer);
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
    /// A layer that reads each request's context as described above and
    /// writes `grpc-timeout`; see the example on [`PropagateBudgetLayer`].
    #[track_caller]
    pub fn new() -> Self {
        PropagateBudgetLayer {
            options: ClientOptions::new(BudgetHeaders::none().grpc(), Location::caller()),
        }
    }

    /// Which headers carry the budget; `grpc-timeout` unless set.
    ///
    /// ```
    /// use tokio_ctx::headers::BudgetHeaders;
    /// use tokio_ctx::tower::PropagateBudgetLayer;
    ///
    /// let layer = PropagateBudgetLayer::new().headers(BudgetHeaders::none().connect());
    /// # drop(layer);
    /// ```
    pub fn headers(mut self, headers: BudgetHeaders) -> Self {
        self.options.headers = headers;
        self
    }

    /// Time kept back from the budget the next service is told, so that its
    /// deadline comes before the caller's by at least the time a response
    /// takes to come back: the caller then gets the next service's answer
    /// (`DEADLINE_EXCEEDED`, 504) rather than running out first. None by
    /// default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::tower::PropagateBudgetLayer;
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
    options: ClientOptions,
}

impl<S, B, ResBody> Service<Request<B>> for PropagateBudget<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ContextBody<ResBody>>;
    type Error = BoxError;
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let ctx = context_of(&request);
        let target = target_of(request.uri());
        let call = self.options.prepare(ctx, &target, request.headers_mut());
        let inner = &mut self.inner;
        CallFuture::new(Calling::start(call, || inner.call(request)))
    }
}
