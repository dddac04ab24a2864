//! [`SelectError`]: every failure of a `select_first` that found no success.

use std::fmt;

use super::Error;

/// Why [`Context::select_first`](crate::Context::select_first) produced no
/// success: every candidate failed, or the context ended first.
///
/// The failures are kept in input order, each with its index, whether or not
/// the context ended; none is lost.
///
/// ```
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let replicas = ["a", "b"].map(|name| move |_ctx| async move { Err::<(), _>(format!("{name} is down")) });
/// let err = Context::background().select_first(replicas).await.unwrap_err();
/// assert!(!err.is_ended());
/// assert_eq!(err.failures().len(), 2);
/// assert_eq!(err.to_string(), "all 2 candidates failed: [0] a is down; [1] b is down");
/// # }
/// ```
pub struct SelectError<E> {
    failures: Vec<(usize, E)>,
    ended: Option<Error>,
}

impl<E> SelectError<E> {
    pub(crate) fn new(mut failures: Vec<(usize, E)>, ended: Option<Error>) -> Self {
        failures.sort_by_key(|(index, _)| *index);
        SelectError { failures, ended }
    }

    /// The failures seen, in input order, each with its candidate's index.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .select_first([2, 1].map(|n| move |_ctx| async move { Err::<(), _>(n) }))
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.failures(), [(0, 2), (1, 1)]);
    /// # }
    /// ```
    pub fn failures(&self) -> &[(usize, E)] {
        &self.failures
    }

    /// Takes the failures out, in input order.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = Context::background()
    ///     .select_first([|_ctx| async { Err::<(), _>(7) }])
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.into_failures(), vec![(0, 7)]);
    /// # }
    /// ```
    pub fn into_failures(self) -> Vec<(usize, E)> {
        self.failures
    }

    /// True if the context ended before any candidate succeeded (some
    /// candidates may not have finished).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(5));
    /// let err = ctx
    ///     .select_first([|_ctx| std::future::pending::<Result<(), ()>>()])
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.is_ended());
    /// # }
    /// ```
    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// The context's error, if it ended first.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel_with("client gone");
    /// let err = ctx
    ///     .select_first([|_ctx| std::future::pending::<Result<(), ()>>()])
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.ended().unwrap().cause().unwrap().to_string(), "client gone");
    /// # }
    /// ```
    pub fn ended(&self) -> Option<&Error> {
        self.ended.as_ref()
    }
}

impl<E: fmt::Display> fmt::Display for SelectError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ended {
            Some(ended) => write!(f, "{ended} after {} failed candidates", self.failures.len())?,
            None if self.failures.is_empty() => {
                return f.write_str("select_first was given no candidates")
            }
            None => write!(f, "all {} candidates failed", self.failures.len())?,
        }
        for (n, (index, failure)) in self.failures.iter().enumerate() {
            let sep = if n == 0 { ": " } else { "; " };
            write!(f, "{sep}[{index}] {failure}")?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug> fmt::Debug for SelectError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectError")
            .field("failures", &self.failures)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<E> std::error::Error for SelectError<E>
where
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        super::gathered_source(
            self.ended.as_ref(),
            self.failures.first().map(|(_, failure)| failure),
        )
    }
}
