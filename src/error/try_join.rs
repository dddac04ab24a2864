//! [`TryJoinError`]: why a `try_join_all` stopped.

use std::fmt;

use super::Error;

/// Why [`Context::try_join_all`](crate::Context::try_join_all) stopped early:
/// one future failed (the others were canceled with the cause "a sibling
/// failed"), or the context ended first.
///
/// ```
/// use tokio_ctx::{Context, TryJoinError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let steps = [0, 1, 2].map(|i| move |_ctx| async move {
///     if i == 1 { Err("disk full") } else { Ok(i) }
/// });
/// match Context::background().try_join_all(steps).await {
///     Err(TryJoinError::Failed { index, error }) => assert_eq!((index, error), (1, "disk full")),
///     other => panic!("unexpected {other:?}"),
/// }
/// # }
/// ```
#[derive(Debug)]
pub enum TryJoinError<E> {
    /// The future at `index` failed first.
    Failed {
        /// Its position in the input.
        index: usize,
        /// What it failed with.
        error: E,
    },
    /// The context ended before every future succeeded.
    Ended(Error),
}

impl<E> TryJoinError<E> {
    /// True if the context ended first.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// let err = ctx
    ///     .try_join_all([|_ctx| std::future::pending::<Result<(), ()>>()])
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.is_ended());
    /// # }
    /// ```
    pub fn is_ended(&self) -> bool {
        matches!(self, TryJoinError::Ended(_))
    }
}

impl<E: fmt::Display> fmt::Display for TryJoinError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryJoinError::Failed { index, error } => write!(f, "[{index}] failed: {error}"),
            TryJoinError::Ended(ended) => fmt::Display::fmt(ended, f),
        }
    }
}

impl<E> std::error::Error for TryJoinError<E>
where
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TryJoinError::Failed { error, .. } => Some(error),
            TryJoinError::Ended(ended) => Some(ended),
        }
    }
}
