//! Interoperation with tokio-util's [`CancellationToken`], so that libraries
//! that speak tokens work with contexts unchanged.

use std::borrow::Cow;
use std::panic::Location;

use tokio_util::sync::CancellationToken;

use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::core::Cause;
use crate::error::Reason;

static TOKEN_CANCELED: Reason = Reason("its cancellation token was canceled");

/// **Tokens**: the bridge to tokio-util's `CancellationToken`.
impl Context {
    /// A [`CancellationToken`] that is canceled when this context ends, by
    /// cancellation or by its deadline: hand it to code that takes a token.
    ///
    /// Each call registers one [`on_done`](Context::on_done) callback on the
    /// context (and, for a context with a deadline, inside a runtime, one
    /// small task that waits for it): call it once per context and clone the
    /// token. A context that never ends gives a token that is never canceled.
    ///
    /// The bridge is one-way, as contexts are in Go: canceling the token
    /// does not cancel the context, so a library cannot end its caller's
    /// work through it. To let a token end work, derive that work with
    /// [`child_with_token`](Context::child_with_token). A token is a bare
    /// flag: a library that stops because it fired reports its own error,
    /// and the context says which limit fired; read [`Context::err`] when
    /// mapping the library's error (the guide shows how).
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// let token = ctx.cancellation_token();
    /// assert!(!token.is_cancelled());
    /// cancel.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    pub fn cancellation_token(&self) -> CancellationToken {
        let token = CancellationToken::new();
        let to_cancel = token.clone();
        // Dropping the registration keeps it: the token must follow the
        // context for as long as the context lives.
        drop(self.on_done(move || to_cancel.cancel()));
        token
    }

    /// Derives a child that also ends when `token` is canceled, with the
    /// cause "its cancellation token was canceled": for code that is handed
    /// a token (a server's shutdown token, a library's) and wants a context.
    ///
    /// A token that came from this context or an ancestor (through
    /// [`cancellation_token`](Context::cancellation_token)) keeps the
    /// reason: the child reports the ancestor's own error, a deadline stays
    /// a deadline. A token from anywhere else carries no reason, so the
    /// child can only say that its token was canceled.
    ///
    /// A token that is already canceled gives a child born canceled.
    /// Otherwise a small task watches the token until either ends, so this
    /// needs a Tokio runtime, and the watcher keeps the child alive until
    /// then: end the child when done with it (for instance by turning its
    /// handle into a [`drop_guard`](CancelHandle::drop_guard)).
    ///
    /// # Panics
    ///
    /// Panics outside a Tokio runtime when the token is not yet canceled, as
    /// `tokio::spawn` does.
    ///
    /// ```
    /// use tokio_ctx::Context;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let shutdown = CancellationToken::new();
    /// let (ctx, _cancel) = Context::background().child_with_token(shutdown.clone());
    /// shutdown.cancel();
    /// let err = ctx.done().await;
    /// assert_eq!(err.cause().unwrap().to_string(), "its cancellation token was canceled");
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_token(&self, token: CancellationToken) -> (Context, CancelHandle) {
        self.child_with_token_at(None, token, Location::caller())
    }

    /// [`child_with_token`](Self::child_with_token), with the child named
    /// `name` and derived at `location`.
    pub(crate) fn child_with_token_at(
        &self,
        name: Option<Cow<'static, str>>,
        token: CancellationToken,
        location: &'static Location<'static>,
    ) -> (Context, CancelHandle) {
        let (child, handle) = self.derive(name, Limit::None, location);
        if token.is_cancelled() {
            handle.cancel_for(Cause::Reason(&TOKEN_CANCELED));
            return (child, handle);
        }
        let watched = child.clone();
        let canceler = handle.clone();
        // The watcher ends with whichever ends first, so it never outlives
        // the child's budget.
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => canceler.cancel_for(Cause::Reason(&TOKEN_CANCELED)),
                _ = watched.done() => {}
            }
        });
        (child, handle)
    }
}
