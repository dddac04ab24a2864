//! [`Context::scope`]: a group of tasks that never outlives its scope.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::task::AtomicWaker;
use futures::StreamExt;
use pin_project_lite::pin_project;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::graceful::{Grace, Graceful};
use super::guard::TaskGuard;
use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::core::Cause;
use crate::error::{Error, Reason, ScopeError, FINISHED, SIBLING_FAILED};
use crate::future::wait::Wait;
use crate::loom::lock_std as lock;

static BODY_FAILED: Reason = Reason("the scope's body failed");
static SIBLING_PANICKED: Reason = Reason("a sibling panicked");
static TASK_FAILED: Reason = Reason("the task failed; its error went to the scope");
static SCOPE_CLOSED: Reason = Reason("the scope had already finished");

/// How long the body and the tasks get to stop on their own once their
/// scope is canceled, before their futures are dropped.
const DEFAULT_GRACE: Duration = Duration::from_secs(1);

impl Context {
    /// Runs a group of tasks under a child of this context (asyncio's
    /// `TaskGroup`, Go's `errgroup`, Kotlin's `coroutineScope`).
    ///
    /// `f` receives a [`Scope`] to spawn tasks with, and returns the body
    /// future, which runs on the current task with the scope's context as
    /// [`current`](Context::current). The scope resolves only after the body
    /// and every task have finished:
    ///
    /// - `Ok` with the body's value if nothing failed;
    /// - by default, the first failure (of the body or a task) cancels the
    ///   scope's context, so every other task stops, and the scope resolves
    ///   to a [`ScopeError`] with every error that happened
    ///   ([`collect_all`](ScopeFuture::collect_all) lets the others finish
    ///   instead);
    /// - if this context ends before the scope has finished, the tasks stop
    ///   and the error carries this context's error, even when every task
    ///   then returned cleanly: their work may be incomplete;
    /// - a panic in a task cancels the others and is resumed once they have
    ///   stopped.
    ///
    /// Stopping is cooperative first. Each task receives its context (also
    /// its [`current`](Context::current)) and should observe it, with
    /// [`Context::done`], [`Context::run`] or a check between steps, so that
    /// it can stop cleanly: the body and every task keep running for a grace
    /// period after the scope's context ends (one second by default, see
    /// [`grace_period`](ScopeFuture::grace_period)); then their futures are
    /// dropped, as an abort would. Dropping the scope future cancels the
    /// tasks too, and each still stops within the same grace period, so no
    /// task outlives its scope by more. (A task stuck in blocking code cannot
    /// be stopped by Tokio at all: it ends the scope when it returns.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let sizes = Context::background()
    ///     .scope(|scope| async move {
    ///         let a = scope.spawn(|_ctx| async { Ok::<_, std::io::Error>(3) });
    ///         let b = scope.spawn(|_ctx| async {
    ///             tokio::time::sleep(Duration::from_millis(10)).await;
    ///             Ok(4)
    ///         });
    ///         Ok(a.await.unwrap() + b.await.unwrap())
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(sizes, 7);
    /// # }
    /// ```
    #[track_caller]
    pub fn scope<F, Fut, R, E>(&self, f: F) -> ScopeFuture<Fut, R, E>
    where
        F: FnOnce(Scope<E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: Send + 'static,
    {
        let (ctx, cancel) = self.derive(None, Limit::None, Location::caller());
        let shared = Arc::new(Shared {
            ctx: ctx.clone(),
            cancel,
            state: Mutex::new(State {
                incoming: Vec::new(),
                closed: false,
            }),
            waker: AtomicWaker::new(),
            grace: Grace::new(DEFAULT_GRACE),
        });
        // The guard exists before `f` runs: if `f` panics after spawning,
        // unwinding drops it, which cancels the scope and so stops the tasks.
        let guard = ScopeGuard {
            shared: Arc::clone(&shared),
        };
        let body = f(Scope {
            shared: Arc::downgrade(&shared),
            ctx: ctx.clone(),
        });
        ScopeFuture {
            guard,
            body: Some(Graceful::new(ctx, body, Arc::clone(&shared.grace))),
            running: FuturesUnordered::new(),
            value: None,
            errors: Vec::new(),
            ended: None,
            panic: None,
            parent: self.clone(),
            parent_wait: Wait::new(),
            collect_all: false,
        }
    }
}

/// How a task of a scope ended, as the scope sees it.
enum TaskEnd<E> {
    Done,
    Failed(E),
    Stopped,
}

/// What `spawn` and the scope future share, under [`Shared::state`]'s lock.
/// Only bookkeeping happens under it: tasks are spawned before it is taken
/// and join handles dropped after it is released, so that no user code (a
/// future that a shutting-down runtime drops inside `spawn`) runs under it.
struct State<E> {
    /// Tasks spawned since the scope future last looked; it takes them.
    incoming: Vec<JoinHandle<TaskEnd<E>>>,
    /// Set once the scope has finished or was dropped: nothing may join.
    closed: bool,
}

struct Shared<E> {
    ctx: Context,
    cancel: CancelHandle,
    state: Mutex<State<E>>,
    /// The scope future's waker, so that a task spawned from elsewhere (a
    /// task holding a clone of the [`Scope`]) gets joined.
    waker: AtomicWaker,
    /// Shared with the tasks, which apply it themselves.
    grace: Arc<Grace>,
}

/// The handle a scope's body uses to spawn tasks into the scope; cheap to
/// clone, and may be moved into the tasks themselves.
///
/// ```
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let total = Context::background()
///     .scope(|scope| async move {
///         let inner = scope.clone();
///         let outer = scope.spawn(move |_ctx| async move {
///             // A task may spawn siblings; the scope waits for them too.
///             let sibling = inner.spawn(|_ctx| async { Ok::<_, ()>(2) });
///             Ok(sibling.await.unwrap() * 10)
///         });
///         Ok(outer.await.unwrap())
///     })
///     .await
///     .unwrap();
/// assert_eq!(total, 20);
/// # }
/// ```
pub struct Scope<E> {
    // Weak: tasks hold clones of the scope, and the scope holds its tasks.
    // A strong reference would make a cycle that keeps both alive.
    shared: Weak<Shared<E>>,
    ctx: Context,
}

impl<E> Clone for Scope<E> {
    fn clone(&self) -> Self {
        Scope {
            shared: Weak::clone(&self.shared),
            ctx: self.ctx.clone(),
        }
    }
}

impl<E: Send + 'static> Scope<E> {
    /// The scope's context: every task's context is a child of it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(5));
    /// let left = request
    ///     .scope(|scope| async move { Ok::<_, ()>(scope.context().remaining()) })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(left, Some(Duration::from_secs(5)));
    /// # }
    /// ```
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Spawns the future made by `f` as a Tokio task of this scope, under a
    /// child of the scope's context.
    ///
    /// `Ok(value)` goes to the returned [`ScopedHandle`]; `Err(error)` goes
    /// to the scope (and, by default, cancels the other tasks). A task
    /// spawned into a scope that is already canceled starts canceled: its
    /// future is never polled. A task spawned after the scope finished is
    /// not spawned at all; its handle reports the scope as finished.
    ///
    /// # Panics
    ///
    /// Panics outside a Tokio runtime, as `tokio::spawn` does.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .scope(|scope| async move {
    ///         scope.spawn(|_ctx| async { Err::<(), _>("first") });
    ///         let late = scope.spawn(|_ctx| async { Ok::<u8, _>(1) });
    ///         // The failure canceled the scope; the late task never ran.
    ///         Ok(late.await.is_err())
    ///     })
    ///     .await;
    /// assert_eq!(err.unwrap_err().errors(), &["first"]);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, Fut, T>(&self, f: F) -> ScopedHandle<T>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let (child, handle) = self.ctx.derive(None, Limit::None, Location::caller());
        let (tx, rx) = oneshot::channel();
        let scoped = ScopedHandle {
            rx,
            ctx: child.clone(),
        };
        let Some(shared) = self.shared.upgrade().filter(|shared| !shared.is_closed()) else {
            handle.cancel_for(Cause::Reason(&SCOPE_CLOSED));
            return scoped;
        };
        // Make the future before anything else: `f` may spawn siblings.
        let fut = f(child.clone());
        let guard = TaskGuard::new(handle.clone());
        let grace = Arc::clone(&shared.grace);
        let task = async move {
            if child.is_done() {
                guard.finished();
                return TaskEnd::Stopped;
            }
            match Graceful::new(child, fut, grace).await {
                Ok(Ok(value)) => {
                    let _ = tx.send(value);
                    guard.finished();
                    TaskEnd::Done
                }
                Ok(Err(error)) => {
                    guard.finish(&TASK_FAILED);
                    TaskEnd::Failed(error)
                }
                Err(_) => {
                    guard.finished();
                    TaskEnd::Stopped
                }
            }
        };
        // Spawned with no lock held: a runtime that is shutting down drops
        // the task's future inside `spawn`, and that drop may spawn again.
        let join = tokio::spawn(task);
        let mut state = lock(&shared.state);
        if state.closed {
            // The scope finished meanwhile: the task starts canceled and
            // stops on its own; its join handle is let go.
            drop(state);
            handle.cancel_for(Cause::Reason(&SCOPE_CLOSED));
            drop(join);
            return scoped;
        }
        state.incoming.push(join);
        drop(state);
        shared.waker.wake();
        scoped
    }
}

impl<E> Shared<E> {
    fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }
}

impl<E> fmt::Debug for Scope<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = self
            .shared
            .upgrade()
            .is_some_and(|shared| !shared.is_closed());
        f.debug_struct("Scope")
            .field("ctx", &self.ctx)
            .field("open", &open)
            .finish()
    }
}

/// The value of one task of a scope, made by [`Scope::spawn`].
///
/// Resolves to the task's value, or to its context's error when the task
/// failed (its error went to the scope), was stopped, or panicked. Dropping
/// it does not stop the task: the scope owns its tasks.
///
/// ```
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// Context::background()
///     .scope(|scope| async move {
///         let answer = scope.spawn(|_ctx| async { Ok::<_, ()>(42) });
///         assert_eq!(answer.await.unwrap(), 42);
///         Ok(())
///     })
///     .await
///     .unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct ScopedHandle<T> {
    rx: oneshot::Receiver<T>,
    ctx: Context,
}

impl<T> ScopedHandle<T> {
    /// The task's context.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// Context::background()
    ///     .scope(|scope| async move {
    ///         let task = scope.spawn(|_ctx| async { Ok::<_, ()>(1) });
    ///         let ctx = task.context().clone();
    ///         task.await.unwrap();
    ///         assert!(ctx.is_done(), "a finished task's context has ended");
    ///         Ok::<_, ()>(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

impl<T> Future for ScopedHandle<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(value)) => Poll::Ready(Ok(value)),
            Poll::Ready(Err(_)) => Poll::Ready(Err(self
                .ctx
                .err()
                .unwrap_or_else(|| Error::canceled_for(&TASK_FAILED)))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Closes the scope and stops its tasks when the scope future goes away,
/// finished or not.
struct ScopeGuard<E: Send + 'static> {
    shared: Arc<Shared<E>>,
}

impl<E: Send + 'static> Drop for ScopeGuard<E> {
    fn drop(&mut self) {
        self.shared.cancel.cancel_for(Cause::Reason(&FINISHED));
        let incoming = {
            let mut state = lock(&self.shared.state);
            state.closed = true;
            mem::take(&mut state.incoming)
        };
        // The tasks saw the cancellation; each stops on its own within the
        // grace period (see `Graceful`), so they are let go rather than cut
        // short: dropping a join handle detaches its task.
        drop(incoming);
    }
}

pin_project! {
    /// The future returned by [`Context::scope`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it cancels the scope: the body is dropped at once, and each
    /// task stops within the grace period.
    ///
    /// # Panics
    ///
    /// Resumes the first panic of a task once every task has stopped. Needs
    /// a Tokio runtime with time enabled.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scope = Context::background().scope(|scope| async move {
    ///     scope.spawn(|_ctx| async { Ok::<(), ()>(()) });
    ///     Ok::<_, ()>("done")
    /// });
    /// assert_eq!(scope.await.unwrap(), "done");
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ScopeFuture<Fut, R, E>
    where
        E: Send,
        E: 'static,
    {
        // First, so that it is dropped first: the tasks and the body see the
        // scope canceled before the body is dropped.
        guard: ScopeGuard<E>,
        #[pin]
        body: Option<Graceful<Fut>>,
        // The tasks taken from `State::incoming`; dropping them detaches
        // the tasks, which the guard has canceled by then.
        running: FuturesUnordered<JoinHandle<TaskEnd<E>>>,
        value: Option<R>,
        errors: Vec<E>,
        ended: Option<Error>,
        panic: Option<Box<dyn Any + Send>>,
        parent: Context,
        #[pin]
        parent_wait: Wait,
        collect_all: bool,
    }
}

impl<Fut, R, E: Send + 'static> ScopeFuture<Fut, R, E> {
    /// Lets every task finish even when some fail, collecting every error
    /// (asyncio's `gather(return_exceptions=True)` for tasks). The scope is
    /// still canceled when this context ends or a task panics.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .scope(|scope| async move {
    ///         for i in 0..3 {
    ///             scope.spawn(move |_ctx| async move { if i == 1 { Ok(()) } else { Err(i) } });
    ///         }
    ///         Ok(())
    ///     })
    ///     .collect_all()
    ///     .await
    ///     .unwrap_err();
    /// let mut errors = err.into_errors();
    /// errors.sort();
    /// assert_eq!(errors, vec![0, 2]);
    /// # }
    /// ```
    pub fn collect_all(mut self) -> Self {
        self.collect_all = true;
        self
    }

    /// How long tasks get to stop on their own once the scope is canceled,
    /// before their futures are dropped (one second by default).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let out = Context::background()
    ///     .scope(|_scope| async { Ok::<_, ()>("no tasks") })
    ///     .grace_period(Duration::from_millis(100))
    ///     .await;
    /// assert_eq!(out.unwrap(), "no tasks");
    /// # }
    /// ```
    pub fn grace_period(self, grace: Duration) -> Self {
        self.guard.shared.grace.set(grace);
        self
    }
}

impl<Fut, R, E> Future for ScopeFuture<Fut, R, E>
where
    Fut: Future<Output = Result<R, E>>,
    E: Send + 'static,
{
    type Output = Result<R, ScopeError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared = Arc::clone(&this.guard.shared);
        shared.waker.register(cx.waker());

        // The caller's context ending stops the scope.
        if this.ended.is_none() {
            if let Poll::Ready(err) = this.parent_wait.poll_wait(this.parent, cx) {
                *this.ended = Some(err);
            }
        }

        // The body first: it usually spawns the tasks. Like a task, it may
        // finish on its own for the grace period after the scope is canceled.
        if let Some(body) = this.body.as_mut().as_pin_mut() {
            if let Poll::Ready(out) = body.poll(cx) {
                this.body.set(None);
                match out {
                    Ok(Ok(value)) => *this.value = Some(value),
                    Ok(Err(error)) => {
                        this.errors.push(error);
                        shared.cancel.cancel_for(Cause::Reason(&BODY_FAILED));
                    }
                    // Stopped after the grace period: the scope's context
                    // says why.
                    Err(_) => {}
                }
            }
        }

        // Then every task that finished. The scope is over once the body is
        // and no task is left, checked under the lock that `spawn` takes.
        let mut finished = false;
        loop {
            let incoming = mem::take(&mut lock(&shared.state).incoming);
            this.running.extend(incoming);
            while let Poll::Ready(Some(joined)) = this.running.poll_next_unpin(cx) {
                match joined {
                    Ok(TaskEnd::Failed(error)) => {
                        this.errors.push(error);
                        if !*this.collect_all {
                            shared.cancel.cancel_for(Cause::Reason(&SIBLING_FAILED));
                        }
                    }
                    Ok(TaskEnd::Done | TaskEnd::Stopped) => {}
                    Err(join_error) => {
                        if let Ok(panic) = join_error.try_into_panic() {
                            this.panic.get_or_insert(panic);
                            shared.cancel.cancel_for(Cause::Reason(&SIBLING_PANICKED));
                        }
                    }
                }
            }
            if this.body.is_some() || !this.running.is_empty() {
                break;
            }
            let mut state = lock(&shared.state);
            if state.incoming.is_empty() {
                state.closed = true;
                finished = true;
                break;
            }
            // A task was spawned meanwhile: take it and look again.
        }
        if finished {
            shared.cancel.cancel_for(Cause::Reason(&FINISHED));
            if let Some(panic) = this.panic.take() {
                std::panic::resume_unwind(panic);
            }
            let errors = mem::take(this.errors);
            // The caller's context ending is reported whenever it happened
            // before the scope finished, even if every task then stopped
            // cleanly: their work may be incomplete, and the outer cause has
            // to reach the top (also when a task failed in the same instant).
            if this.ended.is_none() {
                *this.ended = this.parent.err();
            }
            return Poll::Ready(match (this.ended.take(), this.value.take()) {
                (Some(ended), _) => Err(ScopeError::new(errors, Some(ended))),
                (None, Some(value)) if errors.is_empty() => Ok(value),
                (None, _) if !errors.is_empty() => Err(ScopeError::new(errors, None)),
                // The body was dropped without an error of its own: only a
                // canceled scope does that, and its context says why.
                (None, _) => Err(ScopeError::new(
                    errors,
                    Some(
                        shared
                            .ctx
                            .err()
                            .unwrap_or_else(|| Error::canceled_for(&FINISHED)),
                    ),
                )),
            });
        }

        Poll::Pending
    }
}

impl<Fut, R, E: Send + 'static> fmt::Debug for ScopeFuture<Fut, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeFuture")
            .field("ctx", &self.guard.shared.ctx)
            .field("body_running", &self.body.is_some())
            .field("failed", &self.errors.len())
            .field("collect_all", &self.collect_all)
            .field("grace", &self.guard.shared.grace.get())
            .finish()
    }
}
