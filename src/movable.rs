//! [`DeadlineHandle`]: a deadline its owner can move (asyncio's
//! `Timeout.reschedule`, Trio's assignable `deadline`).

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::time::Duration;

use tokio::time::Instant;

use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::core::Cold;
use crate::named::Named;

/// Moves the deadline of the context it was derived with, and cancels it;
/// made by [`Context::child_with_movable_timeout`] and
/// [`Context::child_with_movable_deadline`].
///
/// A move may bring the deadline earlier or later, but never past the
/// parent's: the context's deadline is always the earlier of the one set
/// here and the one it inherits. Everything that waits on the context or
/// below it follows a move: `done()`, the combinators' timers, the
/// per-item limits of streams, `on_done` callbacks, and the deadlines of
/// its children (derived before the move or after). A move once the
/// context has ended changes nothing. [`Context::deadline`] reads the
/// deadline as it is at that moment, so code that needs a fixed deadline
/// reads it once and keeps the `Instant`.
///
/// Like a [`CancelHandle`], it cancels nothing when dropped; once it is
/// gone, nothing can move the deadline any more.
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (idle, deadline) = Context::background()
///     .named("idle")
///     .child_with_movable_timeout(Duration::from_secs(5));
/// let start = Instant::now();
/// let waiter = tokio::spawn(idle.done_owned());
/// tokio::time::sleep(Duration::from_secs(2)).await;
/// deadline.reschedule_in(Duration::from_secs(5)); // activity: five more seconds
/// assert!(waiter.await.unwrap().is_deadline_exceeded());
/// assert_eq!(start.elapsed(), Duration::from_secs(7));
/// # }
/// ```
#[must_use = "dropping a DeadlineHandle does not cancel, and its deadline can no longer be moved"]
#[derive(Clone)]
pub struct DeadlineHandle {
    handle: CancelHandle,
}

/// **Movable deadlines.** [`child_with_movable_timeout`](Context::child_with_movable_timeout).
impl Context {
    /// Derives a child whose deadline, `now + timeout` to begin with, the
    /// returned [`DeadlineHandle`] can move. [`Duration::MAX`] starts
    /// without a deadline of its own.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, deadline) = Context::background().child_with_movable_timeout(Duration::from_secs(1));
    /// deadline.reschedule_in(Duration::from_millis(10));
    /// assert_eq!(ctx.remaining(), Some(Duration::from_millis(10)));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_movable_timeout(&self, timeout: Duration) -> (Context, DeadlineHandle) {
        self.derive_movable(None, Limit::Timeout(timeout), Location::caller())
    }

    /// Derives a child whose deadline, `deadline` to begin with (`None`:
    /// only the inherited one), the returned [`DeadlineHandle`] can move.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, deadline) = Context::background().child_with_movable_deadline(None);
    /// assert_eq!(ctx.deadline(), None);
    /// let at = Instant::now() + Duration::from_secs(3);
    /// assert_eq!(deadline.reschedule(Some(at)), Some(at));
    /// assert_eq!(ctx.deadline(), Some(at));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_movable_deadline(
        &self,
        deadline: Option<Instant>,
    ) -> (Context, DeadlineHandle) {
        let limit = deadline.map_or(Limit::None, Limit::Deadline);
        self.derive_movable(None, limit, Location::caller())
    }

    fn derive_movable(
        &self,
        name: Option<Cow<'static, str>>,
        limit: Limit,
        location: &'static Location<'static>,
    ) -> (Context, DeadlineHandle) {
        let (ctx, handle) = self.derive_with(Cold::movable(name), limit, location);
        (ctx, DeadlineHandle { handle })
    }
}

impl Named<'_> {
    /// [`Context::child_with_movable_timeout`] with this name.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, deadline) = Context::background()
    ///     .named("lease")
    ///     .child_with_movable_timeout(Duration::from_secs(30));
    /// deadline.reschedule(Some(tokio::time::Instant::now()));
    /// assert_eq!(ctx.err().unwrap().context_name(), Some("lease"));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_movable_timeout(self, timeout: Duration) -> (Context, DeadlineHandle) {
        let (parent, name) = self.into_parts();
        parent.derive_movable(Some(name), Limit::Timeout(timeout), Location::caller())
    }

    /// [`Context::child_with_movable_deadline`] with this name.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, _deadline) = Context::background().named("session").child_with_movable_deadline(None);
    /// assert_eq!(ctx.deadline(), None);
    /// ```
    #[track_caller]
    pub fn child_with_movable_deadline(
        self,
        deadline: Option<Instant>,
    ) -> (Context, DeadlineHandle) {
        let (parent, name) = self.into_parts();
        let limit = deadline.map_or(Limit::None, Limit::Deadline);
        parent.derive_movable(Some(name), limit, Location::caller())
    }
}

impl DeadlineHandle {
    /// Moves the context's own deadline to `deadline` (`None`: none of its
    /// own, only the inherited one is left) and returns its effective
    /// deadline now, which is never later than the parent's. A deadline in
    /// the past ends the context at once. Does nothing once the context
    /// has ended.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(10));
    /// let (ctx, deadline) = request.child_with_movable_timeout(Duration::from_secs(1));
    /// let later = Instant::now() + Duration::from_secs(60);
    /// assert_eq!(deadline.reschedule(Some(later)), request.deadline(), "never past the parent's");
    /// assert_eq!(deadline.reschedule(None), request.deadline());
    /// deadline.reschedule(Some(Instant::now()));
    /// assert!(ctx.err().unwrap().is_deadline_exceeded());
    /// # }
    /// ```
    pub fn reschedule(&self, deadline: Option<Instant>) -> Option<Instant> {
        self.handle.node().move_deadline(deadline)
    }

    /// Moves the context's own deadline to `timeout` from now; see
    /// [`reschedule`](Self::reschedule). A timeout too large to represent
    /// ([`Duration::MAX`]) leaves none of its own.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, deadline) = Context::background().child_with_movable_timeout(Duration::from_secs(1));
    /// deadline.reschedule_in(Duration::from_secs(3));
    /// assert_eq!(ctx.remaining(), Some(Duration::from_secs(3)));
    /// deadline.reschedule_in(Duration::MAX);
    /// assert_eq!(ctx.deadline(), None);
    /// # }
    /// ```
    pub fn reschedule_in(&self, timeout: Duration) -> Option<Instant> {
        self.reschedule(Instant::now().checked_add(timeout))
    }

    /// The context's effective deadline as it is now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, deadline) = Context::background().child_with_movable_timeout(Duration::from_secs(1));
    /// assert_eq!(deadline.deadline(), ctx.deadline());
    /// # }
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.handle.node().deadline()
    }

    /// Cancels the context, as [`CancelHandle::cancel`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, deadline) = Context::background().child_with_movable_deadline(None);
    /// deadline.cancel();
    /// assert!(ctx.err().unwrap().is_canceled());
    /// ```
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Cancels the context with `cause`, as [`CancelHandle::cancel_with`].
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, deadline) = Context::background().child_with_movable_deadline(None);
    /// deadline.cancel_with("the user closed the tab");
    /// assert!(ctx.err().unwrap().cause_is("the user closed the tab"));
    /// ```
    pub fn cancel_with<E>(&self, cause: E)
    where
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        self.handle.cancel_with(cause);
    }

    /// The handle that cancels the context, for code that takes a
    /// [`CancelHandle`].
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, deadline) = Context::background().child_with_movable_deadline(None);
    /// let guard = deadline.cancel_handle().clone().drop_guard();
    /// drop(guard);
    /// assert!(ctx.is_done());
    /// ```
    pub fn cancel_handle(&self) -> &CancelHandle {
        &self.handle
    }
}

impl fmt::Debug for DeadlineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineHandle")
            .field("context", &self.handle.node().name())
            .field("deadline", &self.deadline())
            .finish()
    }
}
