//! [`Context`]: the handle, its derivation and its observation.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::cancel::CancelHandle;
use crate::core::{Cause, Cold, Deadline, Meta, Node};
use crate::error::Error;
use crate::future::{Done, DoneOwned, Run, Timeout};
use crate::named::Named;
use crate::value::{self, Values};

/// A request's cancellation, deadline and values, in one cheap handle.
///
/// A `Context` is what Go calls `context.Context`: pass it down the call
/// chain, derive a child for each step that needs a tighter limit or its own
/// cancel switch, and every step below ends when its own budget or any
/// budget above it runs out. Clones share one state; cloning costs at most
/// two reference-count increments, and [`Context::background`] none.
///
/// | Go | tokio-ctx |
/// |---|---|
/// | `context.Background()` | [`Context::background`] |
/// | `WithCancel`, `WithCancelCause` | [`child`](Self::child), then [`CancelHandle::cancel_with`] |
/// | `WithDeadline`, `WithTimeout` | [`child_with_deadline`](Self::child_with_deadline), [`child_with_timeout`](Self::child_with_timeout) |
/// | `WithValue`, `Value` | [`with_value`](Self::with_value), [`value`](Self::value) |
/// | `WithoutCancel` | [`without_cancel`](Self::without_cancel) |
/// | `AfterFunc` | [`on_done`](Self::on_done) |
/// | `Done`, `Err`, `Cause`, `Deadline` | [`done`](Self::done), [`err`](Self::err), [`Error::cause`], [`deadline`](Self::deadline) |
///
/// Deriving can only tighten: a child's deadline is the earlier of its own and
/// its parent's, and a child ends whenever its parent does. Deadlines are
/// lazy: deriving with a deadline arms no timer, and a timer exists only while
/// something awaits [`done`](Self::done) or runs a combinator. All time is
/// [`tokio::time::Instant`], so `tokio::time::pause()` makes it deterministic.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (request, cancel) = Context::background().child_with_timeout(Duration::from_secs(60));
/// let (connect, _) = request.named("connect").child_with_timeout(Duration::from_secs(90));
/// assert_eq!(connect.deadline(), request.deadline(), "clipped to the request's budget");
///
/// cancel.cancel_with("client disconnected");
/// assert!(connect.is_done());
/// assert_eq!(connect.err().unwrap().cause().unwrap().to_string(), "client disconnected");
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Context {
    node: Option<Arc<Node>>,
    values: Option<Values>,
}

/// The limit a derivation asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    None,
    Timeout(Duration),
    Deadline(Instant),
}

impl Limit {
    /// A wall-clock deadline, as the time left until it, read once.
    pub(crate) fn wall(deadline: SystemTime) -> Limit {
        match deadline.duration_since(SystemTime::now()) {
            Ok(left) => Limit::Timeout(left),
            Err(_) => Limit::Timeout(Duration::ZERO),
        }
    }
}

/// **Derive, observe, run a step.** The root, the `child*` derivations
/// (Go's `With*`), values, the checks (`is_done`, `err`, `done`), and
/// `run`, `with_timeout`, `with_deadline`.
impl Context {
    /// The root context: never canceled, no deadline, no values.
    ///
    /// It allocates nothing, and is what [`Context::current`] returns outside
    /// of any combinator.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let root = Context::background();
    /// assert!(!root.is_done());
    /// assert_eq!(root.deadline(), None);
    /// ```
    pub const fn background() -> Self {
        Context {
            node: None,
            values: None,
        }
    }

    /// Derives a child that ends when this context ends or when the returned
    /// handle cancels it (Go's `WithCancel`).
    ///
    /// Its error names the call site of `child`, or the name given with
    /// [`named`](Self::named). A child of a context that has already ended is
    /// born ended, with its parent's error.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (parent, cancel_parent) = Context::background().child();
    /// let (child, cancel_child) = parent.child();
    /// cancel_child.cancel();
    /// assert!(child.is_done());
    /// assert!(!parent.is_done(), "cancelling a child never reaches up");
    /// cancel_parent.cancel();
    /// let (late, _) = parent.child();
    /// assert!(late.is_done(), "born ended");
    /// ```
    #[track_caller]
    pub fn child(&self) -> (Context, CancelHandle) {
        self.derive(None, Limit::None, Location::caller())
    }

    /// Derives a child whose deadline is the earlier of `deadline` and this
    /// context's (Go's `WithDeadline`). A deadline in the past gives a child
    /// that is born expired.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let at = Instant::now() + Duration::from_secs(5);
    /// let (ctx, _cancel) = Context::background().child_with_deadline(at);
    /// assert_eq!(ctx.deadline(), Some(at));
    /// tokio::time::advance(Duration::from_secs(5)).await;
    /// assert!(ctx.err().unwrap().is_deadline_exceeded());
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_deadline(&self, deadline: Instant) -> (Context, CancelHandle) {
        self.derive(None, Limit::Deadline(deadline), Location::caller())
    }

    /// Derives a child whose deadline is a wall-clock time: a deadline read
    /// from a header, a job that must end by 17:00.
    ///
    /// The wall-clock time is turned into a monotonic deadline once, here;
    /// from then on only the monotonic clock decides, so a step of the system
    /// clock never stretches or shrinks the budget. A time in the past gives
    /// a child born expired; one too far ahead to represent adds no deadline.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let by = SystemTime::now() + Duration::from_secs(30);
    /// let (ctx, _) = Context::background().child_with_wall_deadline(by);
    /// let left = ctx.remaining().unwrap();
    /// assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(29));
    ///
    /// let (late, _) = Context::background().child_with_wall_deadline(SystemTime::UNIX_EPOCH);
    /// assert!(late.err().unwrap().is_deadline_exceeded());
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_wall_deadline(&self, deadline: SystemTime) -> (Context, CancelHandle) {
        self.derive(None, Limit::wall(deadline), Location::caller())
    }

    /// Derives a child whose deadline is the earlier of `now + timeout` and
    /// this context's (Go's `WithTimeout`).
    ///
    /// A zero timeout gives a child that is born expired; a timeout too large
    /// to represent (such as [`Duration::MAX`]) adds no deadline of its own.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(60));
    /// let (step, _) = request.child_with_timeout(Duration::from_secs(10));
    /// assert_eq!(step.remaining(), Some(Duration::from_secs(10)));
    /// let (unbounded, _) = request.child_with_timeout(Duration::MAX);
    /// assert_eq!(unbounded.deadline(), request.deadline(), "inherits the request's");
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_timeout(&self, timeout: Duration) -> (Context, CancelHandle) {
        self.derive(None, Limit::Timeout(timeout), Location::caller())
    }

    /// [`child_with_deadline`](Self::child_with_deadline) whose deadline
    /// carries `cause` (Go's `WithDeadlineCause`): when it is this
    /// deadline that ends the child, the error is still a deadline
    /// ([`Error::is_deadline_exceeded`]) and [`Error::cause`] returns
    /// `cause`. When an ancestor's deadline comes first, the error is that
    /// ancestor's, with its cause.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let at = Instant::now() + Duration::from_secs(1);
    /// let (batch, _) = Context::background().child_with_deadline_cause(at, "the nightly window closed");
    /// let err = batch.done().await;
    /// assert!(err.is_deadline_exceeded());
    /// assert!(err.cause_is("the nightly window closed"));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_deadline_cause<E>(
        &self,
        deadline: Instant,
        cause: E,
    ) -> (Context, CancelHandle)
    where
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        self.derive_with(
            Cold::with_deadline_cause(None, user_cause(cause)),
            Limit::Deadline(deadline),
            Location::caller(),
        )
    }

    /// [`child_with_timeout`](Self::child_with_timeout) whose deadline
    /// carries `cause` (Go's `WithTimeoutCause`). See
    /// [`child_with_deadline_cause`](Self::child_with_deadline_cause).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (lookup, _) = Context::background()
    ///     .child_with_timeout_cause(Duration::from_millis(100), "the replica is too slow");
    /// let err = lookup.done().await;
    /// assert!(err.is_deadline_exceeded());
    /// assert_eq!(err.cause().unwrap().to_string(), "the replica is too slow");
    /// assert!(err.to_string().ends_with("exceeded: the replica is too slow"));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_timeout_cause<E>(
        &self,
        timeout: Duration,
        cause: E,
    ) -> (Context, CancelHandle)
    where
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        self.derive_with(
            Cold::with_deadline_cause(None, user_cause(cause)),
            Limit::Timeout(timeout),
            Location::caller(),
        )
    }

    /// Names the next derivation, so that errors and `tracing` events say
    /// `"connect"` instead of a source position.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background()
    ///     .named("connect")
    ///     .child_with_timeout(Duration::from_millis(1));
    /// tokio::time::advance(Duration::from_millis(1)).await;
    /// let err = ctx.err().unwrap();
    /// assert_eq!(err.context_name(), Some("connect"));
    /// assert!(err.to_string().starts_with(r#"deadline of "connect" (1ms, set at "#));
    /// # }
    /// ```
    pub fn named(&self, name: impl Into<Cow<'static, str>>) -> Named<'_> {
        Named::new(self, name.into())
    }

    pub(crate) fn derive(
        &self,
        name: Option<Cow<'static, str>>,
        limit: Limit,
        location: &'static Location<'static>,
    ) -> (Context, CancelHandle) {
        let node = self.derive_node(name, limit, location, false);
        (self.with_node(Arc::clone(&node)), CancelHandle::new(node))
    }

    /// [`derive`](Self::derive) with what only a few derivations ask for.
    pub(crate) fn derive_with(
        &self,
        cold: Cold,
        limit: Limit,
        location: &'static Location<'static>,
    ) -> (Context, CancelHandle) {
        let node = self.derive_node_with(cold, limit, location);
        (self.with_node(Arc::clone(&node)), CancelHandle::new(node))
    }

    /// Derives a child whose cancel handle nobody needs: a combinator that
    /// keeps the child cancels it through its node, and hands the node back
    /// to the thread's spares when it is done (`core/spare.rs`), so the
    /// child is placed in a spare when there is one. (Other derivations do
    /// not look there: their nodes never go back, and most threads that
    /// derive them have none to give.)
    #[inline]
    pub(crate) fn derive_private(
        &self,
        name: Option<Cow<'static, str>>,
        limit: Limit,
        location: &'static Location<'static>,
    ) -> Context {
        self.with_node(self.derive_node(name, limit, location, true))
    }

    /// `private`: the node may be placed in one of the thread's spares
    /// (see [`derive_private`](Self::derive_private)).
    #[inline]
    fn derive_node(
        &self,
        name: Option<Cow<'static, str>>,
        limit: Limit,
        location: &'static Location<'static>,
        private: bool,
    ) -> Arc<Node> {
        let (requested, now, meta) = Context::request(limit, location);
        Node::derive(self.node.as_ref(), requested, now, name, meta, private)
    }

    fn derive_node_with(
        &self,
        cold: Cold,
        limit: Limit,
        location: &'static Location<'static>,
    ) -> Arc<Node> {
        let (requested, now, meta) = Context::request(limit, location);
        Node::derive_cold(self.node.as_ref(), requested, now, cold, meta)
    }

    /// The deadline `limit` asks for, the instant read for it if any, and
    /// what the new context says about itself. Always inlined: every
    /// derivation comes here, and as a call its three results go through
    /// memory (counted: 27 instructions of a 412-instruction `child()`).
    #[inline(always)]
    fn request(
        limit: Limit,
        location: &'static Location<'static>,
    ) -> (Deadline, Option<Instant>, Meta) {
        let (requested, now, budget) = match limit {
            Limit::None => (Deadline::NONE, None, None),
            Limit::Timeout(timeout) => (Deadline::from_now(timeout), None, Some(timeout)),
            Limit::Deadline(at) => {
                let now = Instant::now();
                let budget = at.saturating_duration_since(now);
                (Deadline::new(Some(at)), Some(now), Some(budget))
            }
        };
        (requested, now, Meta::new(location, budget))
    }

    /// A context that also carries `value`; looked up by its type with
    /// [`value`](Self::value), the nearest value of a type shadowing those
    /// further up (Go's `WithValue`). Cancellation and deadline are shared
    /// with `self`.
    ///
    /// Use a type of your own (a newtype) as the key, so that libraries do not
    /// collide.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct RequestId(u64);
    ///
    /// let outer = Context::background().with_value(RequestId(1));
    /// let inner = outer.with_value(RequestId(2));
    /// assert_eq!(inner.value::<RequestId>(), Some(&RequestId(2)));
    /// assert_eq!(outer.value::<RequestId>(), Some(&RequestId(1)));
    /// assert_eq!(Context::background().value::<RequestId>(), None);
    /// ```
    pub fn with_value<T: Send + Sync + 'static>(&self, value: T) -> Context {
        Context {
            node: self.node.clone(),
            values: Some(value::push(self.values.as_ref(), value)),
        }
    }

    /// The nearest value of type `T`, if any (see [`with_value`](Self::with_value)).
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// struct TenantId(&'static str);
    ///
    /// let ctx = Context::background().with_value(TenantId("acme"));
    /// let (child, _) = ctx.child();
    /// assert_eq!(child.value::<TenantId>().unwrap().0, "acme", "values flow to children");
    /// ```
    #[inline]
    pub fn value<T: 'static>(&self) -> Option<&T> {
        value::find(self.values.as_ref()?)
    }

    /// A context with this one's values but no deadline, which is never
    /// canceled (Go's `WithoutCancel`). Contexts derived from it are new roots.
    ///
    /// For work that must finish even though the request that started it
    /// ended: an audit log write, a cache fill. Give it a budget of its own.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// struct Trace(&'static str);
    ///
    /// let (request, cancel) = Context::background().with_value(Trace("abc")).child();
    /// let detached = request.without_cancel();
    /// cancel.cancel();
    /// assert!(request.is_done());
    /// assert!(!detached.is_done());
    /// assert_eq!(detached.value::<Trace>().unwrap().0, "abc");
    /// ```
    pub fn without_cancel(&self) -> Context {
        Context {
            node: None,
            values: self.values.clone(),
        }
    }

    /// The effective deadline: the earliest along the chain of ancestors.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (parent, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let (child, _) = parent.child_with_timeout(Duration::from_secs(3600));
    /// assert_eq!(child.deadline(), parent.deadline());
    /// # }
    /// ```
    #[inline]
    pub fn deadline(&self) -> Option<Instant> {
        self.node.as_ref()?.deadline()
    }

    /// The time left until the effective deadline; zero once it has passed,
    /// `None` without a deadline. Cancellation does not change it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(2));
    /// tokio::time::advance(Duration::from_secs(3)).await;
    /// assert_eq!(ctx.remaining(), Some(Duration::ZERO));
    /// # }
    /// ```
    #[inline]
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// True once the context has ended: it or an ancestor was canceled, or
    /// the effective deadline has passed.
    ///
    /// Synchronous and cheap (atomic loads along the chain of ancestors, and
    /// one clock read when there is a deadline; no lock, no allocation), for
    /// CPU-bound loops and blocking code.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// let mut processed = 0;
    /// for chunk in 0..100 {
    ///     if ctx.is_done() {
    ///         break;
    ///     }
    ///     processed += 1;
    ///     if chunk == 9 {
    ///         cancel.cancel();
    ///     }
    /// }
    /// assert_eq!(processed, 10);
    /// ```
    #[inline(always)]
    pub fn is_done(&self) -> bool {
        match &self.node {
            Some(node) => node.is_done(),
            None => false,
        }
    }

    /// Why the context ended, or `None` while it is live.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// assert!(ctx.err().is_none());
    /// cancel.cancel();
    /// assert!(ctx.err().unwrap().is_canceled());
    /// ```
    #[inline]
    pub fn err(&self) -> Option<Error> {
        Error::of(self.node.as_deref()?)
    }

    /// `Ok(())` while the context is live, its error once it has ended: the
    /// `?`-friendly form of [`err`](Self::err).
    ///
    /// ```
    /// use tokio_ctx::{Context, Error};
    ///
    /// fn checksum(ctx: &Context, blocks: &[&[u8]]) -> Result<u32, Error> {
    ///     let mut sum = 0u32;
    ///     for block in blocks {
    ///         ctx.check()?;
    ///         sum = block.iter().fold(sum, |s, b| s.wrapping_add(u32::from(*b)));
    ///     }
    ///     Ok(sum)
    /// }
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// assert_eq!(checksum(&ctx, &[b"ab", b"c"]).unwrap(), 294);
    /// cancel.cancel();
    /// assert!(checksum(&ctx, &[b"ab"]).unwrap_err().is_canceled());
    /// ```
    #[inline]
    pub fn check(&self) -> Result<(), Error> {
        match self.err() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Resolves to the context's error when the context ends (Go's `Done`).
    ///
    /// See [`Done`] for the details, and [`done_owned`](Self::done_owned) for
    /// a future that can move into a `'static` task.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let err = ctx.done().await;
    /// assert!(err.is_deadline_exceeded());
    /// # }
    /// ```
    pub fn done(&self) -> Done<'_> {
        Done::new(self)
    }

    /// Like [`done`](Self::done), owning a clone of the context.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// let watcher = tokio::spawn(ctx.done_owned());
    /// cancel.cancel_with("bye");
    /// assert_eq!(watcher.await.unwrap().cause().unwrap().to_string(), "bye");
    /// # }
    /// ```
    pub fn done_owned(&self) -> DoneOwned {
        DoneOwned::new(self.clone())
    }

    /// Runs `fut` under this context: it is this context's
    /// [`current`](Self::current) while it runs, and it is dropped, giving
    /// `Err`, when the context ends first. See [`Run`].
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// assert_eq!(ctx.run(async { 7 }).await.unwrap(), 7);
    /// cancel.cancel();
    /// let err = ctx.run(std::future::pending::<()>()).await.unwrap_err();
    /// assert!(err.is_canceled());
    /// # }
    /// ```
    pub fn run<F: Future>(&self, fut: F) -> Run<F> {
        Run::new(self.clone(), fut)
    }

    /// Runs the future made by `f` under a child whose deadline is the
    /// earlier of `now + timeout` and this context's. See [`Timeout`].
    ///
    /// `f` is called at once, with the child, to make the future; the child
    /// is also [`current`](Self::current) while the future runs, and is
    /// canceled as soon as the combinator finishes or is dropped. The error tells this step's own timeout
    /// ([`Error::is_own`]) from the caller's budget running out or a
    /// cancellation from above.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(60));
    /// let slow_close = request
    ///     .with_timeout(Duration::from_millis(5), |_ctx| tokio::time::sleep(Duration::from_secs(1)))
    ///     .await;
    /// let err = slow_close.unwrap_err();
    /// assert!(err.is_own(), "only the close step's 5ms ran out: recoverable");
    /// # }
    /// ```
    #[track_caller]
    pub fn with_timeout<F, Fut>(&self, timeout: Duration, f: F) -> Timeout<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        Timeout::new(
            self.derive_private(None, Limit::Timeout(timeout), Location::caller()),
            f,
        )
    }

    /// Like [`with_timeout`](Self::with_timeout), with an absolute deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let at = Instant::now() + Duration::from_millis(10);
    /// let answer = Context::background()
    ///     .with_deadline(at, |ctx| async move { ctx.remaining() })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(answer, Some(Duration::from_millis(10)));
    /// # }
    /// ```
    #[track_caller]
    pub fn with_deadline<F, Fut>(&self, deadline: Instant, f: F) -> Timeout<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        Timeout::new(
            self.derive_private(None, Limit::Deadline(deadline), Location::caller()),
            f,
        )
    }

    /// Derives a child and runs the future `f` makes under it.
    pub(crate) fn step<F, Fut>(
        &self,
        name: Option<Cow<'static, str>>,
        limit: Limit,
        location: &'static Location<'static>,
        f: F,
    ) -> Timeout<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        Timeout::new(self.derive_private(name, limit, location), f)
    }

    /// [`step`](Self::step) with what only a few derivations ask for.
    pub(crate) fn step_with<F, Fut>(
        &self,
        cold: Cold,
        limit: Limit,
        location: &'static Location<'static>,
        f: F,
    ) -> Timeout<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        Timeout::new(
            self.with_node(self.derive_node_with(cold, limit, location)),
            f,
        )
    }

    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    /// The node and the values, apart.
    pub(crate) fn into_parts(self) -> (Option<Arc<Node>>, Option<Values>) {
        (self.node, self.values)
    }

    /// The context made of `node` with this context's values.
    pub(crate) fn with_node(&self, node: Arc<Node>) -> Context {
        Context {
            node: Some(node),
            values: self.values.clone(),
        }
    }
}

/// A cause of the user's, as the core keeps it.
pub(crate) fn user_cause<E>(cause: E) -> Cause
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    Cause::User(Arc::from(cause.into()))
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Context");
        if let Some(node) = &self.node {
            s.field("name", &node.name()).field(
                "location",
                &crate::error::ShortLocation(node.meta.location).to_string(),
            );
        }
        s.field("deadline", &self.deadline())
            .field("done", &self.is_done())
            .field("values", &self.values.as_ref().map_or(0, value::count))
            .finish()
    }
}
