//! [`Context::cleanup`]: bounded work that outlives a cancellation.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use super::Timeout;
use crate::context::{Context, Limit};
use crate::core::Cold;

/// **Cleanup**: bounded work that outlives a cancellation.
impl Context {
    /// Runs the future made by `f` under a fresh, non-cancellable budget of
    /// `limit`: for the async cleanup a canceled step still owes (close a
    /// connection, release a lease, flush a log).
    ///
    /// The child keeps this context's values but neither its deadline nor its
    /// cancellation ([`without_cancel`](Self::without_cancel)), so it runs
    /// even when this context has already ended, and it still stops at
    /// `limit`, with an error for which [`Error::is_own`](crate::Error::is_own)
    /// is true.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, cancel) = Context::background().child();
    /// cancel.cancel_with("client went away");
    ///
    /// let released = request
    ///     .cleanup(Duration::from_millis(200), |_ctx| async { "lease released" })
    ///     .await;
    /// assert_eq!(released.unwrap(), "lease released");
    ///
    /// let stuck = request
    ///     .cleanup(Duration::from_millis(200), |_ctx| std::future::pending::<()>())
    ///     .await;
    /// assert!(stuck.unwrap_err().is_own(), "bounded by its own limit");
    /// # }
    /// ```
    #[track_caller]
    pub fn cleanup<F, Fut>(&self, limit: Duration, f: F) -> Timeout<Fut>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future,
    {
        self.cleanup_step(None, Limit::Timeout(limit), Location::caller(), f)
    }

    /// Runs the future `f` makes under a child of a context with this one's
    /// values but no cancellation, with `limit`.
    pub(crate) fn cleanup_step<F, Fut>(
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
        // A new root, with this context's values; below a budget report,
        // still a stage of it.
        match crate::report::under(self) {
            Some(under) => {
                self.without_cancel()
                    .step_with(Cold::stage_under(name, under), limit, location, f)
            }
            None => self.without_cancel().step(name, limit, location, f),
        }
    }
}
