//! The fan-out macros: [`race!`], [`select_first!`], [`join!`] and
//! [`try_join!`] over a fixed set of closures of different types.
//!
//! The list forms ([`Context::race`](crate::Context::race) and its
//! siblings) take closures of one type, and no two closures have the same
//! type. These macros take each closure as it is, with nothing boxed, and
//! run every branch exactly as the list forms do: under its own child of the
//! context, with the same causes for the branches that are no longer needed
//! and the same ordering and cancel safety, and the fairness of a small list
//! (every branch polled on every poll, in input order). The branches live in
//! the future itself: nothing is allocated but their children. Each expands
//! to a future: `.await` it.
//!
//! The first argument is a [`Context`](crate::Context) (or a reference to
//! one), or a [`Named`](crate::Named) derivation: then each branch's child
//! is named after it with its index (`"replica[1]"`). Each closure receives
//! its branch's child context; its type is inferred, no annotation needed.
//! Up to twelve closures.

/// Runs each closure's future under its own child of a context; the first
/// to complete wins, whatever its output (Go's first-of-N, `tokio::select!`
/// over futures of one output type).
///
/// `race!(ctx, a, b, ...)` is [`Context::race`](crate::Context::race) for
/// closures of different types whose futures have one output type. It
/// resolves to `Ok((index, output))`, or to the context's error if it ends
/// first; the losers' children are canceled with the cause "lost the race"
/// and their futures dropped. See [`Race`](crate::future::Race) for
/// fairness, ordering and cancel safety. For two outputs of different types,
/// see [`Context::race_either`](crate::Context::race_either).
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::Context;
///
/// async fn from_cache(_ctx: Context) -> Option<String> {
///     tokio::time::sleep(Duration::from_millis(50)).await;
///     None
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let ctx = Context::background();
/// let (index, answer) = tokio_ctx::race!(
///     ctx,
///     from_cache,
///     |ctx| async move {
///         tokio::time::sleep(Duration::from_millis(10)).await;
///         ctx.check().ok().map(|()| String::from("from the database"))
///     },
/// )
/// .await
/// .unwrap();
/// assert_eq!((index, answer.as_deref()), (1, Some("from the database")));
/// # }
/// ```
#[macro_export]
macro_rules! race {
    ($ctx:expr, $($f:expr),+ $(,)?) => {
        $crate::__private::race(&$ctx, ($($crate::__private::branch($f),)+))
    };
}

/// Runs each closure's future of `Result` under its own child of a
/// context; the first `Ok` wins (first success among replicas).
///
/// `select_first!(ctx, a, b, ...)` is
/// [`Context::select_first`](crate::Context::select_first) for closures of
/// different types whose futures have one output type. It resolves to
/// `Ok((index, value))`; the others are canceled with the cause "lost the
/// race". If every branch fails, the [`SelectError`](crate::SelectError)
/// holds every failure in input order; if the context ends first, it holds
/// the context's error too.
///
/// ```
/// use tokio_ctx::Context;
///
/// async fn primary(_ctx: Context) -> Result<u32, String> {
///     Err("primary: connection refused".into())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = Context::background();
/// let (index, value) = tokio_ctx::select_first!(
///     ctx.named("replica"),
///     primary,
///     |_ctx| async { Ok(7) },
/// )
/// .await
/// .unwrap();
/// assert_eq!((index, value), (1, 7));
/// # }
/// ```
#[macro_export]
macro_rules! select_first {
    ($ctx:expr, $($f:expr),+ $(,)?) => {
        $crate::__private::select_first(&$ctx, ($($crate::__private::branch($f),)+))
    };
}

/// Runs each closure's future under its own child of a context and
/// resolves to the tuple of their outputs, in input order (`tokio::join!`
/// under one budget).
///
/// `join!(ctx, a, b, ...)` is [`Context::join_all`](crate::Context::join_all)
/// for closures of different types, whose outputs may differ too. It ends
/// early only if the context ends, with the context's error; outputs are not
/// inspected. See [`Join`](crate::future::Join).
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
/// let (user, orders) = tokio_ctx::join!(
///     request,
///     |_ctx| async { String::from("ada") },
///     |_ctx| async { vec![3u32, 5] },
/// )
/// .await
/// .unwrap();
/// assert_eq!((user.as_str(), orders.len()), ("ada", 2));
/// # }
/// ```
#[macro_export]
macro_rules! join {
    ($ctx:expr, $($f:expr),+ $(,)?) => {
        $crate::__private::join(&$ctx, ($($crate::__private::branch($f),)+))
    };
}

/// Runs each closure's future of `Result` under its own child of a context
/// and resolves to the tuple of their values, in input order; the first
/// `Err` cancels the rest (Go's `errgroup` over different functions,
/// `tokio::try_join!` under one budget).
///
/// `try_join!(ctx, a, b, ...)` is
/// [`Context::try_join_all`](crate::Context::try_join_all) for closures of
/// different types, whose values may differ; the error type is shared. The
/// siblings of a failed branch are canceled with the cause "a sibling
/// failed" and dropped; if the context ends first (also when a branch
/// noticed it first and failed because of it), the error is
/// [`TryJoinError::Ended`](crate::TryJoinError::Ended). See
/// [`TryJoin`](crate::future::TryJoin).
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::{Context, TryJoinError};
///
/// async fn user(_ctx: Context) -> Result<String, String> {
///     Ok("ada".into())
/// }
///
/// async fn orders(ctx: Context) -> Result<Vec<u32>, String> {
///     // Go style: give up with the context's error when it ends.
///     ctx.run(tokio::time::sleep(Duration::from_secs(5)))
///         .await
///         .map_err(|e| e.to_string())?;
///     Ok(vec![3, 5])
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let ctx = Context::background();
/// let (name, ids) = tokio_ctx::try_join!(ctx, user, orders).await.unwrap();
/// assert_eq!((name.as_str(), ids), ("ada", vec![3, 5]));
///
/// let err = tokio_ctx::try_join!(ctx, user, orders, |_ctx| async {
///     Err::<(), _>(String::from("payments: 503"))
/// })
/// .await
/// .unwrap_err();
/// assert!(matches!(err, TryJoinError::Failed { index: 2, .. }));
/// # }
/// ```
#[macro_export]
macro_rules! try_join {
    ($ctx:expr, $($f:expr),+ $(,)?) => {
        $crate::__private::try_join(&$ctx, ($($crate::__private::branch($f),)+))
    };
}
