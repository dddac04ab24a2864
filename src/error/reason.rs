//! [`Reason`]: why this crate canceled a context on its own account.

use std::fmt;

/// A reason this crate gives when it cancels a context itself, rather than
/// a [`CancelHandle`](crate::CancelHandle) with a cause of yours.
///
/// It is the [`cause`](crate::Error::cause) of such a cancellation, and
/// [`Error::reason`](crate::Error::reason) returns it, so code can match the
/// crate's reasons without comparing strings. New reasons may be added:
/// match with a wildcard arm.
///
/// ```
/// use tokio_ctx::{Context, Reason};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let loser = std::sync::Mutex::new(None);
/// Context::background()
///     .race([0u8, 1].map(|i| {
///         let loser = &loser;
///         move |ctx: Context| async move {
///             if i == 0 {
///                 *loser.lock().unwrap() = Some(ctx);
///                 std::future::pending::<()>().await;
///             }
///         }
///     }))
///     .await
///     .unwrap();
/// let err = loser.lock().unwrap().take().unwrap().err().unwrap();
/// match err.reason() {
///     Some(Reason::LostRace) => {} // expected: another branch won
///     Some(other) => panic!("unexpected: {other}"),
///     None => panic!("canceled by a user cause, or a deadline"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// "the operation it was derived for finished": a step
    /// ([`Context::with_timeout`](crate::Context::with_timeout) and the
    /// like) or a branch of a fan-out completed, or was dropped, so work
    /// started under its child stops with it.
    Finished,
    /// "the function making its future panicked": the closure given to a
    /// combinator panicked while making the future; what it started under
    /// its child stops.
    MakerPanicked,
    /// "lost the race": another branch of a race, or another replica of a
    /// `select_first`, won.
    LostRace,
    /// "a sibling failed": another branch of a `try_join_all`, or another
    /// task of a scope, failed.
    SiblingFailed,
    /// "a sibling panicked": another task of a scope panicked.
    SiblingPanicked,
    /// "the scope's body failed": the body of a scope returned an error.
    BodyFailed,
    /// "the task failed; its error went to the scope": the context of a
    /// scope's task that returned an error.
    TaskFailed,
    /// "the scope had already finished": what the handle of a task spawned
    /// into a scope that had returned resolves to (the task never ran; its
    /// context, born under the scope's ended one, reports the scope's end).
    ScopeClosed,
    /// "the task did not stop within its grace period and was dropped".
    GracePeriodOver,
    /// "the task panicked": the context of a task whose future panicked.
    TaskPanicked,
    /// "its task handle was dropped": a task of
    /// [`Context::spawn`](crate::Context::spawn) whose handle was dropped
    /// without [`detach`](crate::TaskHandle::detach).
    HandleDropped,
    /// "the task was aborted": a task's future was dropped before it
    /// finished, without a panic (Tokio aborted it as its runtime shut
    /// down, or it was still queued in a scope that ended).
    Aborted,
    /// "the race was given no futures": an empty race can have no winner.
    NothingToRace,
    /// "its cancellation token was canceled": a context derived with
    /// [`Context::child_with_token`](crate::Context::child_with_token)
    /// whose token was canceled by something other than a context.
    TokenCanceled,
    /// "the caller gave up on the request": a server's request context whose
    /// call (or response body) was dropped before it completed.
    CallerLeft,
    /// "the request completed": a server's request context once its
    /// response was complete.
    RequestCompleted,
    /// "its reserve went to cleanup": the work context of
    /// [`Context::reserve`](crate::Context::reserve) once the cleanup it
    /// reserved time for started.
    CleanupStarted,
}

impl Reason {
    /// The message, as `Display` prints it.
    ///
    /// ```
    /// assert_eq!(tokio_ctx::Reason::LostRace.message(), "lost the race");
    /// ```
    pub const fn message(self) -> &'static str {
        match self {
            Reason::Finished => "the operation it was derived for finished",
            Reason::MakerPanicked => "the function making its future panicked",
            Reason::LostRace => "lost the race",
            Reason::SiblingFailed => "a sibling failed",
            Reason::SiblingPanicked => "a sibling panicked",
            Reason::BodyFailed => "the scope's body failed",
            Reason::TaskFailed => "the task failed; its error went to the scope",
            Reason::ScopeClosed => "the scope had already finished",
            Reason::GracePeriodOver => {
                "the task did not stop within its grace period and was dropped"
            }
            Reason::TaskPanicked => "the task panicked",
            Reason::HandleDropped => "its task handle was dropped",
            Reason::Aborted => "the task was aborted",
            Reason::NothingToRace => "the race was given no futures",
            Reason::TokenCanceled => "its cancellation token was canceled",
            Reason::CallerLeft => "the caller gave up on the request",
            Reason::RequestCompleted => "the request completed",
            Reason::CleanupStarted => "its reserve went to cleanup",
        }
    }

    /// Every reason, in declaration order (for tests that must cover them
    /// all).
    #[cfg(all(test, not(tokio_ctx_loom)))]
    pub(crate) const ALL: [Reason; 17] = [
        Reason::Finished,
        Reason::MakerPanicked,
        Reason::LostRace,
        Reason::SiblingFailed,
        Reason::SiblingPanicked,
        Reason::BodyFailed,
        Reason::TaskFailed,
        Reason::ScopeClosed,
        Reason::GracePeriodOver,
        Reason::TaskPanicked,
        Reason::HandleDropped,
        Reason::Aborted,
        Reason::NothingToRace,
        Reason::TokenCanceled,
        Reason::CallerLeft,
        Reason::RequestCompleted,
        Reason::CleanupStarted,
    ];
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Reason {}

/// Compares what `value` prints with `expected`, allocating nothing: the
/// printed text is checked piece by piece as it is written, and writing
/// stops at the first difference.
pub(crate) fn displays_as(value: &dyn fmt::Display, expected: &str) -> bool {
    struct Compare<'a> {
        rest: &'a str,
    }

    impl fmt::Write for Compare<'_> {
        fn write_str(&mut self, piece: &str) -> fmt::Result {
            match self.rest.strip_prefix(piece) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(())
                }
                // Longer than expected, or different: stop writing.
                None => Err(fmt::Error),
            }
        }
    }

    let mut compare = Compare { rest: expected };
    fmt::write(&mut compare, format_args!("{value}")).is_ok() && compare.rest.is_empty()
}

#[cfg(all(test, not(tokio_ctx_loom)))]
mod tests {
    use super::*;

    #[test]
    fn display_is_compared_piece_by_piece() {
        struct Pieces;
        impl fmt::Display for Pieces {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "peer {} reset", 7)
            }
        }
        assert!(displays_as(&Pieces, "peer 7 reset"));
        assert!(
            !displays_as(&Pieces, "peer 7 reset!"),
            "shorter than expected"
        );
        assert!(!displays_as(&Pieces, "peer 7"), "longer than expected");
        assert!(!displays_as(&Pieces, "peer 8 reset"));
        assert!(displays_as(&"", ""));
    }

    /// Fails to compile when a reason is added without a place in `ALL`
    /// (and so without a test in `tests/error_causes.rs`).
    fn position(reason: Reason) -> usize {
        match reason {
            Reason::Finished => 0,
            Reason::MakerPanicked => 1,
            Reason::LostRace => 2,
            Reason::SiblingFailed => 3,
            Reason::SiblingPanicked => 4,
            Reason::BodyFailed => 5,
            Reason::TaskFailed => 6,
            Reason::ScopeClosed => 7,
            Reason::GracePeriodOver => 8,
            Reason::TaskPanicked => 9,
            Reason::HandleDropped => 10,
            Reason::Aborted => 11,
            Reason::NothingToRace => 12,
            Reason::TokenCanceled => 13,
            Reason::CallerLeft => 14,
            Reason::RequestCompleted => 15,
            Reason::CleanupStarted => 16,
        }
    }

    #[test]
    fn all_lists_every_reason_once() {
        for (i, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(position(*reason), i, "{reason:?}");
        }
    }

    #[test]
    fn every_reason_has_its_own_message() {
        let mut messages: Vec<_> = Reason::ALL.iter().map(|r| r.message()).collect();
        messages.sort_unstable();
        messages.dedup();
        assert_eq!(messages.len(), Reason::ALL.len());
    }
}
