//! [`RequestContextLayer`]: a context for every incoming request, with the
//! caller's budget.

use std::task::{Context as TaskContext, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use super::{BoxError, ResponseFuture, GRPC_TIMEOUT};
use crate::{Context, GrpcTimeout};

/// Gives each request a context derived from a parent, with the deadline
/// the caller's `grpc-timeout` header asks for; see the [module
/// docs](super).
///
/// The parent is typically the server's own context, so that shutting the
/// server down cancels every request in flight. A request without the
/// header gets a context without a deadline of its own. A request whose
/// header is malformed is refused with
/// [`InvalidGrpcTimeout`](crate::InvalidGrpcTimeout) and never reaches the
/// inner service.
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
    parent: Context,
}

impl RequestContextLayer {
    /// Derives every request's context from `parent`; see the example on
    /// [`RequestContextLayer`].
    pub fn new(parent: Context) -> Self {
        RequestContextLayer { parent }
    }
}

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContext {
            inner,
            parent: self.parent.clone(),
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
    parent: Context,
}

impl<S, B> Service<Request<B>> for RequestContext<S>
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
        let budget = match request.headers().get(GRPC_TIMEOUT) {
            None => None,
            Some(value) => match GrpcTimeout::from_bytes(value.as_bytes()) {
                Ok(budget) => Some(budget.duration()),
                Err(malformed) => return ResponseFuture::refused(Box::new(malformed)),
            },
        };
        // Named after the route, so that an error says which request ended.
        let named = self
            .parent
            .named(format!("request {}", request.uri().path()));
        let (ctx, cancel) = match budget {
            Some(budget) => named.child_with_timeout(budget),
            None => named.child(),
        };
        request.extensions_mut().insert(ctx.clone());
        // Current from the call on: a service may read it before its
        // future first runs.
        let call = ctx.attach_sync(|| self.inner.call(request));
        ResponseFuture::running(ctx.run(call), Some(cancel))
    }
}
