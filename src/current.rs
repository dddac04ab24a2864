//! [`Context::current`]: the context of the running combinator.
//!
//! A thread-local slot holds the context of the future being polled. A
//! [`Scoped`] future swaps its context into the slot for the length of each
//! poll (and of its inner future's drop) and swaps it back after, which
//! restores whatever was there: what a Tokio task-local does, without the
//! `RefCell` and the `Option` around the value. A swap moves three words and
//! touches no reference count.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use crate::context::Context;

thread_local! {
    /// The context of the innermost [`Scoped`] being polled on this thread;
    /// the background context outside any.
    static CURRENT: Cell<Context> = const { Cell::new(Context::background()) };
}

/// Runs `f` with `ctx` as current. Meanwhile `ctx` holds the context that was
/// current before; both are swapped back afterwards, even if `f` panics.
fn enter<R>(ctx: &mut Context, f: impl FnOnce() -> R) -> R {
    struct SwapBack<'a>(&'a mut Context);

    impl Drop for SwapBack<'_> {
        fn drop(&mut self) {
            let _ = CURRENT.try_with(|current| current.swap(Cell::from_mut(self.0)));
        }
    }

    // While the thread is being torn down the slot is gone: run `f` without.
    if CURRENT
        .try_with(|current| current.swap(Cell::from_mut(ctx)))
        .is_err()
    {
        return f();
    }
    let _swap_back = SwapBack(ctx);
    f()
}

pin_project! {
    /// `fut` with `ctx` as [`Context::current`] while it is polled and when
    /// it is dropped.
    pub(crate) struct Scoped<F> {
        // During a poll, the context that was current before.
        ctx: Context,
        // Empty once `fut` has completed: it is dropped right away, while
        // its context is still current.
        #[pin]
        fut: Option<F>,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut fut = this.fut;
            if fut.as_ref().as_pin_ref().is_some() {
                enter(this.ctx, || fut.set(None));
            }
        }
    }
}

impl<F> Scoped<F> {
    pub(crate) fn new(ctx: Context, fut: F) -> Self {
        Scoped {
            ctx,
            fut: Some(fut),
        }
    }

    /// The context the future runs under.
    pub(crate) fn context(&self) -> &Context {
        // Only swapped out during a poll, when nobody else can reach `self`.
        &self.ctx
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut fut = this.fut;
        enter(this.ctx, || {
            let Some(inner) = fut.as_mut().as_pin_mut() else {
                // The documented `# Panics` of every future built on this
                // one, as for any future polled after it completed.
                panic!("a tokio-ctx future was polled after it completed");
            };
            let output = inner.poll(cx);
            if output.is_ready() {
                fut.set(None);
            }
            output
        })
    }
}

/// **The ambient context**: the context of the running combinator.
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
        CURRENT
            .try_with(|current| {
                let ctx = current.take();
                let copy = ctx.clone();
                current.set(ctx);
                copy
            })
            .unwrap_or_default()
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
            inner: Scoped::new(self.clone(), fut),
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
        enter(&mut self.clone(), f)
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
        inner: Scoped<F>,
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
