//! [`Context::current`]: the context of the running combinator.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;

use crate::context::Context;

tokio::task_local! {
    static CURRENT: Context;
}

/// Wraps `fut` so that `ctx` is current while it is polled.
pub(crate) fn scope<F: Future>(ctx: Context, fut: F) -> TaskLocalFuture<Context, F> {
    CURRENT.scope(ctx, fut)
}

impl Context {
    /// The context of the innermost combinator ([`run`](Context::run),
    /// [`with_timeout`](Context::with_timeout), …) or
    /// [`attach`](Context::attach) running on this task; [`Context::background`]
    /// outside any.
    ///
    /// For code that cannot take a `Context` argument: a trait method, a
    /// callback, a library layer. Passing `ctx` explicitly is still the
    /// clearest; both see the same budget.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// async fn fetch() -> Option<Duration> {
    ///     Context::current().remaining()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// assert_eq!(fetch().await, None, "background outside any combinator");
    /// let left = Context::background()
    ///     .with_timeout(Duration::from_secs(3), |_ctx| fetch())
    ///     .await
    ///     .unwrap();
    /// assert_eq!(left, Some(Duration::from_secs(3)));
    /// # }
    /// ```
    pub fn current() -> Context {
        CURRENT.try_with(Context::clone).unwrap_or_default()
    }

    /// Runs `fut` with this context as [`current`](Context::current), and
    /// nothing more: unlike [`run`](Context::run), the future is not stopped
    /// when the context ends.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// struct User(&'static str);
    /// let ctx = Context::background().with_value(User("ada"));
    /// let name = ctx
    ///     .attach(async { Context::current().value::<User>().map(|u| u.0) })
    ///     .await;
    /// assert_eq!(name, Some("ada"));
    /// # }
    /// ```
    pub fn attach<F: Future>(&self, fut: F) -> Attached<F> {
        Attached {
            inner: scope(self.clone(), fut),
        }
    }

    /// Calls `f` with this context as [`current`](Context::current), for
    /// synchronous code such as the body of a `spawn_blocking` closure.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// let stopped = ctx.attach_sync(|| Context::current().is_done());
    /// assert!(stopped);
    /// ```
    pub fn attach_sync<R>(&self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self.clone(), f)
    }
}

pin_project! {
    /// A future running with a context as [`Context::current`], made by
    /// [`Context::attach`].
    ///
    /// It completes exactly when the inner future does; polling it after
    /// that panics, as polling the inner future would.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// // Unlike `run`, `attach` does not stop the future: it only sets the context.
    /// let seen = ctx.attach(async { Context::current().is_done() }).await;
    /// assert!(seen);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Attached<F> {
        #[pin]
        inner: TaskLocalFuture<Context, F>,
    }
}

impl<F: Future> Future for Attached<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

impl<F> std::fmt::Debug for Attached<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached").finish_non_exhaustive()
    }
}
