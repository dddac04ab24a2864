//! [`ScopeError`]: every failure of a task scope, and why it stopped.

use std::fmt;

use super::Error;

/// Why a [`Context::scope`](crate::Context::scope) failed: the failure that
/// stopped it, every other error of its body and tasks (none is lost), the
/// tasks cut short after the grace period, and the context's error if the
/// scope's context ended from above.
///
/// Go's `errgroup` returns the first error and drops the rest; here
/// [`first`](Self::first) is that error, and the others are kept apart.
/// Errors that a task returned after the scope had been canceled (usually
/// the task giving up because of the first failure, Go style, with its
/// context's error) are [`after_cancel`](Self::after_cancel): they are
/// counted in the message, not spelled out.
///
/// When the context ended while tasks were failing (a nested scope failing
/// as its parent is canceled), both are kept: [`ended`](Self::ended) carries
/// the outer cause, so it reaches the top.
///
/// ```
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let err = Context::background()
///     .scope(|scope| async move {
///         scope.spawn(|_ctx| async { Err::<(), _>(String::from("backend answered 503")) });
///         for _ in 0..3 {
///             // Siblings that give up with their context's error, Go style.
///             scope.spawn(|ctx: Context| async move { Err::<(), _>(ctx.done().await.to_string()) });
///         }
///         Ok(())
///     })
///     .await
///     .unwrap_err();
/// assert_eq!(err.first().unwrap(), "backend answered 503");
/// assert_eq!(err.after_cancel().count(), 3);
/// assert_eq!(
///     err.to_string(),
///     "1 failed in the scope: backend answered 503 (3 more failed after the scope was canceled)"
/// );
/// # }
/// ```
pub struct ScopeError<E> {
    errors: Vec<E>,
    /// By error: whether it came after the scope's context had ended.
    late: Vec<bool>,
    forced: usize,
    ended: Option<Error>,
}

impl<E> ScopeError<E> {
    pub(crate) fn new(
        errors: Vec<E>,
        late: Vec<bool>,
        forced: usize,
        ended: Option<Error>,
    ) -> Self {
        ScopeError {
            errors,
            late,
            forced,
            ended,
        }
    }

    fn is_late(&self, index: usize) -> bool {
        self.late.get(index).copied().unwrap_or(false)
    }

    /// The failure that stopped the scope: the first error returned while
    /// the scope's context was still live (what `errgroup`'s `Wait`
    /// returns). `None` when every error came after the scope was canceled,
    /// or there was none: then [`ended`](Self::ended) says why it stopped.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .scope(|_scope| async { Err::<(), _>("the body failed") })
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.first(), Some(&"the body failed"));
    /// # }
    /// ```
    pub fn first(&self) -> Option<&E> {
        self.failures().next()
    }

    /// Takes the first failure out (see [`first`](Self::first)).
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .scope(|scope| async move {
    ///         scope.spawn(|_ctx| async { Err::<(), _>(String::from("disk full")) });
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap_err();
    /// let first: Option<String> = err.into_first();
    /// assert_eq!(first.as_deref(), Some("disk full"));
    /// # }
    /// ```
    pub fn into_first(self) -> Option<E> {
        let late = self.late;
        self.errors
            .into_iter()
            .enumerate()
            .find(|(index, _)| !late.get(*index).copied().unwrap_or(false))
            .map(|(_, error)| error)
    }

    /// The errors returned while the scope's context was live, in the order
    /// they happened: the first failure, and with
    /// [`collect_all`](crate::future::ScopeFuture::collect_all) every other
    /// one.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .scope(|scope| async move {
    ///         for i in 0..3 {
    ///             scope.spawn(move |_ctx| async move { Err::<(), _>(i) });
    ///         }
    ///         Ok(())
    ///     })
    ///     .collect_all()
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.failures().count(), 3);
    /// # }
    /// ```
    pub fn failures(&self) -> impl Iterator<Item = &E> + '_ {
        self.errors
            .iter()
            .enumerate()
            .filter(|(index, _)| !self.is_late(*index))
            .map(|(_, error)| error)
    }

    /// The errors returned after the scope's context had ended, in the
    /// order they happened: usually tasks giving up because of the first
    /// failure or of the caller's end, not failures of their own.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .scope(|scope| async move {
    ///         scope.spawn(|ctx: Context| async move { Err::<(), _>(ctx.done().await.to_string()) });
    ///         tokio::task::yield_now().await;
    ///         Err::<(), _>(String::from("the body failed"))
    ///     })
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.first().unwrap(), "the body failed");
    /// let after: Vec<_> = err.after_cancel().collect();
    /// assert_eq!(after.len(), 1);
    /// assert!(after[0].ends_with("): the scope's body failed"), "{}", after[0]);
    /// # }
    /// ```
    pub fn after_cancel(&self) -> impl Iterator<Item = &E> + '_ {
        self.errors
            .iter()
            .enumerate()
            .filter(|(index, _)| self.is_late(*index))
            .map(|(_, error)| error)
    }

    /// Every error of the body and the tasks, in the order they happened:
    /// [`failures`](Self::failures) and [`after_cancel`](Self::after_cancel)
    /// together.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .scope(|_scope| async { Err::<(), _>("the body failed") })
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.errors(), ["the body failed"]);
    /// # }
    /// ```
    pub fn errors(&self) -> &[E] {
        &self.errors
    }

    /// Takes every error out, in the order they happened.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .scope(|scope| async move {
    ///         scope.spawn(|_ctx| async { Err::<(), _>(String::from("lost")) });
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap_err();
    /// let errors: Vec<String> = err.into_errors();
    /// assert_eq!(errors, ["lost"]);
    /// # }
    /// ```
    pub fn into_errors(self) -> Vec<E> {
        self.errors
    }

    /// How many of the body and the tasks did not stop within the scope's
    /// [grace period](crate::future::ScopeFuture::grace_period) and had
    /// their futures dropped, whatever they were doing (a cleanup
    /// included).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel_with("shutting down");
    /// let err = ctx
    ///     .scope(|_scope| std::future::pending::<Result<(), ()>>())
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.forced(), 1, "the body ignored its context");
    /// # }
    /// ```
    pub fn forced(&self) -> usize {
        self.forced
    }

    /// True if the scope's context ended from above (deadline or
    /// cancellation of an ancestor) before the scope finished, and a task
    /// failed or was cut short. (When every task stopped by returning `Ok`,
    /// the scope is `Ok`.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(10));
    /// let err = ctx
    ///     .scope(|scope| async move {
    ///         scope.spawn(|ctx: Context| async move { Err::<(), _>(ctx.done().await) });
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.is_ended());
    /// assert!(err.first().is_none(), "the task only gave up");
    /// # }
    /// ```
    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// The context's error, if it ended from above.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel_with("shutting down");
    /// let err = ctx
    ///     .scope(|scope| async move {
    ///         scope.spawn(|_ctx| std::future::pending::<Result<(), ()>>());
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.ended().unwrap().cause().unwrap().to_string(), "shutting down");
    /// # }
    /// ```
    pub fn ended(&self) -> Option<&Error> {
        self.ended.as_ref()
    }
}

impl<E: fmt::Display> fmt::Display for ScopeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().count();
        let late = self.errors.len() - failed;
        let mut sep = "";
        if let Some(ended) = &self.ended {
            write!(f, "{ended}")?;
            sep = "; ";
        }
        if failed > 0 {
            write!(f, "{sep}{failed} failed in the scope")?;
            for (n, error) in self.failures().enumerate() {
                f.write_str(if n == 0 { ": " } else { "; " })?;
                write!(f, "{error}")?;
            }
            sep = "; ";
        }
        match (late, failed) {
            (0, _) => {}
            (_, 0) if sep.is_empty() => write!(f, "{late} failed after the scope was canceled")?,
            (_, 0) => write!(f, " ({late} failed after the scope was canceled)")?,
            _ => write!(f, " ({late} more failed after the scope was canceled)")?,
        }
        if self.forced > 0 {
            let sep = if sep.is_empty() && late == 0 {
                ""
            } else {
                "; "
            };
            write!(f, "{sep}{} dropped after the grace period", self.forced)?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug> fmt::Debug for ScopeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeError")
            .field("errors", &self.errors)
            .field("after_cancel", &self.late)
            .field("forced", &self.forced)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<E> std::error::Error for ScopeError<E>
where
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        super::gathered_source(self.ended.as_ref(), self.first())
    }
}
