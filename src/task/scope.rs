//! [`Context::scope`]: a group of tasks that never outlives its scope.

use std::any::Any;
use std::borrow::Cow;
use std::collections::VecDeque;
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
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use super::graceful::{Grace, Graceful};
use super::guard::TaskGuard;
use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::core::Cause;
use crate::error::{Error, Reason, ScopeError, FINISHED, SIBLING_FAILED};
use crate::future::wait::Wait;
use crate::loom::lock_std as lock;

static BODY_FAILED: Reason = Reason::BodyFailed;
static SIBLING_PANICKED: Reason = Reason::SiblingPanicked;
static TASK_FAILED: Reason = Reason::TaskFailed;
static SCOPE_CLOSED: Reason = Reason::ScopeClosed;
static DROPPED_AFTER_GRACE: Reason = Reason::GracePeriodOver;

/// How long the body and the tasks get to stop on their own once their
/// scope is canceled, before their futures are dropped.
const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// **Tasks: a group** (Go's `errgroup`) that never outlives its scope.
impl Context {
    /// Runs a group of tasks under a child of this context: Go's
    /// `errgroup.WithContext`, asyncio's `TaskGroup`, Kotlin's
    /// `coroutineScope`.
    ///
    /// `f` receives a [`Scope`] to spawn tasks with, and returns the body
    /// future, which runs on the current task with the scope's context as
    /// [`current`](Context::current). The scope resolves only after the body
    /// and every task have finished, to what they returned, as `errgroup`'s
    /// `Wait` does:
    ///
    /// - `Ok` with the body's value if nothing failed and nothing was cut
    ///   short. That includes a normal shutdown: when this context ends and
    ///   the body and every task stop by returning `Ok`, the scope is `Ok`.
    /// - By default, the first failure (of the body or a task) cancels the
    ///   scope's context, so every other task stops, and the scope resolves
    ///   to a [`ScopeError`] whose [`first`](ScopeError::first) is that
    ///   failure; errors returned after the scope was canceled (tasks giving
    ///   up because of it) are kept apart
    ///   ([`collect_all`](ScopeFuture::collect_all) lets the others finish
    ///   instead).
    /// - If this context ends and a task fails or has to be cut short, the
    ///   error carries this context's error ([`ScopeError::ended`]), so an
    ///   outer cancellation reaches the top.
    /// - A panic in a task cancels the others and is resumed once they have
    ///   stopped.
    ///
    /// Stopping is cooperative first. Each task receives its context (also
    /// its [`current`](Context::current)) and should observe it, with
    /// [`Context::done`], [`Context::run`] or a check between steps, so that
    /// it can stop cleanly: the body and every task keep running for a grace
    /// period after the scope's context ends (one second by default, see
    /// [`grace_period`](ScopeFuture::grace_period)); then their futures are
    /// dropped, as an abort would, cleanup included, and the scope reports
    /// how many were ([`ScopeError::forced`]). Dropping the scope future
    /// cancels the tasks too, and each still stops within the same grace
    /// period, so no task outlives its scope by more. (A task stuck in
    /// blocking code cannot be stopped by Tokio at all: it ends the scope
    /// when it returns.)
    ///
    /// [`limit`](ScopeFuture::limit) bounds how many tasks run at once
    /// (`errgroup`'s `SetLimit`).
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
        self.scope_at(None, Location::caller(), f)
    }

    /// [`scope`](Self::scope) with the scope's context named `name`, derived
    /// at `location`.
    pub(crate) fn scope_at<F, Fut, R, E>(
        &self,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
        f: F,
    ) -> ScopeFuture<Fut, R, E>
    where
        F: FnOnce(Scope<E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: Send + 'static,
    {
        let (ctx, cancel) = self.derive(name, Limit::None, location);
        let shared = Arc::new(Shared {
            ctx: ctx.clone(),
            cancel,
            state: Mutex::new(State {
                incoming: Vec::new(),
                queued: VecDeque::new(),
                active: 0,
                limit: usize::MAX,
                closed: false,
            }),
            waker: AtomicWaker::new(),
            room: Notify::new(),
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
            late: Vec::new(),
            forced: 0,
            cut: false,
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
    /// `late`: the task's context had already ended when it returned the
    /// error, so it may only have been giving up.
    Failed {
        error: E,
        late: bool,
    },
    /// It never started (the scope was canceled first), or, if `forced`, it
    /// did not stop within the grace period and its future was dropped.
    Stopped {
        forced: bool,
    },
}

type Joined<E> = JoinHandle<TaskEnd<E>>;

/// Starts a queued task: spawns it, with no lock held.
type Start<E> = Box<dyn FnOnce() -> Joined<E> + Send>;

/// What `spawn` and the scope future share, under [`Shared::state`]'s lock.
/// Only bookkeeping happens under it: tasks are spawned before it is taken
/// or after it is released, and join handles and queued tasks are dropped
/// after it is released, so that no user code (a future that a
/// shutting-down runtime drops inside `spawn`, say) runs under it.
struct State<E> {
    /// Tasks spawned since the scope future last looked; it takes them.
    incoming: Vec<Joined<E>>,
    /// Tasks waiting for room under the limit, oldest first.
    queued: VecDeque<Start<E>>,
    /// Tasks spawned or being spawned and not yet joined by the scope.
    active: usize,
    /// At most this many active tasks; `usize::MAX` without a limit.
    limit: usize,
    /// Set once the scope has finished or was dropped: nothing may join.
    closed: bool,
}

impl<E> State<E> {
    fn has_room(&self) -> bool {
        self.active < self.limit && self.queued.is_empty()
    }
}

struct Shared<E> {
    ctx: Context,
    cancel: CancelHandle,
    state: Mutex<State<E>>,
    /// The scope future's waker, so that a task spawned from elsewhere (a
    /// task holding a clone of the [`Scope`]) gets joined.
    waker: AtomicWaker,
    /// Wakes [`Scope::ready`] when a task under the limit finished, or the
    /// scope closed.
    room: Notify,
    /// Shared with the tasks, which apply it themselves.
    grace: Arc<Grace>,
}

/// The handle a scope's body uses to spawn tasks into the scope; cheap to
/// clone, and may be moved into the tasks themselves. It does not keep the
/// scope alive: once the scope has finished, spawning does nothing.
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
    /// child of the scope's context (`errgroup`'s `Go`).
    ///
    /// `Ok(value)` goes to the returned [`ScopedHandle`]; `Err(error)` goes
    /// to the scope (and, by default, cancels the other tasks). A task
    /// spawned into a scope that is already canceled starts canceled: its
    /// future is never polled. A task spawned after the scope finished is
    /// not spawned at all, and `f` is not called; its handle reports the
    /// scope's end.
    ///
    /// Spawning never waits. Under a [`limit`](ScopeFuture::limit), a task
    /// spawned while the limit is reached waits in a queue, in spawn order,
    /// and starts when a running task finishes; await
    /// [`ready`](Self::ready) first to hold the spawner back instead, as
    /// `errgroup`'s `Go` blocks.
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
    /// assert_eq!(err.unwrap_err().first(), Some(&"first"));
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, Fut, T>(&self, f: F) -> ScopedHandle<T>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_at(None, Location::caller(), f)
    }

    /// [`spawn`](Self::spawn) with the task's context named `name`, derived
    /// at `location`.
    pub(crate) fn spawn_at<F, Fut, T>(
        &self,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
        f: F,
    ) -> ScopedHandle<T>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let (child, handle) = self.ctx.derive(name, Limit::None, location);
        let (tx, rx) = oneshot::channel();
        let scoped = ScopedHandle {
            rx,
            ctx: child.clone(),
        };
        let Some(shared) = self.shared.upgrade().filter(|shared| !shared.is_closed()) else {
            handle.cancel_for(Cause::Reason(&SCOPE_CLOSED));
            // The child was born under the scope's ended context and reports
            // that end; the handle says why the task never ran.
            let _ = tx.send(Err(Error::canceled_in(&child, &SCOPE_CLOSED)));
            return scoped;
        };
        // Make the future before anything else: `f` may spawn siblings.
        let fut = crate::future::make_under(&child, f);
        let task = run_task(child, fut, tx, TaskGuard::new(handle.clone()), &shared);
        let start = {
            let mut state = lock(&shared.state);
            if state.closed {
                None
            } else if state.has_room() {
                state.active += 1;
                Some(task)
            } else {
                let queued: Start<E> = Box::new(move || tokio::spawn(task));
                state.queued.push_back(queued);
                return scoped;
            }
        };
        match start {
            Some(task) => shared.start(tokio::spawn(task)),
            None => handle.cancel_for(Cause::Reason(&SCOPE_CLOSED)),
        }
        scoped
    }

    /// Resolves once a task spawned now would start at once: fewer tasks
    /// than the [`limit`](ScopeFuture::limit) run and none is queued, or the
    /// scope has finished (spawning then does nothing). Without a limit it
    /// is ready at once.
    ///
    /// Await it before each [`spawn`](Self::spawn) to hold a producer back
    /// the way `errgroup`'s `Go` blocks under `SetLimit`, instead of queueing
    /// every task it makes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (jobs, mut inbox) = tokio::sync::mpsc::channel::<u64>(16);
    /// for ms in [30, 10, 20, 40] {
    ///     jobs.send(ms).await.unwrap();
    /// }
    /// drop(jobs);
    /// let handled = Context::background()
    ///     .scope(|scope| async move {
    ///         let mut handled = 0;
    ///         while let Some(ms) = inbox.recv().await {
    ///             scope.ready().await; // at most two jobs at once
    ///             scope.spawn(move |_ctx| async move {
    ///                 tokio::time::sleep(Duration::from_millis(ms)).await;
    ///                 Ok::<_, std::io::Error>(())
    ///             });
    ///             handled += 1;
    ///         }
    ///         Ok(handled)
    ///     })
    ///     .limit(2)
    ///     .await
    ///     .unwrap();
    /// assert_eq!(handled, 4);
    /// # }
    /// ```
    pub async fn ready(&self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        loop {
            let room = shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let state = lock(&shared.state);
                if state.closed || state.has_room() {
                    return;
                }
            }
            room.await;
        }
    }
}

/// The task a scope spawns for `fut`: it runs `fut` under `child` with the
/// scope's grace period, sends the value to the [`ScopedHandle`] and tells
/// the scope how it ended.
fn run_task<E, Fut, T>(
    child: Context,
    fut: Fut,
    tx: oneshot::Sender<Result<T, Error>>,
    guard: TaskGuard,
    shared: &Shared<E>,
) -> impl Future<Output = TaskEnd<E>> + Send + 'static
where
    E: Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
{
    let grace = Arc::clone(&shared.grace);
    async move {
        if child.is_done() {
            guard.finished();
            return TaskEnd::Stopped { forced: false };
        }
        let ctx = child.clone();
        match Graceful::new(child, fut, grace).await {
            Ok(Ok(value)) => {
                let _ = tx.send(Ok(value));
                guard.finished();
                TaskEnd::Done
            }
            Ok(Err(error)) => {
                let late = ctx.is_done();
                guard.finish(&TASK_FAILED);
                TaskEnd::Failed { error, late }
            }
            Err(_) => {
                let _ = tx.send(Err(Error::canceled_in(&ctx, &DROPPED_AFTER_GRACE)));
                guard.finished();
                TaskEnd::Stopped { forced: true }
            }
        }
    }
}

impl<E> Shared<E> {
    fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Frees the room of `joined` finished tasks and starts as many queued
    /// tasks in their place, outside the lock. True if it started any.
    fn release(&self, joined: usize) -> bool {
        let starts: Vec<Start<E>> = {
            let mut state = lock(&self.state);
            state.active -= joined;
            let room = state.limit.saturating_sub(state.active);
            let take = room.min(state.queued.len());
            state.active += take;
            state.queued.drain(..take).collect()
        };
        self.room.notify_waiters();
        let started = !starts.is_empty();
        for start in starts {
            self.start(start());
        }
        started
    }

    /// Hands a task that was counted in `active` to the scope future, or
    /// lets it go if the scope closed meanwhile: its context has ended with
    /// the scope's, so it stops on its own.
    fn start(&self, join: Joined<E>) {
        let mut state = lock(&self.state);
        if state.closed {
            state.active -= 1;
            drop(state);
            drop(join);
            return;
        }
        state.incoming.push(join);
        drop(state);
        self.waker.wake();
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
/// failed (its error went to the scope), was stopped before it started, or
/// panicked. A task whose future was dropped because it did not stop within
/// the scope's grace period resolves to a cancellation with the cause "the
/// task did not stop within its grace period and was dropped". Dropping the
/// handle does not stop the task: the scope owns its tasks.
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
    rx: oneshot::Receiver<Result<T, Error>>,
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
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
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
        let (incoming, queued) = {
            let mut state = lock(&self.shared.state);
            state.closed = true;
            (mem::take(&mut state.incoming), mem::take(&mut state.queued))
        };
        self.shared.room.notify_waiters();
        // The tasks saw the cancellation; each stops on its own within the
        // grace period (see `Graceful`), so they are let go rather than cut
        // short: dropping a join handle detaches its task. Queued tasks
        // never started: they are dropped, futures and all.
        drop(incoming);
        drop(queued);
    }
}

pin_project! {
    /// The future returned by [`Context::scope`].
    ///
    /// Set it up before awaiting it: [`limit`](Self::limit) (at most so many
    /// tasks at once), [`grace_period`](Self::grace_period) (how long tasks
    /// get to stop on their own) and [`collect_all`](Self::collect_all) (a
    /// failure does not cancel the others).
    ///
    /// # Cancel safety
    ///
    /// Dropping it cancels the scope: the body is dropped at once, each
    /// running task stops within the grace period, and queued tasks are
    /// dropped without starting.
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
        running: FuturesUnordered<Joined<E>>,
        value: Option<R>,
        // Every error, in the order it came, and whether it came after the
        // scope's context had ended (a task giving up, not failing).
        errors: Vec<E>,
        late: Vec<bool>,
        // The body and tasks whose futures were dropped after the grace
        // period.
        forced: usize,
        // Some work did not finish: a task never started or was dropped, or
        // the body was.
        cut: bool,
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

    /// How long the body and the tasks get to stop on their own once the
    /// scope is canceled, before their futures are dropped (one second by
    /// default).
    ///
    /// Whatever a task still does after its context ended runs inside this
    /// period, its own cleanup included (a [`Context::cleanup`] step, a
    /// connection being closed): when the period is over, the task's future
    /// is dropped wherever it is, however long the cleanup's own limit. Give
    /// the scope a grace period at least as long as the longest cleanup of
    /// its tasks. A cut is never silent: the task's [`ScopedHandle`] says so,
    /// and the scope fails with the count in [`ScopeError::forced`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, cancel) = Context::background().child();
    /// let scope = request
    ///     .scope(|scope| async move {
    ///         scope.spawn(|ctx: Context| async move {
    ///             ctx.done().await;
    ///             // A cleanup that needs 300ms, more than the scope grants.
    ///             let _ = ctx
    ///                 .cleanup(Duration::from_secs(1), |_ctx| {
    ///                     tokio::time::sleep(Duration::from_millis(300))
    ///                 })
    ///                 .await;
    ///             Ok::<_, ()>(())
    ///         });
    ///         Ok(())
    ///     })
    ///     .grace_period(Duration::from_millis(100));
    /// let scope = tokio::spawn(scope);
    /// tokio::task::yield_now().await; // the task is running
    /// cancel.cancel_with("shutting down");
    /// let err = scope.await.unwrap().unwrap_err();
    /// assert_eq!(err.forced(), 1, "the cleanup was cut after 100ms");
    /// # }
    /// ```
    pub fn grace_period(self, grace: Duration) -> Self {
        self.guard.shared.grace.set(grace);
        self
    }

    /// Runs at most `limit` tasks at once (`errgroup`'s `SetLimit`).
    ///
    /// A task spawned while `limit` tasks run waits in a queue, in spawn
    /// order, and starts when one of them finishes; [`Scope::ready`] waits
    /// for room instead. Tasks that already run count towards the limit. A
    /// queued task whose scope is canceled never starts; one whose scope
    /// ends is dropped without starting. A limit of zero is taken as one,
    /// so that the scope always makes progress.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let (r, m) = (Arc::clone(&running), Arc::clone(&most));
    /// Context::background()
    ///     .scope(|scope| async move {
    ///         for _ in 0..10 {
    ///             let (running, most) = (Arc::clone(&r), Arc::clone(&m));
    ///             scope.spawn(move |_ctx| async move {
    ///                 let now = running.fetch_add(1, Ordering::SeqCst) + 1;
    ///                 most.fetch_max(now, Ordering::SeqCst);
    ///                 tokio::time::sleep(Duration::from_millis(10)).await;
    ///                 running.fetch_sub(1, Ordering::SeqCst);
    ///                 Ok::<_, std::io::Error>(())
    ///             });
    ///         }
    ///         Ok(())
    ///     })
    ///     .limit(3)
    ///     .await
    ///     .unwrap();
    /// assert_eq!(most.load(Ordering::SeqCst), 3);
    /// # }
    /// ```
    pub fn limit(self, limit: usize) -> Self {
        lock(&self.guard.shared.state).limit = limit.max(1);
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
                        this.late.push(shared.ctx.is_done());
                        this.errors.push(error);
                        shared.cancel.cancel_for(Cause::Reason(&BODY_FAILED));
                    }
                    // Dropped after the grace period: the scope's context
                    // says why.
                    Err(_) => {
                        *this.forced += 1;
                        *this.cut = true;
                    }
                }
            }
        }

        // Then every task that finished. The scope is over once the body is
        // and no task is left, checked under the lock that `spawn` takes.
        let mut finished = false;
        loop {
            let incoming = mem::take(&mut lock(&shared.state).incoming);
            this.running.extend(incoming);
            let mut joined = 0;
            while let Poll::Ready(Some(end)) = this.running.poll_next_unpin(cx) {
                joined += 1;
                match end {
                    Ok(TaskEnd::Failed { error, late }) => {
                        this.errors.push(error);
                        this.late.push(late);
                        if !*this.collect_all {
                            shared.cancel.cancel_for(Cause::Reason(&SIBLING_FAILED));
                        }
                    }
                    Ok(TaskEnd::Done) => {}
                    Ok(TaskEnd::Stopped { forced }) => {
                        *this.forced += usize::from(forced);
                        *this.cut = true;
                    }
                    Err(join_error) => {
                        *this.cut = true;
                        if let Ok(panic) = join_error.try_into_panic() {
                            this.panic.get_or_insert(panic);
                            shared.cancel.cancel_for(Cause::Reason(&SIBLING_PANICKED));
                        }
                    }
                }
            }
            if joined > 0 && shared.release(joined) {
                // Queued tasks took the room: take them and look again.
                continue;
            }
            if this.body.is_some() || !this.running.is_empty() {
                break;
            }
            let mut state = lock(&shared.state);
            if state.incoming.is_empty() && state.active == 0 {
                state.closed = true;
                finished = true;
                break;
            }
            // A task was spawned meanwhile, or is being: take it and look
            // again (a spawn in progress wakes the scope when it is done).
            if state.incoming.is_empty() {
                break;
            }
        }
        if finished {
            shared.room.notify_waiters();
            shared.cancel.cancel_for(Cause::Reason(&FINISHED));
            if let Some(panic) = this.panic.take() {
                std::panic::resume_unwind(panic);
            }
            let errors = mem::take(this.errors);
            let late = mem::take(this.late);
            let forced = *this.forced;
            // The caller's context ending is reported whenever it happened
            // before the scope finished and something failed or was cut
            // short: the outer cause has to reach the top (also when a task
            // failed in the same instant). When everything returned `Ok`, as
            // on a normal shutdown, the scope is `Ok`, as `errgroup` is.
            if this.ended.is_none() {
                *this.ended = this.parent.err();
            }
            let ended = this.ended.take();
            return Poll::Ready(match (this.value.take(), errors.is_empty(), *this.cut) {
                (Some(value), true, false) => Ok(value),
                (_, false, _) => Err(ScopeError::new(errors, late, forced, ended)),
                // The body or a task was cut short without an error of its
                // own: only a canceled scope does that, and the caller's
                // context, else the scope's, says why.
                _ => {
                    let why = ended.or_else(|| shared.ctx.err());
                    Err(ScopeError::new(
                        errors,
                        late,
                        forced,
                        Some(why.unwrap_or_else(|| Error::canceled_for(&FINISHED))),
                    ))
                }
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
            .field("forced", &self.forced)
            .field("collect_all", &self.collect_all)
            .field("grace", &self.guard.shared.grace.get())
            .finish()
    }
}
