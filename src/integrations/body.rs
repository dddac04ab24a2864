//! [`ContextBody`]: a message body produced or read under a context.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::server::RequestEnd;
use crate::core::Cause;
use crate::error::FINISHED;
use crate::future::wait::Wait;
use crate::{CancelHandle, Context, Error};

/// The error of a body: the inner body's, or the context's end.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// A message body that lives under a context: the response body of a
    /// request, or of a call, whose context it keeps.
    ///
    /// While the body is polled its context is [`Context::current`], so a
    /// stream that produces a response body runs under the request. When
    /// the context ends while the inner body waits, the body ends with it:
    /// a gRPC server body with trailers that carry the status
    /// (`DEADLINE_EXCEEDED`, `UNAVAILABLE`), any other body with the
    /// context's [`Error`] as its error, which makes the server reset the
    /// stream or close the connection rather than pass off a cut body as
    /// complete.
    ///
    /// The request's context ends with the body: when its last frame is
    /// produced (before that frame is handed to the connection), with the
    /// cause "the request completed"; when the body is dropped before its
    /// end, as the caller going away.
    ///
    /// # Ordering
    ///
    /// The inner body is polled first, on every poll, as
    /// [`Run`](crate::Run) polls its future: a frame that is ready is
    /// passed on even if the context ended in the same instant. A body that
    /// never waits is therefore not cut short. An error of the inner body
    /// once the context has ended is reported as the context's ending: it
    /// is that ending, seen through the connection.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::{ready, Ready};
    /// use std::task::{Context as TaskContext, Poll};
    ///
    /// use http::{Request, Response};
    /// use tokio_ctx::tower::{ContextBody, RequestContextLayer};
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
    /// let mut service = RequestContextLayer::new(Context::background()).layer(Hello);
    /// let response = service.call(Request::new(())).await.unwrap();
    /// let body: &ContextBody<String> = response.body();
    /// # let _ = body;
    /// # }
    /// ```
    #[must_use = "a body does nothing unless polled"]
    pub struct ContextBody<B> {
        #[pin]
        inner: Option<B>,
        // `None` for a body that no context watches: an answer made by the
        // layers themselves.
        watch: Option<Box<Watch>>,
    }
}

/// What a watched body keeps: its context, how it ends, and what to do
/// with the context when it does.
#[derive(Debug)]
struct Watch {
    ctx: Context,
    wait: Wait,
    ending: Ending,
    end: End,
}

/// How a body says that its context ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// With the context's [`Error`] as the body's error.
    Error,
    /// A gRPC server body: trailers with the status.
    #[cfg(feature = "tonic")]
    GrpcTrailers,
    /// A gRPC client body, read by tonic: a `Status` as the body's error.
    #[cfg(feature = "tonic")]
    GrpcStatus,
    /// A gRPC client's request body: a `Status` that makes the connection
    /// reset the stream with `CANCEL`.
    #[cfg(feature = "tonic")]
    GrpcReset,
}

/// What a body does with its context when it is done.
#[derive(Debug)]
enum End {
    /// A server's request: see [`RequestEnd`].
    Request(Option<RequestEnd>),
    /// A client's call: finished when the body is done or dropped.
    Call(Option<CancelHandle>),
    /// Nothing: someone else owns the context.
    #[cfg(feature = "tonic")]
    Borrowed,
}

impl End {
    fn completed(&mut self) {
        match self {
            End::Request(request) => {
                if let Some(request) = request.take() {
                    request.complete();
                }
            }
            End::Call(call) => {
                if let Some(call) = call.take() {
                    // The body's context and the handle: nobody else's.
                    call.finish(Cause::Reason(&FINISHED), 2);
                }
            }
            #[cfg(feature = "tonic")]
            End::Borrowed => {}
        }
    }
}

impl Drop for End {
    fn drop(&mut self) {
        match self {
            // Dropping a `RequestEnd` unfinished is the caller leaving.
            End::Request(_) => {}
            #[cfg(feature = "tonic")]
            End::Borrowed => {}
            End::Call(_) => self.completed(),
        }
    }
}

impl<B> ContextBody<B> {
    /// A response body produced under a server's request context. An
    /// empty body is complete at once, and the request with it: a server
    /// may never poll it.
    pub(crate) fn request(inner: B, request: RequestEnd, ending: Ending) -> Self
    where
        B: Body,
    {
        if inner.is_end_stream() {
            request.complete();
            return ContextBody {
                inner: Some(inner),
                watch: None,
            };
        }
        let ctx = request.context().clone();
        ContextBody::watched(inner, ctx, ending, End::Request(Some(request)))
    }

    /// A response body read under a client call's context, finished when
    /// the body is.
    pub(crate) fn call(inner: B, ctx: Context, call: Option<CancelHandle>, ending: Ending) -> Self {
        ContextBody::watched(inner, ctx, ending, End::Call(call))
    }

    /// A body that ends when `ctx` does, and leaves `ctx` alone otherwise.
    #[cfg(feature = "tonic")]
    pub(crate) fn borrowed(inner: B, ctx: Context, ending: Ending) -> Self {
        ContextBody::watched(inner, ctx, ending, End::Borrowed)
    }

    fn watched(inner: B, ctx: Context, ending: Ending, end: End) -> Self {
        ContextBody {
            inner: Some(inner),
            watch: Some(Box::new(Watch {
                ctx,
                wait: Wait::new(),
                ending,
                end,
            })),
        }
    }

    /// The body with nothing in it, for an answer the layers make
    /// themselves.
    pub(crate) fn empty() -> Self {
        ContextBody {
            inner: None,
            watch: None,
        }
    }
}

impl<B> Default for ContextBody<B> {
    /// An empty body.
    ///
    /// ```
    /// use http_body::Body;
    /// use tokio_ctx::tower::ContextBody;
    ///
    /// assert!(ContextBody::<String>::default().is_end_stream());
    /// ```
    fn default() -> Self {
        ContextBody::empty()
    }
}

impl<B> Body for ContextBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let Some(watch) = this.watch.as_deref_mut() else {
            return inner.poll_frame(cx).map_err(Into::into);
        };
        let polled = watch.ctx.attach_sync(|| inner.poll_frame(cx));
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                // The last frame: the request is complete before the
                // connection gets to send it.
                let last = frame.is_trailers()
                    || this
                        .inner
                        .as_ref()
                        .as_pin_ref()
                        .is_some_and(|inner| inner.is_end_stream());
                if last {
                    watch.end.completed();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(failed))) => {
                // The context decides: a body that fails once it has ended
                // (a stream reset because the call's context ended) ends
                // as the context did.
                let frame = match watch.ctx.err() {
                    Some(ended) => end_frame(watch.ending, ended),
                    None => Err(failed.into()),
                };
                watch.end.completed();
                this.inner.set(None);
                Poll::Ready(Some(frame))
            }
            Poll::Ready(None) => {
                watch.end.completed();
                this.inner.set(None);
                Poll::Ready(None)
            }
            Poll::Pending => {
                let ended = std::task::ready!(Pin::new(&mut watch.wait).poll_wait(&watch.ctx, cx));
                // The inner body goes now, under its context: whatever it
                // was waiting for is not needed any more.
                let ctx = watch.ctx.clone();
                ctx.attach_sync(|| this.inner.set(None));
                let frame = end_frame(watch.ending, ended);
                watch.end.completed();
                Poll::Ready(Some(frame))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().map_or(true, Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// The last frame of a body whose context ended.
fn end_frame<D>(ending: Ending, ended: Error) -> Result<Frame<D>, BoxError> {
    match ending {
        Ending::Error => Err(Box::new(ended)),
        #[cfg(feature = "tonic")]
        Ending::GrpcTrailers => {
            let status = super::tonic::ending_status(&ended);
            let mut trailers = http::HeaderMap::new();
            match status.add_header(&mut trailers) {
                Ok(()) => Ok(Frame::trailers(trailers)),
                Err(status) => Err(Box::new(status)),
            }
        }
        #[cfg(feature = "tonic")]
        Ending::GrpcStatus => Err(Box::new(tonic::Status::from(ended))),
        #[cfg(feature = "tonic")]
        Ending::GrpcReset => Err(Box::new(super::tonic::reset_status(ended))),
    }
}

impl<B> std::fmt::Debug for ContextBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextBody")
            .field("done", &self.inner.is_none())
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

impl<B> ContextBody<B> {
    /// The inner body; `None` once it ended, or for an answer the layers
    /// made themselves.
    ///
    /// ```
    /// use tokio_ctx::tower::ContextBody;
    ///
    /// assert!(ContextBody::<String>::default().get_ref().is_none());
    /// ```
    pub fn get_ref(&self) -> Option<&B> {
        self.inner.as_ref()
    }
}
