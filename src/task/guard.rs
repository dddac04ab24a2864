//! [`TaskGuard`]: ends a task's child context however the task ends.

use crate::cancel::CancelHandle;
use crate::core::Cause;
use crate::error::{Reason, FINISHED};

/// The cause left on the child of a task that panicked.
pub(crate) static PANICKED: Reason = Reason::TaskPanicked;

/// The cause left on the child of a task whose future was dropped before
/// it finished, without a panic: Tokio aborted it, its runtime shutting
/// down, or it was queued in a scope that ended first.
pub(crate) static ABORTED: Reason = Reason::Aborted;

/// Cancels a task's child when the task is done with it: with the given
/// reason on a normal end, with [`PANICKED`] when the task unwinds and
/// [`ABORTED`] when it is dropped unfinished, so that whatever the task
/// started under its child stops too.
#[derive(Debug)]
pub(crate) struct TaskGuard(Option<CancelHandle>);

impl TaskGuard {
    pub(crate) fn new(handle: CancelHandle) -> Self {
        TaskGuard(Some(handle))
    }

    pub(crate) fn finish(mut self, reason: &'static Reason) {
        if let Some(handle) = self.0.take() {
            handle.cancel_for(Cause::Reason(reason));
        }
    }

    pub(crate) fn finished(self) {
        self.finish(&FINISHED);
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            let reason = if std::thread::panicking() {
                &PANICKED
            } else {
                &ABORTED
            };
            handle.cancel_for(Cause::Reason(reason));
        }
    }
}
