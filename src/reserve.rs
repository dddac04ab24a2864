//! [`Reserve`]: part of a budget kept back for the cleanup after the work.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use tokio::time::Instant;

use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::core::Cause;
use crate::error::Reason;
use crate::future::Timeout;
use crate::named::Named;

/// The cause left on the work context once its cleanup starts.
static CLEANUP_STARTED: Reason = Reason::CleanupStarted;

/// The last `d` of a context's budget, kept back for cleanup; made by
/// [`Context::reserve`] together with the context the work runs under.
///
/// The work context's deadline is `d` earlier than the reserving
/// context's, so the work runs out first; [`cleanup`](Self::cleanup) then
/// runs under a budget of its own that no cancellation reaches, ending `d`
/// after it starts or at the reserving context's deadline, whichever is
/// first. So cleanup always has its time, even when the work used up all
/// of its own, and is never unbounded: an upstream waiting for the
/// reserving context's deadline is answered in time.
///
/// Starting the cleanup cancels the work context (cause
/// [`Reason::CleanupStarted`]), so nothing started under it runs on while
/// the cleanup does. Dropping a `Reserve` without starting the cleanup
/// cancels nothing.
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::Context;
/// # struct Conn;
/// # impl Conn {
/// #     async fn receive_all(&mut self) { std::future::pending::<()>().await }
/// #     async fn close(self) { tokio::time::sleep(Duration::from_millis(30)).await }
/// # }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (request, _) = Context::background().named("request").child_with_timeout(Duration::from_secs(3));
/// let (work, reserve) = request.named("receive").reserve(Duration::from_millis(100));
/// let mut conn = Conn;
/// let received = work.run(conn.receive_all()).await;
/// assert!(received.unwrap_err().is_deadline_exceeded(), "the work's 2.9s ran out");
///
/// // The request has 100ms left, all of it for the close.
/// let closed = reserve.named("close").cleanup(|_ctx| conn.close()).await;
/// assert!(closed.is_ok());
/// # }
/// ```
#[must_use = "a reserve does nothing unless its cleanup is run"]
pub struct Reserve {
    /// The reserving context: its values, and where its stages are
    /// reported.
    parent: Context,
    /// The end of the reserve: the reserving context's deadline, if any.
    until: Option<Instant>,
    reserved: Duration,
    work: CancelHandle,
    name: Option<Cow<'static, str>>,
}

/// **Reserved cleanup time.** [`reserve`](Context::reserve).
impl Context {
    /// Keeps the last `reserved` of this context's budget for cleanup.
    ///
    /// Returns the context to run the work under, a child whose deadline is
    /// `reserved` before this context's (born expired when less than that
    /// is left), and the [`Reserve`] to run the cleanup with. Without a
    /// deadline the work context has none either, and the cleanup simply
    /// gets `reserved`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(3));
    /// let (work, reserve) = request.reserve(Duration::from_millis(200));
    /// assert_eq!(work.remaining(), Some(Duration::from_millis(2800)));
    /// assert_eq!(reserve.deadline(), request.deadline());
    /// # }
    /// ```
    #[track_caller]
    pub fn reserve(&self, reserved: Duration) -> (Context, Reserve) {
        self.reserve_at(None, reserved, Location::caller())
    }

    fn reserve_at(
        &self,
        name: Option<Cow<'static, str>>,
        reserved: Duration,
        location: &'static Location<'static>,
    ) -> (Context, Reserve) {
        let until = self.deadline();
        let limit = match until {
            // An instant before the clock's earliest is long past: the work
            // is born expired.
            Some(until) => Limit::Deadline(until.checked_sub(reserved).unwrap_or_else(|| {
                Instant::now()
                    .checked_sub(reserved)
                    .unwrap_or_else(Instant::now)
            })),
            None => Limit::None,
        };
        let (work, handle) = self.derive(name, limit, location);
        let reserve = Reserve {
            parent: self.clone(),
            until,
            reserved,
            work: handle,
            name: None,
        };
        (work, reserve)
    }
}

impl Named<'_> {
    /// [`Context::reserve`], with this name for the work context.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let (work, _reserve) = request.named("upload").reserve(Duration::from_millis(100));
    /// tokio::time::advance(Duration::from_millis(900)).await;
    /// assert_eq!(work.err().unwrap().context_name(), Some("upload"));
    /// # }
    /// ```
    #[track_caller]
    pub fn reserve(self, reserved: Duration) -> (Context, Reserve) {
        let (parent, name) = self.into_parts();
        parent.reserve_at(Some(name), reserved, Location::caller())
    }
}

impl Reserve {
    /// Names the cleanup's context, for its errors and the budget report.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (_work, reserve) = Context::background().reserve(Duration::from_millis(10));
    /// let err = reserve
    ///     .named("close")
    ///     .cleanup(|_ctx| std::future::pending::<()>())
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.context_name(), Some("close"));
    /// # }
    /// ```
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How much was reserved.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// let (_work, reserve) = Context::background().reserve(Duration::from_millis(10));
    /// assert_eq!(reserve.reserved(), Duration::from_millis(10));
    /// ```
    pub fn reserved(&self) -> Duration {
        self.reserved
    }

    /// The latest the cleanup may end: the reserving context's deadline;
    /// `None` without one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// let (_work, reserve) = Context::background().reserve(Duration::from_millis(10));
    /// assert_eq!(reserve.deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.until
    }

    /// Runs the cleanup: cancels the work context (cause
    /// [`Reason::CleanupStarted`]), then runs the future `f` makes under a
    /// context that keeps the reserving context's values but no
    /// cancellation, with a deadline `reserved` from now, or the reserving
    /// context's deadline if that is sooner. See [`Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, cancel) = Context::background().child_with_timeout(Duration::from_secs(10));
    /// let (work, reserve) = request.reserve(Duration::from_millis(50));
    /// cancel.cancel_with("client went away");
    /// assert!(work.is_done());
    /// let left = reserve.cleanup(|ctx| async move { ctx.remaining() }).await.unwrap();
    /// assert_eq!(left, Some(Duration::from_millis(50)), "canceled early: the whole reserve");
    /// # }
    /// ```
    #[track_caller]
    pub fn cleanup<F, Fut>(self, f: F) -> Timeout<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        self.work.cancel_for(Cause::Reason(&CLEANUP_STARTED));
        let ends = Instant::now().checked_add(self.reserved);
        let limit = match (ends, self.until) {
            (Some(ends), Some(until)) => Limit::Deadline(ends.min(until)),
            (None, Some(until)) => Limit::Deadline(until),
            (_, None) => Limit::Timeout(self.reserved),
        };
        self.parent
            .cleanup_step(self.name, limit, Location::caller(), f)
    }
}

impl fmt::Debug for Reserve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve")
            .field("reserved", &self.reserved)
            .field("deadline", &self.until)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
