//! [`Named`]: a derivation with a name.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::future::Timeout;

/// A derivation that will carry a name, made by [`Context::named`].
///
/// It offers the same derivations as [`Context`]; the name shows in errors
/// ([`Error::context_name`](crate::Error::context_name), `Display`) and in
/// `tracing` events in place of the call site.
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let request = Context::background();
/// let err = request
///     .named("receive chunk")
///     .with_timeout(Duration::from_secs(10), |_ctx| std::future::pending::<()>())
///     .await
///     .unwrap_err();
/// assert_eq!(err.context_name(), Some("receive chunk"));
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a name does nothing until a context is derived with it"]
pub struct Named<'a> {
    parent: &'a Context,
    name: Cow<'static, str>,
}

impl<'a> Named<'a> {
    pub(crate) fn new(parent: &'a Context, name: Cow<'static, str>) -> Self {
        Named { parent, name }
    }

    /// The context the derivation starts from.
    pub(crate) fn parent(&self) -> &'a Context {
        self.parent
    }

    /// The name it will carry.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// [`Context::child`] with this name.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().named("job").child();
    /// cancel.cancel();
    /// assert_eq!(ctx.err().unwrap().context_name(), Some("job"));
    /// ```
    #[track_caller]
    pub fn child(self) -> (Context, CancelHandle) {
        self.parent
            .derive(Some(self.name), Limit::None, Location::caller())
    }

    /// [`Context::child_with_deadline`] with this name.
    ///
    /// ```
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().named("batch").child_with_deadline(Instant::now());
    /// assert_eq!(ctx.err().unwrap().context_name(), Some("batch"));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_deadline(self, deadline: Instant) -> (Context, CancelHandle) {
        self.parent.derive(
            Some(self.name),
            Limit::Deadline(deadline),
            Location::caller(),
        )
    }

    /// [`Context::child_with_wall_deadline`] with this name.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background()
    ///     .named("nightly report")
    ///     .child_with_wall_deadline(SystemTime::UNIX_EPOCH);
    /// assert_eq!(ctx.err().unwrap().context_name(), Some("nightly report"));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_wall_deadline(self, deadline: SystemTime) -> (Context, CancelHandle) {
        self.parent
            .derive(Some(self.name), Limit::wall(deadline), Location::caller())
    }

    /// [`Context::child_with_timeout`] with this name.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().named("poll").child_with_timeout(Duration::ZERO);
    /// assert_eq!(ctx.err().unwrap().context_name(), Some("poll"));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_timeout(self, timeout: Duration) -> (Context, CancelHandle) {
        self.parent
            .derive(Some(self.name), Limit::Timeout(timeout), Location::caller())
    }

    /// [`Context::with_timeout`] with this name.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let out = Context::background()
    ///     .named("lookup")
    ///     .with_timeout(Duration::from_secs(1), |_ctx| async { 42 })
    ///     .await;
    /// assert_eq!(out.unwrap(), 42);
    /// # }
    /// ```
    #[track_caller]
    pub fn with_timeout<F, Fut>(self, timeout: Duration, f: F) -> Timeout<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        self.parent.step(
            Some(self.name),
            Limit::Timeout(timeout),
            Location::caller(),
            f,
        )
    }

    /// [`Context::with_deadline`] with this name.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .named("flush")
    ///     .with_deadline(Instant::now(), |_ctx| std::future::pending::<()>())
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.context_name(), Some("flush"));
    /// # }
    /// ```
    #[track_caller]
    pub fn with_deadline<F, Fut>(self, deadline: Instant, f: F) -> Timeout<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        self.parent.step(
            Some(self.name),
            Limit::Deadline(deadline),
            Location::caller(),
            f,
        )
    }

    /// [`Context::stream`] with this name for the per-item contexts that
    /// [`item_timeout`](crate::ContextStream::item_timeout) derives, so an
    /// item that takes too long is reported as
    /// `deadline of "chunk" (500ms, set at src/x.rs:10) exceeded`. Without an
    /// item limit the name is not used.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let chunks = Context::background()
    ///     .named("chunk")
    ///     .stream(futures::stream::pending::<Vec<u8>>())
    ///     .item_timeout(Duration::from_millis(500));
    /// let err = std::pin::pin!(chunks).next().await.unwrap().unwrap_err();
    /// assert_eq!(err.context_name(), Some("chunk"));
    /// assert!(err.to_string().starts_with(r#"deadline of "chunk" (500ms, set at "#));
    /// # }
    /// ```
    pub fn stream<S: futures::Stream>(self, stream: S) -> crate::ContextStream<S> {
        crate::ContextStream::new(self.parent.clone(), Some(self.name), stream)
    }
}
