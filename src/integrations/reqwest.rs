//! reqwest: a request sent with the caller's budget, and bounded by it
//! (feature `reqwest`).
//!
//! reqwest's client is not a tower service over `http::Request`, so the
//! tower layer cannot wrap it; [`RequestBuilderExt::send_with_context`]
//! (or [`PropagateBudget::send`], to choose the headers and a margin) does
//! what the layer does:
//!
//! - the context's remaining budget, less the margin, goes into the budget
//!   header (`connect-timeout-ms` unless chosen otherwise, which the
//!   server layers of this crate read), unless the request already asks
//!   for less;
//! - a request whose context has ended is not sent;
//! - the call runs under a context whose budget is what the header says,
//!   and when it ends, the call is dropped (which closes the connection,
//!   so the server learns that nobody waits) and fails with the context's
//!   [`Error`].
//!
//! The call ends when the response's head arrives. Read the body under the
//! context too, so that it is bounded by what is left:
//! `ctx.run(response.bytes()).await`.
//!
//! ```no_run
//! use tokio_ctx::reqwest::RequestBuilderExt;
//! use tokio_ctx::Context;
//!
//! async fn fetch(ctx: &Context, client: &reqwest::Client) -> Result<String, Box<dyn std::error::Error>> {
//!     let response = client.get("http://127.0.0.1:8080/price").send_with_context(ctx).await?;
//!     let body = ctx.run(response.text()).await??;
//!     Ok(body)
//! }
//! # drop(fetch);
//! ```

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::headers::BudgetHeaders;
use crate::integrations::client::{Call, Called, Calling, ClientOptions};
use crate::{Context, Error};

/// The future of a request in flight.
type Pending = Pin<Box<dyn Future<Output = Result<reqwest::Response, reqwest::Error>> + Send>>;

/// How requests carry the budget: which headers, and the margin kept back.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderName;
/// use tokio_ctx::headers::BudgetHeaders;
/// use tokio_ctx::reqwest::PropagateBudget;
///
/// let outbound = PropagateBudget::new()
///     .headers(BudgetHeaders::none().millis(HeaderName::from_static("x-timeout-ms")))
///     .margin(Duration::from_millis(5));
/// # drop(outbound);
/// ```
#[derive(Debug, Clone)]
pub struct PropagateBudget {
    options: ClientOptions,
}

impl Default for PropagateBudget {
    #[track_caller]
    fn default() -> Self {
        PropagateBudget::new()
    }
}

impl PropagateBudget {
    /// Writes `connect-timeout-ms`, with no margin. Errors of the calls'
    /// contexts point at the line that called this.
    ///
    /// ```
    /// use tokio_ctx::reqwest::PropagateBudget;
    ///
    /// let outbound = PropagateBudget::new();
    /// # drop(outbound);
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        PropagateBudget {
            options: ClientOptions::new(BudgetHeaders::none().connect(), Location::caller()),
        }
    }

    /// Which headers carry the budget.
    ///
    /// ```
    /// use tokio_ctx::headers::BudgetHeaders;
    /// use tokio_ctx::reqwest::PropagateBudget;
    ///
    /// let outbound = PropagateBudget::new().headers(BudgetHeaders::none().grpc());
    /// # drop(outbound);
    /// ```
    pub fn headers(mut self, headers: BudgetHeaders) -> Self {
        self.options.headers = headers;
        self
    }

    /// Time kept back from the budget the server is told, so that its
    /// deadline, and its answer (504), come before the caller's own budget
    /// runs out. None by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::reqwest::PropagateBudget;
    ///
    /// let outbound = PropagateBudget::new().margin(Duration::from_millis(10));
    /// # drop(outbound);
    /// ```
    pub fn margin(mut self, margin: Duration) -> Self {
        self.options.margin = margin;
        self
    }

    /// Sends `request` under `ctx`, as the [module docs](self) say.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tokio_ctx::reqwest::PropagateBudget;
    /// use tokio_ctx::Context;
    ///
    /// # async fn run() -> Result<(), tokio_ctx::reqwest::SendError> {
    /// let outbound = PropagateBudget::new().margin(Duration::from_millis(5));
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(300));
    /// let client = reqwest::Client::new();
    /// let response = outbound.send(&ctx, client.get("http://127.0.0.1:8080/")).await?;
    /// # drop(response);
    /// # Ok(())
    /// # }
    /// ```
    pub fn send(&self, ctx: &Context, request: reqwest::RequestBuilder) -> SendFuture {
        let (client, request) = request.build_split();
        let mut request = match request {
            Ok(request) => request,
            Err(invalid) => {
                let call = Ok(Call {
                    ctx: Context::background(),
                    handle: None,
                });
                let failed: Pending = Box::pin(std::future::ready(Err(invalid)));
                return SendFuture {
                    calling: Calling::start(call, || failed),
                };
            }
        };
        let url = request.url();
        let target = match url.port() {
            Some(port) => format!("{}:{port}{}", url.host_str().unwrap_or(""), url.path()),
            None => format!("{}{}", url.host_str().unwrap_or(""), url.path()),
        };
        let call = self
            .options
            .prepare(ctx.clone(), &target, request.headers_mut());
        SendFuture {
            calling: Calling::start(call, || -> Pending { Box::pin(client.execute(request)) }),
        }
    }
}

/// `send_with_context` on a reqwest `RequestBuilder`.
///
/// This trait is sealed: it is implemented for `reqwest::RequestBuilder`
/// only.
///
/// ```no_run
/// use std::time::Duration;
/// use tokio_ctx::reqwest::RequestBuilderExt;
/// use tokio_ctx::Context;
///
/// # async fn run() -> Result<(), tokio_ctx::reqwest::SendError> {
/// let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(300));
/// let response = reqwest::Client::new()
///     .get("http://127.0.0.1:8080/")
///     .send_with_context(&ctx)
///     .await?;
/// # drop(response);
/// # Ok(())
/// # }
/// ```
pub trait RequestBuilderExt: sealed::Sealed {
    /// Sends the request under `ctx` with [`PropagateBudget::new`]'s
    /// settings: its budget in `connect-timeout-ms`, no margin.
    ///
    /// ```
    /// use tokio_ctx::reqwest::RequestBuilderExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// let request = reqwest::Client::new().get("http://127.0.0.1:9/");
    /// let err = request.send_with_context(&ctx).await.unwrap_err();
    /// assert!(err.context_error().is_some_and(|e| e.is_canceled()), "never sent");
    /// # }
    /// ```
    #[track_caller]
    fn send_with_context(self, ctx: &Context) -> SendFuture;
}

impl RequestBuilderExt for reqwest::RequestBuilder {
    #[track_caller]
    fn send_with_context(self, ctx: &Context) -> SendFuture {
        PropagateBudget::new().send(ctx, self)
    }
}

mod sealed {
    pub trait Sealed {}

    impl Sealed for reqwest::RequestBuilder {}
}

pin_project! {
    /// A request in flight under a context, made by
    /// [`PropagateBudget::send`] and
    /// [`RequestBuilderExt::send_with_context`].
    ///
    /// Resolves to the response (its head; the body is read afterwards),
    /// or to a [`SendError`]: the context's end, or reqwest's failure while
    /// the context lived.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the request, which closes its connection.
    ///
    /// # Panics
    ///
    /// Polling it again after it resolved panics.
    ///
    /// ```
    /// use tokio_ctx::reqwest::{RequestBuilderExt, SendFuture};
    /// use tokio_ctx::Context;
    ///
    /// let send: SendFuture = reqwest::Client::new()
    ///     .get("http://127.0.0.1:9/")
    ///     .send_with_context(&Context::background());
    /// # drop(send);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct SendFuture {
        #[pin]
        calling: Calling<Pending>,
    }
}

impl Future for SendFuture {
    type Output = Result<reqwest::Response, SendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Poll::Ready(match std::task::ready!(self.project().calling.poll(cx)) {
            Called::Answered(response, call, handle) => {
                // The call ends with the response's head; the body is read
                // under the caller's context.
                drop((call, handle));
                Ok(response)
            }
            Called::Failed(failed) => Err(SendError {
                inner: Inner::Request(failed),
            }),
            Called::Ended(ended) => Err(SendError {
                inner: Inner::Context(ended),
            }),
        })
    }
}

impl fmt::Debug for SendFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture").finish_non_exhaustive()
    }
}

/// Why a request sent under a context failed: the context ended (before it
/// was sent, or while it was in flight), or reqwest failed while the
/// context lived.
///
/// ```
/// use tokio_ctx::reqwest::RequestBuilderExt;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (ctx, cancel) = Context::background().child();
/// cancel.cancel_with("shutting down");
/// let err = reqwest::Client::new().get("http://127.0.0.1:9/").send_with_context(&ctx).await.unwrap_err();
/// assert!(err.is_canceled());
/// assert!(err.reqwest_error().is_none());
/// assert!(err.to_string().ends_with("): shutting down"));
/// # }
/// ```
#[derive(Debug)]
pub struct SendError {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Context(Error),
    Request(reqwest::Error),
}

impl SendError {
    /// The context's error, if its end is what failed the request.
    ///
    /// ```
    /// use tokio_ctx::reqwest::RequestBuilderExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().named("quote").child();
    /// cancel.cancel();
    /// let err = reqwest::Client::new().get("http://127.0.0.1:9/").send_with_context(&ctx).await.unwrap_err();
    /// assert_eq!(err.context_error().unwrap().context_name(), Some("quote"));
    /// # }
    /// ```
    pub fn context_error(&self) -> Option<&Error> {
        match &self.inner {
            Inner::Context(ended) => Some(ended),
            Inner::Request(_) => None,
        }
    }

    /// reqwest's error, if reqwest failed while the context lived.
    ///
    /// ```
    /// use tokio_ctx::reqwest::RequestBuilderExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let request = reqwest::Client::new().get("not a url");
    /// let err = request.send_with_context(&Context::background()).await.unwrap_err();
    /// assert!(err.reqwest_error().is_some_and(|e| e.is_builder()));
    /// # }
    /// ```
    pub fn reqwest_error(&self) -> Option<&reqwest::Error> {
        match &self.inner {
            Inner::Request(failed) => Some(failed),
            Inner::Context(_) => None,
        }
    }

    /// True if the context's deadline is what failed the request.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::reqwest::RequestBuilderExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::ZERO);
    /// let err = reqwest::Client::new().get("http://127.0.0.1:9/").send_with_context(&ctx).await.unwrap_err();
    /// assert!(err.is_deadline_exceeded());
    /// # }
    /// ```
    pub fn is_deadline_exceeded(&self) -> bool {
        self.context_error()
            .is_some_and(Error::is_deadline_exceeded)
    }

    /// True if the context's cancellation is what failed the request.
    ///
    /// ```
    /// use tokio_ctx::reqwest::RequestBuilderExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// let err = reqwest::Client::new().get("http://127.0.0.1:9/").send_with_context(&ctx).await.unwrap_err();
    /// assert!(err.is_canceled());
    /// # }
    /// ```
    pub fn is_canceled(&self) -> bool {
        self.context_error().is_some_and(Error::is_canceled)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Context(ended) => fmt::Display::fmt(ended, f),
            Inner::Request(failed) => fmt::Display::fmt(failed, f),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner {
            Inner::Context(ended) => Some(ended),
            Inner::Request(failed) => Some(failed),
        }
    }
}

impl From<SendError> for std::io::Error {
    /// The context's error as [`From<Error>`](crate::Error) converts it
    /// (`TimedOut`, `Interrupted`); reqwest's as
    /// [`Other`](std::io::ErrorKind::Other).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::reqwest::RequestBuilderExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::ZERO);
    /// let err = reqwest::Client::new().get("http://127.0.0.1:9/").send_with_context(&ctx).await.unwrap_err();
    /// assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::TimedOut);
    /// # }
    /// ```
    fn from(err: SendError) -> Self {
        match err.inner {
            Inner::Context(ended) => ended.into(),
            Inner::Request(failed) => std::io::Error::other(failed),
        }
    }
}
