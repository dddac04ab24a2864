//! [`ScopeError`]: every failure of a task scope, and why it stopped.

use std::fmt;

use super::Error;

/// Why a [`Context::scope`](crate::Context::scope) failed: the errors of its
/// body and tasks, in the order they happened (none is lost), and the
/// context's error if the scope's context ended from above.
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
///         scope.spawn(|_ctx| async { Err::<(), _>("disk full") });
///         Ok(())
///     })
///     .await
///     .unwrap_err();
/// assert_eq!(err.errors(), &["disk full"]);
/// assert!(!err.is_ended());
/// assert_eq!(err.to_string(), "1 failed in the scope: disk full");
/// # }
/// ```
pub struct ScopeError<E> {
    errors: Vec<E>,
    ended: Option<Error>,
}

impl<E> ScopeError<E> {
    pub(crate) fn new(errors: Vec<E>, ended: Option<Error>) -> Self {
        ScopeError { errors, ended }
    }

    /// The errors of the body and the tasks, in the order they happened.
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

    /// Takes the errors out, in the order they happened.
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

    /// True if the scope's context ended from above (deadline or
    /// cancellation of an ancestor) before the scope finished.
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
    ///         scope.spawn(|ctx: Context| async move { ctx.done().await; Ok::<(), ()>(()) });
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.is_ended());
    /// assert!(err.errors().is_empty());
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
    /// assert_eq!(err.ended().unwrap().to_string(), "canceled: shutting down");
    /// # }
    /// ```
    pub fn ended(&self) -> Option<&Error> {
        self.ended.as_ref()
    }
}

impl<E: fmt::Display> fmt::Display for ScopeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ended {
            Some(ended) if self.errors.is_empty() => return write!(f, "{ended}"),
            Some(ended) => write!(f, "{ended}; {} failed in the scope", self.errors.len())?,
            None => write!(f, "{} failed in the scope", self.errors.len())?,
        }
        for (n, error) in self.errors.iter().enumerate() {
            f.write_str(if n == 0 { ": " } else { "; " })?;
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug> fmt::Debug for ScopeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeError")
            .field("errors", &self.errors)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<E> std::error::Error for ScopeError<E>
where
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        super::gathered_source(self.ended.as_ref(), self.errors.first())
    }
}
