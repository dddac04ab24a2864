//! [`Guarded`]: a step that starts only with enough budget left.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::Timeout;
use crate::context::Context;
use crate::error::Error;

pin_project! {
    /// A step made by [`MinBudget`](crate::MinBudget): a [`Timeout`] when
    /// enough of the budget was left, or the refusal when not.
    ///
    /// The decision was taken when the step was made, before its closure
    /// was called: a refused step never called it, and resolves to the
    /// refusal ([`Error::is_insufficient_budget`]) on its first poll. A
    /// step that started behaves exactly as the `Timeout` it holds.
    ///
    /// # Cancel safety
    ///
    /// As the `Timeout` it holds.
    ///
    /// # Panics
    ///
    /// Polling after it resolved panics.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_millis(20));
    /// let mut called = false;
    /// let query = request
    ///     .min_budget(Duration::from_millis(300))
    ///     .with_timeout(Duration::from_secs(1), |_ctx| {
    ///         called = true;
    ///         async {}
    ///     });
    /// assert!(query.is_refused());
    /// assert!(query.await.unwrap_err().is_insufficient_budget());
    /// assert!(!called, "a refused step never makes its future");
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Guarded<F> {
        #[pin]
        step: Option<Timeout<F>>,
        refused: Option<Error>,
    }
}

impl<F> Guarded<F> {
    pub(crate) fn started(step: Timeout<F>) -> Self {
        Guarded {
            step: Some(step),
            refused: None,
        }
    }

    pub(crate) fn refused(err: Error) -> Self {
        Guarded {
            step: None,
            refused: Some(err),
        }
    }

    /// True if the step was refused: its closure was not called, and it
    /// will resolve to the refusal.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let step = Context::background()
    ///     .min_budget(Duration::from_secs(1))
    ///     .with_timeout(Duration::from_secs(5), |_ctx| async { 1 });
    /// assert!(!step.is_refused(), "no deadline above: the whole 5s are there");
    /// assert_eq!(step.await.unwrap(), 1);
    /// # }
    /// ```
    pub fn is_refused(&self) -> bool {
        self.step.is_none()
    }

    /// The child the step runs under, as [`Timeout::context`]; `None` for a
    /// refused step and once the step has finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let step = Context::background()
    ///     .min_budget(Duration::from_secs(1))
    ///     .with_timeout(Duration::from_secs(5), |_ctx| async {});
    /// assert_eq!(step.context().unwrap().remaining(), Some(Duration::from_secs(5)));
    /// # }
    /// ```
    pub fn context(&self) -> Option<Context> {
        self.step.as_ref().and_then(Timeout::context)
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.step.as_pin_mut() {
            Some(step) => step.poll(cx),
            None => match this.refused.take() {
                Some(err) => Poll::Ready(Err(err)),
                // The documented `# Panics`.
                None => panic!("`Guarded` polled after it completed"),
            },
        }
    }
}

impl<F> std::fmt::Debug for Guarded<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("step", &self.step)
            .field("refused", &self.refused)
            .finish()
    }
}
