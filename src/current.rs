//! [`Context::current`]: the context of the running combinator.
//!
//! A thread-local slot holds the context of the future being polled. A
//! [`Scoped`] future moves its context into the slot for the length of each
//! poll (and of its inner future's drop) and moves the previous one back
//! after, which restores whatever was there: what a Tokio task-local does,
//! without the `RefCell` and the `Option` around the value. A swap moves two
//! words and touches no reference count.
//!
//! This runs around every poll of every combinator, so it is on the hot path
//! of `benches/peers.rs` ("with_timeout(1h, ready)", "race of 2"): the slot
//! is a `const`-initialized thread-local of a type without drop glue (a
//! `ManuallyDrop`), which the compiler reaches with one thread-pointer-relative
//! access and no check of a destructor's state. What the slot holds outside
//! any combinator is the background context, which owns nothing; a thread
//! only ever exits with that in it, because every swap is undone on the way
//! out, panics included.
//!
//! # Ending on sight
//!
//! A combinator that gives up on a future it ran under a private child (a
//! race's loser, a step dropped before it finished) cancels the child before
//! dropping the future, so that the future's drop code sees why it is being
//! dropped. When nothing but the combinator holds the child and nothing waits
//! on it, the only way that drop code can see the child is
//! [`Context::current`]; the combinator then records the child and the
//! reason here instead ([`Scoped::drop_future`]), and `current()` cancels the
//! child before handing it out. A cancellation nobody looks at is never
//! made: no clock read, no lock, no allocation for its record, and no move of
//! the process-wide epoch that every other context's next check would pay
//! for.

use std::cell::Cell;
use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use crate::context::Context;
use crate::core::{Cause, Node};
use crate::error::Reason;

thread_local! {
    /// The context of the innermost [`Scoped`] being polled on this thread;
    /// the background context outside any. Never dropped: see the module
    /// notes.
    static CURRENT: Cell<ManuallyDrop<Context>> =
        const { Cell::new(ManuallyDrop::new(Context::background())) };

    /// A private child that is to be canceled with the reason the moment
    /// [`Context::current`] hands it out (see "Ending on sight"), by the
    /// address of its node.
    static ENDING: Cell<Option<(usize, &'static Reason)>> = const { Cell::new(None) };
}

/// Moves `ctx` into the slot and the slot's previous context into `ctx`.
#[inline]
fn swap(ctx: &mut Context) {
    let previous = CURRENT.with(|current| {
        current.replace(ManuallyDrop::new(mem::replace(ctx, Context::background())))
    });
    // `ctx` holds the background context now, which owns nothing:
    // forgetting it skips drop glue that would find nothing to do, twice on
    // every poll of every combinator.
    mem::forget(mem::replace(ctx, ManuallyDrop::into_inner(previous)));
}

/// Runs `f` with `ctx` as current. Meanwhile `ctx` holds the context that was
/// current before; both are swapped back afterwards, even if `f` panics.
#[inline]
fn enter<R>(ctx: &mut Context, f: impl FnOnce() -> R) -> R {
    struct SwapBack<'a>(&'a mut Context);

    impl Drop for SwapBack<'_> {
        #[inline]
        fn drop(&mut self) {
            swap(self.0);
        }
    }

    swap(ctx);
    let _swap_back = SwapBack(ctx);
    f()
}

/// The address by which [`ENDING`] knows a node.
fn address(node: &Arc<Node>) -> usize {
    Arc::as_ptr(node) as usize
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
        #[inline]
        fn drop(this: Pin<&mut Self>) {
            // A future that completed was dropped then: usually nothing to do.
            if this.has_future() {
                this.drop_future(None);
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

    /// True until the future has completed or been dropped.
    pub(crate) fn has_future(&self) -> bool {
        self.fut.is_some()
    }

    /// Drops the future now, with its context current. With `ending`, the
    /// context's node is canceled with that reason if the drop code asks for
    /// [`Context::current`], and only then (see "Ending on sight").
    pub(crate) fn drop_future(self: Pin<&mut Self>, ending: Option<&'static Reason>) {
        let this = self.project();
        let mut fut = this.fut;
        if fut.as_ref().as_pin_ref().is_none() {
            return;
        }
        let marked = match (ending, this.ctx.node()) {
            (Some(reason), Some(node)) => Some((address(node), reason)),
            _ => None,
        };
        let Some(mark) = marked else {
            enter(this.ctx, || fut.set(None));
            return;
        };
        struct Unmark(Option<(usize, &'static Reason)>);

        impl Drop for Unmark {
            fn drop(&mut self) {
                let _ = ENDING.try_with(|ending| ending.set(self.0));
            }
        }

        let _unmark = Unmark(ENDING.with(|ending| ending.replace(Some(mark))));
        enter(this.ctx, || fut.set(None));
    }

    /// Takes the context out once the future is gone, leaving the
    /// background context.
    pub(crate) fn take_context(self: Pin<&mut Self>) -> Context {
        let this = self.project();
        debug_assert!(this.fut.as_ref().as_pin_ref().is_none());
        mem::take(this.ctx)
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    #[inline]
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
        let ctx = CURRENT.with(|current| {
            let ctx = current.take();
            let copy = Context::clone(&ctx);
            current.set(ctx);
            copy
        });
        // Ending on sight (see the module notes): the drop code of a future
        // whose combinator gave up on it asks, so the child ends now.
        if let Some(node) = ctx.node() {
            let ending = ENDING
                .try_with(|ending| match ending.get() {
                    Some((at, reason)) if at == address(node) => {
                        ending.set(None);
                        Some(reason)
                    }
                    _ => None,
                })
                .ok()
                .flatten();
            if let Some(reason) = ending {
                node.cancel(Some(Cause::Reason(reason)));
            }
        }
        ctx
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
