//! [`Named`]: a derivation with a name.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use futures::Stream;
use tokio_util::sync::CancellationToken;

use crate::cancel::CancelHandle;
use crate::context::{user_cause, Context, Limit};
use crate::core::Cold;
use crate::future::branches::Branches;
use crate::future::{
    AsCompleted, JoinAll, Race, RaceEither, ScopeFuture, SelectFirst, Settle, Timeout, TryJoinAll,
};
use crate::task::{Scope, TaskHandle};

/// A derivation that will carry a name, made by [`Context::named`].
///
/// It offers every method of [`Context`] that derives a context: the
/// `child*` derivations, the steps ([`run`](Self::run),
/// [`with_timeout`](Self::with_timeout), [`with_deadline`](Self::with_deadline),
/// [`cleanup`](Self::cleanup)), tasks ([`scope`](Self::scope),
/// [`spawn`](Self::spawn), [`spawn_blocking`](Self::spawn_blocking)), the
/// fan-out combinators ([`race`](Self::race), [`select_first`](Self::select_first),
/// [`join_all`](Self::join_all), ...) and [`stream`](Self::stream). The
/// name shows in errors ([`Error::context_name`](crate::Error::context_name),
/// `Display`) and in `tracing` events in place of the call site. The fan-out
/// combinators, which derive one child per branch, name each
/// `name[index]`; the fan-out macros ([`race!`](crate::race) and its
/// siblings) take a `Named` as their first argument to the same effect.
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

    /// The context the derivation starts from, and the name.
    pub(crate) fn into_parts(self) -> (&'a Context, Cow<'static, str>) {
        (self.parent, self.name)
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

    /// [`Context::child_with_deadline_cause`] with this name.
    ///
    /// ```
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background()
    ///     .named("batch")
    ///     .child_with_deadline_cause(Instant::now(), "the window closed");
    /// let err = ctx.err().unwrap();
    /// assert_eq!(err.context_name(), Some("batch"));
    /// assert!(err.cause_is("the window closed"));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_deadline_cause<E>(
        self,
        deadline: Instant,
        cause: E,
    ) -> (Context, CancelHandle)
    where
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        self.parent.derive_with(
            Cold::with_deadline_cause(Some(self.name), user_cause(cause)),
            Limit::Deadline(deadline),
            Location::caller(),
        )
    }

    /// [`Context::child_with_timeout_cause`] with this name.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background()
    ///     .named("lookup")
    ///     .child_with_timeout_cause(Duration::ZERO, "too slow");
    /// let err = ctx.err().unwrap();
    /// assert_eq!(err.context_name(), Some("lookup"));
    /// assert!(err.cause_is("too slow"));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_timeout_cause<E>(self, timeout: Duration, cause: E) -> (Context, CancelHandle)
    where
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        self.parent.derive_with(
            Cold::with_deadline_cause(Some(self.name), user_cause(cause)),
            Limit::Timeout(timeout),
            Location::caller(),
        )
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

    /// [`Context::child_with_token`] with this name.
    ///
    /// ```
    /// use tokio_ctx::Context;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let shutdown = CancellationToken::new();
    /// let (ctx, _cancel) = Context::background().named("worker").child_with_token(shutdown.clone());
    /// shutdown.cancel();
    /// assert_eq!(ctx.done().await.context_name(), Some("worker"));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_token(self, token: CancellationToken) -> (Context, CancelHandle) {
        self.parent
            .child_with_token_at(Some(self.name), token, Location::caller())
    }

    /// [`Context::run`] under a child with this name: `fut` runs with the
    /// child as [`current`](Context::current), so what it derives shows up
    /// under the name in `Debug` output, and the child ends when `fut` does
    /// or when this context ends. See [`Timeout`] (without a limit of its
    /// own, it only ends with this context).
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel_with("shutting down");
    /// let err = ctx.named("flush").run(std::future::pending::<()>()).await.unwrap_err();
    /// assert_eq!(err.cause().unwrap().to_string(), "shutting down");
    /// # }
    /// ```
    #[track_caller]
    pub fn run<F: Future>(self, fut: F) -> Timeout<F> {
        self.parent
            .step(Some(self.name), Limit::None, Location::caller(), |_| fut)
    }

    /// [`Context::cleanup`] with this name for its budget.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .named("release lease")
    ///     .cleanup(Duration::from_millis(200), |_ctx| std::future::pending::<()>())
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.context_name(), Some("release lease"));
    /// # }
    /// ```
    #[track_caller]
    pub fn cleanup<F, Fut>(self, limit: Duration, f: F) -> Timeout<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        self.parent.cleanup_step(
            Some(self.name),
            Limit::Timeout(limit),
            Location::caller(),
            f,
        )
    }

    /// [`Context::scope`] with this name for the scope's context.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .named("fetch")
    ///     .scope(|scope| async move {
    ///         let task = scope.spawn(|_ctx| async { Err::<(), _>("503") });
    ///         Ok(task.await.unwrap_err())
    ///     })
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.first(), Some(&"503"));
    /// # }
    /// ```
    #[track_caller]
    pub fn scope<F, Fut, R, E>(self, f: F) -> ScopeFuture<Fut, R, E>
    where
        F: FnOnce(Scope<E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: Send + 'static,
    {
        self.parent.scope_at(Some(self.name), Location::caller(), f)
    }

    /// [`Context::spawn`] with this name for the task's context.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task = Context::background()
    ///     .named("indexer")
    ///     .spawn(|_ctx| std::future::pending::<()>());
    /// task.cancel();
    /// assert_eq!(task.await.unwrap_err().context_name(), Some("indexer"));
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, Fut>(self, f: F) -> TaskHandle<Fut::Output>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.parent.spawn_at(Some(self.name), Location::caller(), f)
    }

    /// [`Context::spawn_blocking`] with this name for the task's context.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task = Context::background()
    ///     .named("checksum")
    ///     .spawn_blocking(|ctx| ctx.value::<u8>().is_none());
    /// assert!(task.await.unwrap());
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, f: F) -> TaskHandle<R>
    where
        F: FnOnce(Context) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.parent
            .spawn_blocking_at(Some(self.name), Location::caller(), f)
    }

    /// [`Context::race`], each branch's child named `name[index]`.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let loser = std::sync::Mutex::new(None);
    /// let won = Context::background()
    ///     .named("mirror")
    ///     .race([0u8, 1].map(|i| {
    ///         let loser = &loser;
    ///         move |ctx: Context| async move {
    ///             if i == 0 {
    ///                 *loser.lock().unwrap() = Some(ctx);
    ///                 std::future::pending::<()>().await;
    ///             }
    ///             i
    ///         }
    ///     }))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(won, (1, 1));
    /// let err = loser.lock().unwrap().take().unwrap().err().unwrap();
    /// assert_eq!(err.context_name(), Some("mirror[0]"));
    /// assert_eq!(err.cause().unwrap().to_string(), "lost the race");
    /// # }
    /// ```
    #[track_caller]
    pub fn race<I, M, F>(self, fns: I) -> Race<F>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future,
    {
        Race::new(self.parent, Some(&self.name), fns, Location::caller())
    }

    /// [`Context::race_either`], the children named `name[0]` and
    /// `name[1]`.
    ///
    /// ```
    /// use futures::future::Either;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let out = Context::background()
    ///     .named("work or watch")
    ///     .race_either(|_ctx| async { 1u8 }, |_ctx| std::future::pending::<()>())
    ///     .await
    ///     .unwrap();
    /// assert!(matches!(out, Either::Left(1)));
    /// # }
    /// ```
    #[track_caller]
    pub fn race_either<A, B, FA, FB>(self, a: A, b: B) -> RaceEither<FA, FB>
    where
        A: FnOnce(Context) -> FA,
        B: FnOnce(Context) -> FB,
        FA: Future,
        FB: Future,
    {
        self.parent
            .race_either_at(Some(&self.name), Location::caller(), a, b)
    }

    /// [`Context::select_first`], each branch's child named `name[index]`.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (index, value) = Context::background()
    ///     .named("replica")
    ///     .select_first([Err("down"), Ok(7)].map(|r| move |_ctx| async move { r }))
    ///     .await
    ///     .unwrap();
    /// assert_eq!((index, value), (1, 7));
    /// # }
    /// ```
    #[track_caller]
    pub fn select_first<I, M, F, T, E>(self, fns: I) -> SelectFirst<F, E>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future<Output = Result<T, E>>,
    {
        SelectFirst::from_set(self.branches(fns), self.parent.clone())
    }

    /// [`Context::join_all`], each branch's child named `name[index]`.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sizes = Context::background()
    ///     .named("part")
    ///     .join_all([3usize, 5].map(|n| move |_ctx| async move { n * 2 }))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(sizes, [6, 10]);
    /// # }
    /// ```
    #[track_caller]
    pub fn join_all<I, M, F>(self, fns: I) -> JoinAll<F>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future,
    {
        JoinAll::from_set(self.branches(fns), self.parent.clone())
    }

    /// [`Context::try_join_all`], each branch's child named `name[index]`.
    ///
    /// ```
    /// use tokio_ctx::{Context, TryJoinError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .named("shard")
    ///     .try_join_all([Ok(1), Err("shard 1 is down")].map(|r| move |_ctx| async move { r }))
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(err, TryJoinError::Failed { index: 1, .. }));
    /// # }
    /// ```
    #[track_caller]
    pub fn try_join_all<I, M, F, T, E>(self, fns: I) -> TryJoinAll<F, T>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future<Output = Result<T, E>>,
    {
        TryJoinAll::from_set(self.branches(fns), self.parent.clone())
    }

    /// [`Context::settle`], each branch's child named `name[index]`.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let outcomes = Context::background()
    ///     .named("probe")
    ///     .settle([1u8, 2].map(|n| move |_ctx| async move { n }))
    ///     .await;
    /// assert_eq!(outcomes.len(), 2);
    /// # }
    /// ```
    #[track_caller]
    pub fn settle<I, M, F>(self, fns: I) -> Settle<F>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future,
    {
        Settle::from_set(self.branches(fns), self.parent.clone())
    }

    /// [`Context::as_completed`], each branch's child named `name[index]`.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let done: Vec<_> = Context::background()
    ///     .named("page")
    ///     .as_completed([1u8, 2].map(|n| move |_ctx| async move { n }))
    ///     .collect()
    ///     .await;
    /// assert_eq!(done.len(), 2);
    /// # }
    /// ```
    #[track_caller]
    pub fn as_completed<I, M, F>(self, fns: I) -> AsCompleted<F>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future,
    {
        AsCompleted::from_set(self.branches(fns), self.parent.clone())
    }

    /// One branch per function, named `name[index]`, derived at the
    /// caller's caller.
    #[track_caller]
    fn branches<I, M, F>(&self, fns: I) -> Branches<F>
    where
        I: IntoIterator<Item = M>,
        M: FnOnce(Context) -> F,
        F: Future,
    {
        Branches::new(self.parent, Some(&self.name), fns, Location::caller())
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
    pub fn stream<S: Stream>(self, stream: S) -> crate::ContextStream<S> {
        crate::ContextStream::new(self.parent.clone(), Some(self.name), stream)
    }
}
