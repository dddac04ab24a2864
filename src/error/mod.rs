//! [`Error`]: why a context ended, and which one; and the errors of the
//! combinators that run several futures.

mod reason;
mod scope;
mod select;
mod try_join;

pub use reason::Reason;
pub use scope::ScopeError;
pub use select::SelectError;
pub use try_join::TryJoinError;

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::core::{Cause, Ending, Node};

/// Why a context ended: canceled (with the canceller's cause, if any) or its
/// deadline exceeded, and which context it was.
///
/// Every error names the context that actually ended: the name given with
/// [`Context::named`](crate::Context::named), or else the place in the source
/// where it was derived, together with the budget it was given. An error also
/// says whether that context is the one it was asked from ([`is_own`]) or an
/// ancestor: a step whose own limit ran out can often recover, while a step
/// whose caller's budget ran out cannot.
///
/// Errors are cheap to clone (one reference count). They do not implement
/// `PartialEq`: a cause is any error, which has no equality, and two ends of
/// the same context are still different events. Compare what matters with
/// the predicates instead ([`is_canceled`](Error::is_canceled),
/// [`is_deadline_exceeded`](Error::is_deadline_exceeded), [`is_own`],
/// [`context_name`](Error::context_name), a downcast of
/// [`cause`](Error::cause)), as Go code uses `errors.Is`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let request = Context::background();
/// let err = request
///     .named("close")
///     .with_timeout(Duration::from_millis(5), |_ctx| std::future::pending::<()>())
///     .await
///     .unwrap_err();
///
/// assert!(err.is_deadline_exceeded());
/// assert!(err.is_own(), "the step's own 5ms ran out, not the request");
/// assert_eq!(err.context_name(), Some("close"));
/// assert!(err.to_string().starts_with("deadline of \"close\" (5ms, set at "));
/// # }
/// ```
///
/// [`is_own`]: Error::is_own
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: Kind,
    name: Option<Cow<'static, str>>,
    location: &'static Location<'static>,
    budget: Option<Duration>,
    own: bool,
    /// How many levels above the context it was read from the context
    /// that ended is; `None` when not known (a cancellation from above,
    /// whose error all descendants share).
    levels: Option<u32>,
}

enum Kind {
    Canceled(Option<Cause>),
    /// With the cause the deadline was given, if any.
    DeadlineExceeded(Option<Cause>),
    /// Refused before it started: `min` was asked, `remaining` was left.
    InsufficientBudget {
        min: Duration,
        remaining: Duration,
    },
}

impl Error {
    /// Describes `ending` as seen from `asked`, the node whose state was read.
    pub(crate) fn from_ending(asked: &Node, ending: Ending<'_>) -> Self {
        match ending {
            Ending::Canceled { cause, .. } => {
                Error::about(asked, Kind::Canceled(cause), true, Some(0))
            }
            Ending::CanceledAbove(error, _) => error,
            Ending::DeadlineExceeded { by, levels } => Error::about(
                by,
                Kind::DeadlineExceeded(by.deadline_cause()),
                std::ptr::eq(asked, by),
                Some(levels),
            ),
        }
    }

    /// The error the descendants of `by` report when `by` was canceled:
    /// never their own.
    pub(crate) fn canceled_above(by: &Node, cause: Option<Cause>) -> Self {
        Error::about(by, Kind::Canceled(cause), false, None)
    }

    /// An end of `by`'s, described with what `by` says about itself.
    fn about(by: &Node, kind: Kind, own: bool, levels: Option<u32>) -> Self {
        Error {
            inner: Arc::new(Inner {
                kind,
                name: by.name(),
                location: by.meta.location,
                budget: by.meta.budget(),
                own,
                levels,
            }),
        }
    }

    /// The error of `node` if it has ended.
    pub(crate) fn of(node: &Node) -> Option<Self> {
        if !node.is_done() {
            return None;
        }
        node.ending().map(|ending| Error::from_ending(node, ending))
    }

    /// The error of a node known to have ended (its wait list was closed,
    /// or a check said so). Falls back to a plain cancellation of the node
    /// itself, so that a woken waiter always has an answer.
    pub(crate) fn ended(node: &Node) -> Self {
        let ending = node.ending().unwrap_or_else(|| Ending::Canceled {
            cause: None,
            at: tokio::time::Instant::now(),
        });
        Error::from_ending(node, ending)
    }

    /// A cancellation by this crate that no context recorded; the location
    /// is the crate's own call site.
    #[track_caller]
    pub(crate) fn canceled_for(reason: &'static Reason) -> Self {
        Error {
            inner: Arc::new(Inner {
                kind: Kind::Canceled(Some(Cause::Reason(reason))),
                name: None,
                location: Location::caller(),
                budget: None,
                own: true,
                levels: Some(0),
            }),
        }
    }

    /// A cancellation by this crate of `ctx` (its own, with `reason`) that
    /// `ctx` itself may not record, because it had already ended for
    /// another reason: a task dropped after its grace period, say.
    pub(crate) fn canceled_in(ctx: &crate::Context, reason: &'static Reason) -> Self {
        match ctx.node() {
            Some(node) => Error::about(
                node,
                Kind::Canceled(Some(Cause::Reason(reason))),
                true,
                Some(0),
            ),
            None => Error::canceled_for(reason),
        }
    }

    /// A step or derivation refused by [`Context::min_budget`](crate::Context::min_budget):
    /// it asked for at least `min` and would have had only `remaining`.
    pub(crate) fn insufficient_budget(
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
        budget: Option<Duration>,
        min: Duration,
        remaining: Duration,
    ) -> Self {
        Error {
            inner: Arc::new(Inner {
                kind: Kind::InsufficientBudget { min, remaining },
                name,
                location,
                budget,
                own: true,
                levels: Some(0),
            }),
        }
    }

    /// True if the context was canceled through a [`CancelHandle`](crate::CancelHandle)
    /// (its own or an ancestor's) before any deadline passed.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// assert!(ctx.err().unwrap().is_canceled());
    /// ```
    pub fn is_canceled(&self) -> bool {
        matches!(self.inner.kind, Kind::Canceled(_))
    }

    /// True if the context's deadline (its own or an inherited one) passed
    /// before anyone canceled it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _cancel) = Context::background().child_with_timeout(Duration::ZERO);
    /// assert!(ctx.err().unwrap().is_deadline_exceeded());
    /// # }
    /// ```
    pub fn is_deadline_exceeded(&self) -> bool {
        matches!(self.inner.kind, Kind::DeadlineExceeded(_))
    }

    /// True if a step or derivation was refused before it started, because
    /// less than its [`min_budget`](crate::Context::min_budget) was left:
    /// no work was done, and the caller's context is still live
    /// ([`is_own`](Error::is_own) is true), so the caller may fall back to
    /// something cheaper. [`min_budget`](Error::min_budget) and
    /// [`remaining`](Error::remaining) say how far apart the two were.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_millis(20));
    /// let err = request
    ///     .min_budget(Duration::from_millis(300))
    ///     .child()
    ///     .unwrap_err();
    /// assert!(err.is_insufficient_budget());
    /// assert!(!err.is_deadline_exceeded() && !err.is_canceled());
    /// assert_eq!(err.min_budget(), Some(Duration::from_millis(300)));
    /// assert_eq!(err.remaining(), Some(Duration::from_millis(20)));
    /// # }
    /// ```
    pub fn is_insufficient_budget(&self) -> bool {
        matches!(self.inner.kind, Kind::InsufficientBudget { .. })
    }

    /// The minimum budget a refused step asked for; `None` unless
    /// [`is_insufficient_budget`](Error::is_insufficient_budget).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_millis(20));
    /// let err = request.min_budget(Duration::from_millis(300)).child().unwrap_err();
    /// assert_eq!(err.min_budget(), Some(Duration::from_millis(300)));
    /// # }
    /// ```
    pub fn min_budget(&self) -> Option<Duration> {
        match self.inner.kind {
            Kind::InsufficientBudget { min, .. } => Some(min),
            _ => None,
        }
    }

    /// The budget a refused step would have had: the smaller of its own
    /// limit and what was left of its context. `None` unless
    /// [`is_insufficient_budget`](Error::is_insufficient_budget).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    /// let err = request
    ///     .min_budget(Duration::from_millis(300))
    ///     .child_with_timeout(Duration::from_millis(100))
    ///     .unwrap_err();
    /// assert_eq!(err.remaining(), Some(Duration::from_millis(100)), "its own limit is smaller");
    /// # }
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        match self.inner.kind {
            Kind::InsufficientBudget { remaining, .. } => Some(remaining),
            _ => None,
        }
    }

    /// The cause given to [`CancelHandle::cancel_with`](crate::CancelHandle::cancel_with),
    /// the reason this crate canceled the context (for example, the
    /// combinator it was derived for finished), or the cause a deadline was
    /// given with ([`Context::child_with_timeout_cause`](crate::Context::child_with_timeout_cause),
    /// Go's `context.Cause` after `WithTimeoutCause`). `None` for a
    /// deadline without one and for a plain [`cancel`](crate::CancelHandle::cancel).
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel_with("shutting down");
    /// let err = ctx.err().unwrap();
    /// assert_eq!(err.cause().unwrap().to_string(), "shutting down");
    /// assert_eq!(err.cause().unwrap().to_string(), "shutting down");
    /// ```
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match &self.inner.kind {
            Kind::Canceled(Some(cause)) | Kind::DeadlineExceeded(Some(cause)) => {
                Some(cause.as_error())
            }
            _ => None,
        }
    }

    /// True if the context that ended is the one this error was read from:
    /// its own deadline passed, or its own handle canceled it. False when an
    /// ancestor ended first, so the caller's budget is gone as well.
    ///
    /// The combinators ([`Context::with_timeout`](crate::Context::with_timeout),
    /// [`Context::with_deadline`](crate::Context::with_deadline)) read the
    /// error from the child they derived, so there `is_own` means "this
    /// step's own limit fired".
    ///
    /// When a step's limit and its caller's end at the same instant, the
    /// caller's is the one that counts: the step asked for nothing tighter.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (parent, cancel_parent) = Context::background().child();
    /// let (child, _cancel_child) = parent.child();
    /// cancel_parent.cancel();
    /// assert!(parent.err().unwrap().is_own());
    /// assert!(!child.err().unwrap().is_own(), "inherited from the parent");
    /// ```
    pub fn is_own(&self) -> bool {
        self.inner.own
    }

    /// How many levels above the context this error was read from the
    /// context that ended is: `Some(0)` for its own end, `Some(n)` for the
    /// deadline of an ancestor `n` levels up (a step whose budget was
    /// clipped by its request's, say), `None` for a cancellation that came
    /// from above (its descendants share one error, whatever their depth).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().named("request").child_with_timeout(Duration::from_secs(1));
    /// let (handler, _) = request.child();
    /// let (query, _) = handler.child_with_timeout(Duration::from_secs(5));
    /// tokio::time::advance(Duration::from_secs(1)).await;
    /// let err = query.err().unwrap();
    /// assert_eq!(err.context_name(), Some("request"));
    /// assert_eq!(err.levels_up(), Some(2));
    /// assert!(err.to_string().ends_with("exceeded (2 levels up)"));
    /// # }
    /// ```
    pub fn levels_up(&self) -> Option<usize> {
        self.inner.levels.map(|levels| levels as usize)
    }

    /// The name of the context that ended, if it was given one with
    /// [`Context::named`](crate::Context::named).
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().named("upload").child();
    /// cancel.cancel();
    /// assert_eq!(ctx.err().unwrap().context_name(), Some("upload"));
    /// ```
    pub fn context_name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Where the context that ended was derived.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// assert_eq!(ctx.err().unwrap().location().line(), line!() - 2);
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.inner.location
    }

    /// The limit the context that ended was derived with: the timeout asked
    /// for, or the time left until the deadline asked for at derivation.
    /// `None` for a context derived without a limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _cancel) = Context::background().child_with_timeout(Duration::ZERO);
    /// assert_eq!(ctx.err().unwrap().budget(), Some(Duration::ZERO));
    /// # }
    /// ```
    pub fn budget(&self) -> Option<Duration> {
        self.inner.budget
    }

    /// The reason, when this crate canceled the context on its own account
    /// (a race lost, a sibling failed, a step finished, ...): match on it
    /// instead of comparing messages. `None` for a deadline and for a
    /// cancellation through a [`CancelHandle`](crate::CancelHandle).
    ///
    /// ```
    /// use tokio_ctx::{Context, Reason};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut spawned = None;
    /// Context::background()
    ///     .with_timeout(std::time::Duration::from_secs(1), |ctx| {
    ///         spawned = Some(ctx.clone());
    ///         async {}
    ///     })
    ///     .await
    ///     .unwrap();
    /// let err = spawned.unwrap().err().unwrap();
    /// assert_eq!(err.reason(), Some(Reason::Finished), "the step it was derived for finished");
    /// # }
    /// ```
    pub fn reason(&self) -> Option<Reason> {
        match &self.inner.kind {
            Kind::Canceled(Some(Cause::Reason(reason))) => Some(**reason),
            _ => None,
        }
    }

    /// True if the cause prints exactly as `expected`: for causes given as a
    /// `&str` or a `String` ([`CancelHandle::cancel_with("...")`](crate::CancelHandle::cancel_with)),
    /// which cannot be downcast. Nothing is allocated: the cause is compared
    /// as it is printed, and printing stops at the first difference. False
    /// without a cause.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel_with(format!("shutting down after {} requests", 3));
    /// let err = ctx.err().unwrap();
    /// assert!(err.cause_is("shutting down after 3 requests"));
    /// assert!(!err.cause_is("shutting down"));
    /// ```
    pub fn cause_is(&self, expected: &str) -> bool {
        self.cause()
            .is_some_and(|cause| reason::displays_as(&cause, expected))
    }

    /// True if the context was canceled for one of this crate's own
    /// reasons, `reason`.
    #[cfg(any(feature = "tonic", feature = "axum"))]
    pub(crate) fn is_for(&self, reason: &'static Reason) -> bool {
        self.reason() == Some(*reason)
    }
}

/// Prints a location as `file:line`, the way people quote source positions.
pub(crate) struct ShortLocation(pub(crate) &'static Location<'static>);

impl fmt::Display for ShortLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0.file(), self.0.line())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let at = ShortLocation(inner.location);
        match &inner.kind {
            // Names the context as a deadline does, so that a log line says
            // which context a cancellation ended, not only why.
            Kind::Canceled(cause) => {
                match &inner.name {
                    Some(name) => write!(f, "canceled (context {name:?}, set at {at})")?,
                    None => write!(f, "canceled (context set at {at})")?,
                }
                match cause {
                    Some(cause) => write!(f, ": {}", cause.as_error()),
                    None => Ok(()),
                }
            }
            Kind::InsufficientBudget { min, remaining } => {
                f.write_str("refused to start ")?;
                if let Some(name) = &inner.name {
                    write!(f, "{name:?} ")?;
                }
                write!(f, "(set at {at}): needs ")?;
                // `Duration::MAX` asks for more than any budget holds; its
                // 584 billion years say nothing to a reader.
                if *min == Duration::MAX {
                    f.write_str("an unbounded budget")?;
                } else {
                    write!(f, "at least {min:?}")?;
                }
                write!(f, ", only {remaining:?} left")
            }
            Kind::DeadlineExceeded(cause) => {
                f.write_str("deadline ")?;
                if let Some(name) = &inner.name {
                    write!(f, "of {name:?} ")?;
                }
                match inner.budget {
                    Some(budget) => write!(f, "({budget:?}, set at {at}) exceeded")?,
                    None => write!(f, "(set at {at}) exceeded")?,
                }
                match inner.levels {
                    Some(1) => f.write_str(" (1 level up)")?,
                    Some(levels) if levels > 1 => write!(f, " ({levels} levels up)")?,
                    _ => {}
                }
                match cause {
                    Some(cause) => write!(f, ": {}", cause.as_error()),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut s = f.debug_struct("Error");
        match &inner.kind {
            Kind::Canceled(cause) => s.field("kind", &"Canceled").field("cause", cause),
            Kind::DeadlineExceeded(cause) => {
                s.field("kind", &"DeadlineExceeded").field("cause", cause)
            }
            Kind::InsufficientBudget { min, remaining } => s
                .field("kind", &"InsufficientBudget")
                .field("min_budget", min)
                .field("remaining", remaining),
        };
        s.field("context", &inner.name)
            .field("location", &ShortLocation(inner.location).to_string())
            .field("budget", &inner.budget)
            .field("own", &inner.own)
            .field("levels_up", &inner.levels)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            Kind::Canceled(Some(cause)) | Kind::DeadlineExceeded(Some(cause)) => {
                Some(cause.as_error())
            }
            _ => None,
        }
    }
}

/// Deadlines and refusals for too little budget become
/// [`io::ErrorKind::TimedOut`], cancellations
/// [`io::ErrorKind::Interrupted`]; the original error is kept as the inner
/// error, so it can be recovered with [`io::Error::get_ref`] and downcast.
///
/// ```
/// use std::io;
/// use tokio_ctx::Context;
///
/// let (ctx, cancel) = Context::background().child();
/// cancel.cancel();
/// let io_err = io::Error::from(ctx.check().unwrap_err());
/// assert_eq!(io_err.kind(), io::ErrorKind::Interrupted);
/// assert!(io_err.get_ref().unwrap().is::<tokio_ctx::Error>());
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        let kind = if err.is_deadline_exceeded() || err.is_insufficient_budget() {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::Interrupted
        };
        io::Error::new(kind, err)
    }
}

/// The source of an error that gathers several: the context's end if there
/// was one, since it is what stopped everything, else the first failure.
fn gathered_source<'a, E>(
    ended: Option<&'a Error>,
    first: Option<&'a E>,
) -> Option<&'a (dyn std::error::Error + 'static)>
where
    E: std::error::Error + 'static,
{
    match ended {
        Some(ended) => Some(ended),
        None => first.map(|failure| failure as &(dyn std::error::Error + 'static)),
    }
}

/// The cause a combinator leaves on the child it derived once it finishes,
/// so that work spawned under that child stops with it.
pub(crate) static FINISHED: Reason = Reason::Finished;

/// The cause left on a context whose future's maker panicked, so that what
/// the maker started under it stops.
pub(crate) static MAKER_PANICKED: Reason = Reason::MakerPanicked;

/// The cause left on the children of a race that another child won.
pub(crate) static LOST_RACE: Reason = Reason::LostRace;

/// The cause left on the siblings of a task or future that failed.
pub(crate) static SIBLING_FAILED: Reason = Reason::SiblingFailed;

/// The cause left on a request's context when its caller dropped the call
/// before it completed.
#[cfg(feature = "tower")]
pub(crate) static CALLER_LEFT: Reason = Reason::CallerLeft;

/// The cause left on a request's context once its response is complete.
#[cfg(feature = "tower")]
pub(crate) static REQUEST_COMPLETED: Reason = Reason::RequestCompleted;
