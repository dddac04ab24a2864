//! [`TaskHandle`]: one task under its own child context.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use tokio::task::JoinHandle;

use super::guard::{TaskGuard, ABORTED};
use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::core::Cause;
use crate::error::{Error, Reason};

/// The cause left on a task whose handle was dropped without `detach`.
static HANDLE_DROPPED: Reason = Reason::HandleDropped;

/// **Tasks: one at a time**, async or blocking, under a child.
impl Context {
    /// Spawns the future made by `f` as a Tokio task under a child of this
    /// context.
    ///
    /// The task stops (its future is dropped at its next poll) when the child
    /// ends: when this context ends, when [`TaskHandle::cancel`] is called,
    /// or when the handle is dropped. Call [`TaskHandle::detach`] to let it
    /// run on its own, still bounded by this context. Awaiting the handle
    /// gives the output, or the child's error if the task was stopped first.
    ///
    /// # Panics
    ///
    /// Panics outside a Tokio runtime, as `tokio::spawn` does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, cancel) = Context::background().child();
    /// let quick = request.spawn(|_ctx| async { 2 + 2 });
    /// let slow = request.spawn(|_ctx| tokio::time::sleep(Duration::from_secs(60)));
    /// assert_eq!(quick.await.unwrap(), 4);
    /// cancel.cancel_with("client left");
    /// assert_eq!(slow.await.unwrap_err().cause().unwrap().to_string(), "client left");
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, Fut>(&self, f: F) -> TaskHandle<Fut::Output>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_at(None, Location::caller(), f)
    }

    /// [`spawn`](Self::spawn) with the task's context named `name`, derived
    /// at `location`.
    pub(crate) fn spawn_at<F, Fut>(
        &self,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
        f: F,
    ) -> TaskHandle<Fut::Output>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let (child, handle) = self.derive(name, Limit::None, location);
        let run = child.run(crate::future::make_under(&child, f));
        let guard = TaskGuard::new(handle.clone());
        let join = tokio::spawn(async move {
            let out = run.await;
            guard.finished();
            out
        });
        TaskHandle::new(join, child, handle)
    }

    /// Runs `f` on Tokio's blocking pool under a child of this context; `f`
    /// receives the child (also [`current`](Context::current) there) and
    /// should check it ([`Context::check`], [`Context::is_done`]) between
    /// units of work: blocking code cannot be interrupted from outside.
    ///
    /// If the child has ended before `f` starts, `f` does not run and the
    /// handle resolves to the child's error.
    ///
    /// # Panics
    ///
    /// Panics outside a Tokio runtime, as `tokio::task::spawn_blocking` does.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// let sum = ctx.spawn_blocking(|ctx| {
    ///     let mut sum = 0u64;
    ///     for i in 0..1_000_000u64 {
    ///         if i % 1024 == 0 && ctx.is_done() {
    ///             break;
    ///         }
    ///         sum += i;
    ///     }
    ///     sum
    /// });
    /// assert_eq!(sum.await.unwrap(), 499_999_500_000);
    /// cancel.cancel();
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> TaskHandle<R>
    where
        F: FnOnce(Context) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_blocking_at(None, Location::caller(), f)
    }

    /// [`spawn_blocking`](Self::spawn_blocking) with the task's context
    /// named `name`, derived at `location`.
    pub(crate) fn spawn_blocking_at<F, R>(
        &self,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
        f: F,
    ) -> TaskHandle<R>
    where
        F: FnOnce(Context) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (child, handle) = self.derive(name, Limit::None, location);
        let ctx = child.clone();
        let guard = TaskGuard::new(handle.clone());
        let join = tokio::task::spawn_blocking(move || {
            let out = match ctx.err() {
                Some(err) => Err(err),
                None => Ok(ctx.attach_sync(|| f(ctx.clone()))),
            };
            guard.finished();
            out
        });
        TaskHandle::new(join, child, handle)
    }
}

/// A task spawned by [`Context::spawn`] or [`Context::spawn_blocking`].
///
/// Awaiting it gives `Ok(output)`, or `Err` with the task's context error
/// when the task was stopped before it finished. Dropping it cancels the
/// task, unless it was [detached](Self::detach): no task runs on in the
/// background by accident.
///
/// # Cancel safety
///
/// Awaiting is cancel safe: the output stays in the task until the handle
/// is polled again; but dropping the handle stops the task.
///
/// # Panics
///
/// If the task panicked, awaiting the handle resumes the panic.
///
/// ```
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let task = Context::background().spawn(|_ctx| std::future::pending::<()>());
/// let ctx = task.context().clone();
/// drop(task);
/// assert!(ctx.is_done(), "dropping the handle stopped the task");
/// # }
/// ```
#[derive(Debug)]
#[must_use = "dropping a TaskHandle cancels its task; call `detach` to let it run"]
pub struct TaskHandle<T> {
    /// `None` only once detached, which consumes the handle.
    join: Option<JoinHandle<Result<T, Error>>>,
    ctx: Context,
    cancel: Option<CancelHandle>,
}

impl<T> TaskHandle<T> {
    fn new(join: JoinHandle<Result<T, Error>>, ctx: Context, cancel: CancelHandle) -> Self {
        TaskHandle {
            join: Some(join),
            ctx,
            cancel: Some(cancel),
        }
    }

    /// The task's context.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task = Context::background().spawn(|_ctx| std::future::pending::<()>());
    /// assert!(!task.context().is_done());
    /// task.cancel();
    /// assert!(task.context().is_done());
    /// # }
    /// ```
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Cancels the task's context: the task's future is dropped at its next
    /// poll (a blocking closure sees it on its next check).
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task = Context::background().spawn(|_ctx| std::future::pending::<()>());
    /// task.cancel();
    /// assert!(task.await.unwrap_err().is_canceled());
    /// # }
    /// ```
    pub fn cancel(&self) {
        if let Some(cancel) = &self.cancel {
            cancel.cancel();
        }
    }

    /// Cancels the task's context with `cause`.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task = Context::background().spawn(|_ctx| std::future::pending::<()>());
    /// task.cancel_with("no longer needed");
    /// assert_eq!(task.await.unwrap_err().cause().unwrap().to_string(), "no longer needed");
    /// # }
    /// ```
    pub fn cancel_with<E>(&self, cause: E)
    where
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        if let Some(cancel) = &self.cancel {
            cancel.cancel_with(cause);
        }
    }

    /// True once the task has finished.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task = Context::background().spawn(|_ctx| std::future::pending::<()>());
    /// assert!(!task.is_finished());
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.join.as_ref().map_or(true, JoinHandle::is_finished)
    }

    /// Lets the task run on after the handle is dropped, bounded by its
    /// context (which still ends with the context it was spawned from).
    /// Gives back Tokio's join handle.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let join = Context::background().spawn(|_ctx| async { "still ran" }).detach();
    /// assert_eq!(join.await.unwrap().unwrap(), "still ran");
    /// # }
    /// ```
    pub fn detach(mut self) -> JoinHandle<Result<T, Error>> {
        self.cancel = None;
        match self.join.take() {
            Some(join) => join,
            // Only `detach` takes the join handle, and it consumes the handle.
            None => unreachable!("a TaskHandle keeps its join handle until detached"),
        }
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let Some(join) = self.join.as_mut() else {
            return Poll::Pending;
        };
        match Pin::new(join).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(out)) => Poll::Ready(out),
            Poll::Ready(Err(err)) => match err.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Aborted from outside (a runtime shutting down): report the
                // task's context, ended now if it had not yet.
                Err(_) => {
                    if let Some(cancel) = &self.cancel {
                        cancel.cancel_for(Cause::Reason(&ABORTED));
                    }
                    Poll::Ready(Err(self
                        .ctx
                        .err()
                        .unwrap_or_else(|| Error::canceled_for(&ABORTED))))
                }
            },
        }
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel_for(Cause::Reason(&HANDLE_DROPPED));
        }
    }
}
