//! [`ContextStream`]: a stream under a context, with an optional limit per
//! item (scenario 7: `for chunk in socket.receive()` inside a request budget).

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::context::{Context, Limit};
use crate::error::Error;
use crate::future::wait::Wait;

/// The limit each item gets, and where it was asked for.
#[derive(Debug, Clone, Copy)]
struct ItemLimit {
    timeout: Duration,
    location: &'static Location<'static>,
}

pin_project! {
    /// A stream that ends when its context ends, and optionally gives each
    /// item a limit of its own; made by [`Context::stream`] and
    /// [`Named::stream`](crate::Named::stream).
    ///
    /// Items of the inner stream come out as `Ok`, in order, and the stream
    /// ends when the inner one does. When the inner stream has nothing ready
    /// and the context has ended, the stream yields the context's
    /// [`Error`] once and then ends: every later poll returns `None`
    /// ([`FusedStream`]).
    ///
    /// # Per-item limit
    ///
    /// With [`item_timeout`](Self::item_timeout), each item may take at most
    /// `min(limit, what is left of the context)`. The item's clock starts at
    /// the first poll that finds the item not ready, so time the consumer
    /// spends between items is not counted. For that item the stream derives
    /// a child context (named after [`Named::stream`](crate::Named::stream),
    /// if given, and located at the `item_timeout` call) and drops it as soon
    /// as the item arrives; an item that is ready when polled costs nothing.
    ///
    /// The error is read from that child, so [`Error::is_own`] tells the two
    /// ends apart:
    ///
    /// - `is_own()` is true: the item's own limit fired. The context is
    ///   intact and **the stream goes on**: polling again waits for the same
    ///   item, with a fresh limit. Return, `break` or `?` to stop instead.
    /// - `is_own()` is false: the context's budget ran out or it was canceled
    ///   from above. The stream has ended.
    ///
    /// When the item's limit and the context's deadline fall on the same
    /// instant, the context's counts. Without an item limit, the error is the
    /// one [`Context::err`] reports for the stream's context, and the stream
    /// always ends after it.
    ///
    /// # Ordering
    ///
    /// Each poll first checks the stream's context (a few atomic loads and a
    /// clock read): once it has ended, no further item is taken, even from a
    /// stream that is always ready. Then the inner stream is polled: an item
    /// that is ready is delivered even if its own limit has passed, since the
    /// limit bounds waiting, not work already done.
    ///
    /// # Cancel safety
    ///
    /// [`poll_next`](Stream::poll_next) is cancel safe if the inner stream's
    /// is: an item is only ever taken from the inner stream to be returned.
    /// So `next()` fits a `tokio::select!` loop when the inner stream is, for
    /// example, a channel receiver.
    ///
    /// # Panics
    ///
    /// Waiting for a context with a deadline, or for an item with a limit,
    /// needs a Tokio runtime with time enabled, as [`Done`](crate::future::Done) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _cancel) = Context::background()
    ///     .named("request")
    ///     .child_with_timeout(Duration::from_secs(60));
    /// let (tx, mut rx) = tokio::sync::mpsc::channel::<&str>(8);
    /// let socket = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    /// tokio::spawn(async move {
    ///     tx.send("hello").await.unwrap();
    ///     tokio::time::sleep(Duration::from_secs(30)).await; // the peer stalls
    ///     tx.send("world").await.unwrap();
    /// });
    ///
    /// let chunks = request
    ///     .named("chunk")
    ///     .stream(socket)
    ///     .item_timeout(Duration::from_secs(10));
    /// let mut chunks = std::pin::pin!(chunks);
    ///
    /// assert_eq!(chunks.next().await.unwrap().unwrap(), "hello");
    /// let err = chunks.next().await.unwrap().unwrap_err();
    /// assert!(err.is_own(), "the chunk's 10s ran out, the request's 60s did not");
    /// assert_eq!(err.context_name(), Some("chunk"));
    /// assert!(err.to_string().starts_with(r#"deadline of "chunk" (10s, set at "#));
    /// # }
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct ContextStream<S> {
        #[pin]
        inner: S,
        ctx: Context,
        name: Option<Cow<'static, str>>,
        item_limit: Option<ItemLimit>,
        // The child derived for the item being waited for, if any.
        item: Option<Context>,
        // Waits on `item` with an item limit, on `ctx` without one.
        #[pin]
        wait: Wait,
        terminated: bool,
    }
}

impl<S> ContextStream<S> {
    pub(crate) fn new(ctx: Context, name: Option<Cow<'static, str>>, inner: S) -> Self {
        ContextStream {
            inner,
            ctx,
            name,
            item_limit: None,
            item: None,
            wait: Wait::new(),
            terminated: false,
        }
    }

    /// Gives each item at most `limit`, or what is left of the context if
    /// that is less. See [Per-item limit](Self#per-item-limit).
    ///
    /// The per-item contexts record the location of this call, so an error
    /// reads `deadline of "chunk" (500ms, set at src/x.rs:10) exceeded`, where
    /// line 10 is where the limit was written. Calling it again replaces the
    /// limit. [`Duration::ZERO`] fails every item that is not ready when first
    /// polled; a limit too large to represent ([`Duration::MAX`]) adds none.
    ///
    /// After an item's limit fires the stream goes on, so a consumer that
    /// skips errors and polls again under a zero or near-zero limit spins
    /// without yielding: stop at the first error, or pick a real limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let socket = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    /// let chunks = Context::background().stream(socket);
    /// let chunks = chunks.item_timeout(Duration::from_millis(500));
    /// let set_at = line!() - 1;
    /// let mut chunks = std::pin::pin!(chunks);
    ///
    /// tx.send(1).unwrap();
    /// assert_eq!(chunks.next().await.unwrap().unwrap(), 1);
    /// let err = chunks.next().await.unwrap().unwrap_err();
    /// assert!(err.is_own() && err.is_deadline_exceeded());
    /// assert_eq!(err.location().line(), set_at, "where the limit was set");
    ///
    /// tx.send(2).unwrap();
    /// assert_eq!(chunks.next().await.unwrap().unwrap(), 2, "the stream goes on");
    /// # }
    /// ```
    #[track_caller]
    pub fn item_timeout(mut self, limit: Duration) -> Self {
        self.item_limit = Some(ItemLimit {
            timeout: limit,
            location: Location::caller(),
        });
        // Whatever was being waited on belongs to the old setting.
        self.item = None;
        self.wait = Wait::new();
        self
    }

    /// The context the stream runs under.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// let stream = ctx.stream(futures::stream::iter([1, 2, 3]));
    /// cancel.cancel();
    /// assert!(stream.context().is_done());
    /// ```
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The inner stream.
    ///
    /// ```
    /// use futures::Stream;
    /// use tokio_ctx::Context;
    ///
    /// let stream = Context::background().stream(futures::stream::iter([1, 2, 3]));
    /// assert_eq!(stream.get_ref().size_hint(), (3, Some(3)));
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner stream, mutably. Taking items from it directly bypasses the
    /// context and the item limit.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut stream = Context::background().stream(futures::stream::iter([1, 2, 3]));
    /// assert_eq!(stream.get_mut().next().await, Some(1), "skip the header");
    /// let rest: Vec<_> = stream.map(Result::unwrap).collect().await;
    /// assert_eq!(rest, [2, 3]);
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The pinned inner stream. Taking items from it directly bypasses the
    /// context and the item limit; since `Pin<&mut S>` is a stream too, this
    /// is how to go on reading after the context ended, under another one.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let socket = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    /// let (request, cancel) = Context::background().child();
    /// let mut chunks = std::pin::pin!(request.stream(socket));
    /// cancel.cancel();
    /// assert!(chunks.next().await.unwrap().unwrap_err().is_canceled());
    /// assert!(chunks.next().await.is_none());
    ///
    /// // Drain what is left under a context of its own.
    /// tx.send("last words").unwrap();
    /// drop(tx);
    /// let cleanup = Context::background();
    /// let rest: Vec<_> = cleanup.stream(chunks.get_pin_mut()).map(Result::unwrap).collect().await;
    /// assert_eq!(rest, ["last words"]);
    /// # }
    /// ```
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().inner
    }

    /// Unwraps the inner stream. Only possible before the stream is pinned
    /// for polling; afterwards use [`get_pin_mut`](Self::get_pin_mut).
    ///
    /// ```
    /// use futures::Stream;
    /// use tokio_ctx::Context;
    ///
    /// let stream = Context::background().stream(futures::stream::iter(["a", "b"]));
    /// let inner = stream.into_inner();
    /// assert_eq!(inner.size_hint(), (2, Some(2)));
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Stream> Stream for ContextStream<S> {
    type Item = Result<S::Item, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.terminated {
            return Poll::Ready(None);
        }
        if let Some(err) = this.ctx.err() {
            // Read through a fresh item child when items have limits, so that
            // `is_own()` is false here exactly as when the wait below sees it.
            let err = match this.item_limit {
                Some(limit) => {
                    let timeout = Limit::Timeout(limit.timeout);
                    let (item, _) = this.ctx.derive(this.name.clone(), timeout, limit.location);
                    item.err().unwrap_or(err)
                }
                None => err,
            };
            *this.terminated = true;
            *this.item = None;
            this.wait.set(Wait::new());
            return Poll::Ready(Some(Err(err)));
        }
        match this.inner.poll_next(cx) {
            Poll::Ready(Some(item)) => {
                // The item arrived: drop its child, its waker registration
                // and its timer. Without an item limit the wait is on the
                // stream's context and is kept for the next item.
                if this.item.take().is_some() {
                    this.wait.set(Wait::new());
                }
                return Poll::Ready(Some(Ok(item)));
            }
            Poll::Ready(None) => {
                *this.terminated = true;
                *this.item = None;
                this.wait.set(Wait::new());
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }

        let waiting_on = match this.item_limit {
            None => &*this.ctx,
            Some(limit) => {
                let (ctx, name) = (&*this.ctx, &*this.name);
                // The item's clock starts now, at its first `Pending`. The
                // handle is not needed: nothing else sees the child.
                this.item.get_or_insert_with(|| {
                    let timeout = Limit::Timeout(limit.timeout);
                    ctx.derive(name.clone(), timeout, limit.location).0
                })
            }
        };
        let err = match this.wait.as_mut().poll_wait(waiting_on, cx) {
            Poll::Ready(err) => err,
            Poll::Pending => return Poll::Pending,
        };
        // An item child is never canceled through its own handle, so an
        // error it owns is its deadline: the item limit fired, the stream's
        // context is intact, and the next poll starts a fresh limit.
        let item_limit_fired =
            this.item_limit.is_some() && err.is_own() && err.is_deadline_exceeded();
        *this.item = None;
        this.wait.set(Wait::new());
        if !item_limit_fired {
            *this.terminated = true;
        }
        Poll::Ready(Some(Err(err)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.terminated {
            return (0, Some(0));
        }
        // The context may end the stream early, adding one error.
        let upper = match self.item_limit {
            // Every item may time out any number of times.
            Some(_) => None,
            None => self.inner.size_hint().1.and_then(|n| n.checked_add(1)),
        };
        (0, upper)
    }
}

impl<S: Stream> FusedStream for ContextStream<S> {
    fn is_terminated(&self) -> bool {
        self.terminated
    }
}

impl<S> fmt::Debug for ContextStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextStream")
            .field("context", &self.ctx)
            .field("name", &self.name)
            .field("item_timeout", &self.item_limit.map(|limit| limit.timeout))
            .field("waiting_on_item", &self.item.is_some())
            .field("terminated", &self.terminated)
            .finish_non_exhaustive()
    }
}

/// **Streams**: a stream under the context, with a limit per item.
impl Context {
    /// Runs `stream` under this context: it ends when the context does, and
    /// with [`ContextStream::item_timeout`] each item gets a limit of its
    /// own. See [`ContextStream`].
    ///
    /// ```
    /// use futures::StreamExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, cancel) = Context::background().child();
    /// let numbers = futures::stream::iter([1, 2]).chain(futures::stream::pending());
    /// let mut numbers = std::pin::pin!(request.stream(numbers));
    ///
    /// assert_eq!(numbers.next().await.unwrap().unwrap(), 1);
    /// assert_eq!(numbers.next().await.unwrap().unwrap(), 2);
    /// cancel.cancel_with("client went away");
    /// let err = numbers.next().await.unwrap().unwrap_err();
    /// assert_eq!(err.cause().unwrap().to_string(), "client went away");
    /// assert!(numbers.next().await.is_none(), "ended");
    /// # }
    /// ```
    pub fn stream<S: Stream>(&self, stream: S) -> ContextStream<S> {
        ContextStream::new(self.clone(), None, stream)
    }
}
