//! [`Graceful`]: a task's future that may finish on its own after its
//! context ends, for a grace period, before it is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::context::Context;
use crate::current::Scoped;
use crate::error::Error;
use crate::future::wait::Wait;

/// A grace period shared by a scope and its tasks, so that it can be set
/// after the tasks were spawned.
#[derive(Debug)]
pub(crate) struct Grace(AtomicU64);

impl Grace {
    pub(crate) fn new(grace: Duration) -> Arc<Self> {
        Arc::new(Grace(AtomicU64::new(saturating_nanos(grace))))
    }

    pub(crate) fn set(&self, grace: Duration) {
        self.0.store(saturating_nanos(grace), Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pin_project! {
    /// Runs a future with its context as current. Once the context ends the
    /// future keeps being polled for the grace period, so that it can stop
    /// cleanly on its own; then it resolves to the context's error, and the
    /// future is dropped with it.
    pub(crate) struct Graceful<F> {
        // Holds the context too, current while the future is polled.
        #[pin]
        fut: Scoped<F>,
        #[pin]
        wait: Wait,
        grace: Arc<Grace>,
        ended: Option<Error>,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<F: Future> Graceful<F> {
    pub(crate) fn new(ctx: Context, fut: F, grace: Arc<Grace>) -> Self {
        Graceful {
            fut: Scoped::new(ctx, fut),
            wait: Wait::new(),
            grace,
            ended: None,
            timer: None,
        }
    }
}

impl<F: Future> Future for Graceful<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if this.ended.is_none() {
            match this
                .wait
                .poll_wait(this.fut.as_ref().get_ref().context(), cx)
            {
                Poll::Ready(err) => {
                    *this.ended = Some(err);
                    let grace = this.grace.get();
                    let timer = tokio::time::Instant::now()
                        .checked_add(grace)
                        .map(tokio::time::sleep_until);
                    this.timer.set(timer);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        // An unrepresentable grace period leaves no timer: the task may take
        // as long as it likes.
        if let Some(timer) = this.timer.as_pin_mut() {
            if timer.poll(cx).is_ready() {
                if let Some(err) = this.ended.take() {
                    return Poll::Ready(Err(err));
                }
            }
        }
        Poll::Pending
    }
}
