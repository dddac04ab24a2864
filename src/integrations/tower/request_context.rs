//! [`RequestContextLayer`]: a context for every incoming request, with the
//! caller's budget.

use std::panic::Location;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{BoxError, ResponseFuture};
use crate::integrations::server::{server_options, ServerOptions, Serving};
use crate::Context;

/// Gives each request a context derived from a parent, with the deadline
/// the caller's budget header asks for; see the [module docs](super).
///
/// The parent is typically the server's own context, so that shutting the
/// server down ends every request in flight, with the cause given to it.
/// A request without a budget gets the [default](Self::default_budget),
/// if any; no request gets more than the [maximum](Self::max_budget). A
/// header that cannot be read is ignored, or refused with an
/// [`InvalidBudgetHeader`](crate::headers::InvalidBudgetHeader) when the
/// headers are read [strictly](crate::headers::Parsing::Strict). A request
/// whose context has ended before it starts (a zero budget, a server
/// shutting down) never reaches the inner service.
///
/// Errors name the request (`request /pkg.Service/Method`) and point at the
/// line that built the layer.
///
/// # The caller leaving
///
/// The only sign that a caller gave up is the call, or its response body,
/// being dropped before the response is complete: the context is then
/// canceled with the cause "the caller gave up on the request". A drop
/// when the budget has run out (or is within two milliseconds of it) is
/// left to the deadline, which is what ended the call; a drop while the
/// parent is ending is the parent's. What this layer cannot tell apart is
/// a timeout *outside* it, shorter than the budget, dropping the call
/// while the caller still waits: give the layer that limit as its
/// [maximum](Self::max_budget), so that its own deadline ends the request
/// first, or put the timeout inside it.
///
/// ```
/// use tokio_ctx::tower::RequestContextLayer;
/// use tokio_ctx::Context;
///
/// let (server, shutdown) = Context::background().named("server").child();
/// let layer = RequestContextLayer::new(server);
/// # drop((layer, shutdown));
/// ```
#[derive(Debug, Clone)]
pub struct RequestContextLayer {
    options: Arc<ServerOptions>,
}

impl RequestContextLayer {
    /// Derives every request's context from `parent`; see the example on
    /// [`RequestContextLayer`].
    #[track_caller]
    pub fn new(parent: Context) -> Self {
        RequestContextLayer {
            options: Arc::new(ServerOptions::new(parent, Location::caller())),
        }
    }
}

server_options!(RequestContextLayer, "tower");

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
/// use tokio_ctx::tower::{RequestContext, RequestContextLayer};
/// use tokio_ctx::Context;
/// use tower_layer::Layer;
///
/// struct Handler;
/// let service: RequestContext<Handler> =
///     RequestContextLayer::new(Context::background()).layer(Handler);
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
    type Response = Response<super::ContextBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = &mut self.inner;
        ResponseFuture::new(Serving::start(&self.options, request, |request| {
            inner.call(request)
        }))
    }
}
