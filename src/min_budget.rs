//! [`MinBudget`]: a derivation or step refused up front when too little of
//! the budget is left for it.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use tokio::time::Instant;

use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::error::Error;
use crate::future::Guarded;
use crate::named::Named;

/// A derivation or step that starts only if at least a minimum budget is
/// left for it, made by [`Context::min_budget`] (or
/// [`Named::min_budget`]).
///
/// A service must not start a 300 ms query with 20 ms left: the query
/// cannot finish, and starting it costs the database and the connection
/// pool for nothing. Each method here first works out the budget the new
/// context would be granted, the smaller of its own limit and what is
/// left of this context, and when that is less than the minimum it fails
/// at once, before anything is derived or made, with an error of its own
/// kind ([`Error::is_insufficient_budget`], carrying the minimum and what
/// was left; [`Error::is_own`] is true, since the caller's context is
/// still live and may try something cheaper).
///
/// A context without a deadline always has enough. When the context has
/// already ended, nothing starts either, and the error is that end as the
/// new context would have reported it (the caller's deadline or
/// cancellation, so [`Error::is_own`] is false), not a refusal.
///
/// The derivations return a `Result`; the steps return a [`Guarded`]
/// future that resolves to the refusal without calling its closure.
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (request, _) = Context::background().child_with_timeout(Duration::from_millis(20));
/// let rows = request
///     .named("report query")
///     .min_budget(Duration::from_millis(300))
///     .with_timeout(Duration::from_secs(2), |_ctx| async { vec![1, 2, 3] })
///     .await;
/// let err = rows.unwrap_err();
/// assert!(err.is_insufficient_budget());
/// assert_eq!(err.context_name(), Some("report query"));
/// assert!(err.to_string().starts_with(r#"refused to start "report query" (set at "#));
/// assert!(err.to_string().ends_with("needs at least 300ms, only 20ms left"));
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a minimum budget does nothing until a context is derived with it"]
pub struct MinBudget<'a> {
    parent: &'a Context,
    name: Option<Cow<'static, str>>,
    min: Duration,
}

/// **Refuse doomed work.** [`min_budget`](Context::min_budget).
impl Context {
    /// The derivations and steps of this context, each refused at once when
    /// it would be granted less than `min`. See [`MinBudget`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let (query, _cancel) = request
    ///     .min_budget(Duration::from_millis(300))
    ///     .child_with_timeout(Duration::from_secs(5))
    ///     .expect("a second is left");
    /// assert_eq!(query.remaining(), Some(Duration::from_secs(1)));
    ///
    /// tokio::time::advance(Duration::from_millis(900)).await;
    /// let refused = request.min_budget(Duration::from_millis(300)).child().unwrap_err();
    /// assert_eq!(refused.remaining(), Some(Duration::from_millis(100)));
    /// # }
    /// ```
    pub fn min_budget(&self, min: Duration) -> MinBudget<'_> {
        MinBudget {
            parent: self,
            name: None,
            min,
        }
    }
}

impl<'a> Named<'a> {
    /// [`Context::min_budget`] for a derivation with this name.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_millis(5));
    /// let err = request
    ///     .named("rebuild index")
    ///     .min_budget(Duration::from_secs(1))
    ///     .child()
    ///     .unwrap_err();
    /// assert_eq!(err.context_name(), Some("rebuild index"));
    /// # }
    /// ```
    pub fn min_budget(self, min: Duration) -> MinBudget<'a> {
        let (parent, name) = self.into_parts();
        MinBudget {
            parent,
            name: Some(name),
            min,
        }
    }
}

impl<'a> MinBudget<'a> {
    /// Names what this derives, as [`Context::named`] does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_millis(5));
    /// let err = request
    ///     .min_budget(Duration::from_secs(1))
    ///     .named("rebuild index")
    ///     .child()
    ///     .unwrap_err();
    /// assert_eq!(err.context_name(), Some("rebuild index"));
    /// # }
    /// ```
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// [`Context::child`], unless less than the minimum is left.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, _cancel) = Context::background()
    ///     .min_budget(Duration::from_secs(1))
    ///     .child()
    ///     .expect("no deadline: never refused");
    /// assert!(!ctx.is_done());
    /// ```
    #[track_caller]
    pub fn child(self) -> Result<(Context, CancelHandle), Error> {
        self.derive(Limit::None, Location::caller())
    }

    /// [`Context::child_with_timeout`], unless the child would be granted
    /// less than the minimum.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_millis(250));
    /// let err = request
    ///     .min_budget(Duration::from_millis(300))
    ///     .child_with_timeout(Duration::from_secs(1))
    ///     .unwrap_err();
    /// assert_eq!(err.remaining(), Some(Duration::from_millis(250)));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_timeout(self, timeout: Duration) -> Result<(Context, CancelHandle), Error> {
        self.derive(Limit::Timeout(timeout), Location::caller())
    }

    /// [`Context::child_with_deadline`], unless the child would be granted
    /// less than the minimum.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let soon = Instant::now() + Duration::from_millis(10);
    /// let err = Context::background()
    ///     .min_budget(Duration::from_millis(50))
    ///     .child_with_deadline(soon)
    ///     .unwrap_err();
    /// assert_eq!(err.remaining(), Some(Duration::from_millis(10)));
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_deadline(self, deadline: Instant) -> Result<(Context, CancelHandle), Error> {
        self.derive(Limit::Deadline(deadline), Location::caller())
    }

    /// [`Context::with_timeout`], unless the step would be granted less
    /// than the minimum: then `f` is not called, and the step resolves to
    /// the refusal.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(2));
    /// let rows = request
    ///     .min_budget(Duration::from_millis(300))
    ///     .with_timeout(Duration::from_secs(1), |_ctx| async { 3 })
    ///     .await;
    /// assert_eq!(rows.unwrap(), 3);
    /// # }
    /// ```
    #[track_caller]
    pub fn with_timeout<F, Fut>(self, timeout: Duration, f: F) -> Guarded<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        self.step(Limit::Timeout(timeout), Location::caller(), f)
    }

    /// [`Context::with_deadline`], unless the step would be granted less
    /// than the minimum.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let at = Instant::now() + Duration::from_millis(100);
    /// let step = Context::background()
    ///     .min_budget(Duration::from_millis(300))
    ///     .with_deadline(at, |_ctx| async {});
    /// assert!(step.await.unwrap_err().is_insufficient_budget());
    /// # }
    /// ```
    #[track_caller]
    pub fn with_deadline<F, Fut>(self, deadline: Instant, f: F) -> Guarded<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        self.step(Limit::Deadline(deadline), Location::caller(), f)
    }

    /// [`Named::run`]: `fut` under a child of its own, unless less than the
    /// minimum is left of this context. `fut` is made before the check, but
    /// never polled when refused.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_millis(10));
    /// let out = request.min_budget(Duration::from_millis(50)).run(async { 1 }).await;
    /// assert!(out.unwrap_err().is_insufficient_budget());
    /// # }
    /// ```
    #[track_caller]
    pub fn run<F: Future>(self, fut: F) -> Guarded<F> {
        self.step(Limit::None, Location::caller(), |_| fut)
    }

    fn derive(
        self,
        limit: Limit,
        location: &'static Location<'static>,
    ) -> Result<(Context, CancelHandle), Error> {
        self.admit(limit, location)?;
        Ok(self.parent.derive(self.name, limit, location))
    }

    fn step<F, Fut>(self, limit: Limit, location: &'static Location<'static>, f: F) -> Guarded<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        match self.admit(limit, location) {
            Ok(()) => Guarded::started(self.parent.step(self.name, limit, location, f)),
            Err(err) => Guarded::refused(err),
        }
    }

    /// Ok if the new context would be granted at least the minimum; the
    /// refusal if not; and the end of this context, as the new context
    /// would report it, if this one has ended.
    fn admit(&self, limit: Limit, location: &'static Location<'static>) -> Result<(), Error> {
        if self.parent.is_done() {
            // Derived only to describe the end from below (an ancestor's,
            // so not the step's own): the error path can afford a node.
            let child = self
                .parent
                .derive_private(self.name.clone(), limit, location);
            return match child.err().or_else(|| self.parent.err()) {
                Some(err) => Err(err),
                None => Ok(()),
            };
        }
        let now = Instant::now();
        let own = match limit {
            Limit::None => None,
            Limit::Timeout(timeout) => Some(timeout),
            Limit::Deadline(at) => Some(at.saturating_duration_since(now)),
        };
        let left = self
            .parent
            .deadline()
            .map(|deadline| deadline.saturating_duration_since(now));
        let granted = match (own, left) {
            (Some(own), Some(left)) => Some(own.min(left)),
            (own, left) => own.or(left),
        };
        match granted {
            Some(granted) if granted < self.min => {
                let err =
                    Error::insufficient_budget(self.name.clone(), location, own, self.min, granted);
                crate::report::refused(self.parent, &err);
                Err(err)
            }
            _ => Ok(()),
        }
    }
}
