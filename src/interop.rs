//! Interoperation with tokio-util's [`CancellationToken`], so that libraries
//! that speak tokens work with contexts unchanged.

use std::borrow::Cow;
use std::panic::Location;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::cancel::CancelHandle;
use crate::context::{Context, Limit};
use crate::core::Cause;
use crate::error::Reason;

static TOKEN_CANCELED: Reason = Reason::TokenCanceled;

/// **Tokens**: the bridge to tokio-util's `CancellationToken`.
impl Context {
    /// A [`CancellationToken`] that is canceled when this context ends, by
    /// cancellation or by its deadline: hand it to code that takes a token.
    ///
    /// Each call registers one [`on_done`](Context::on_done) callback on the
    /// context: call it once per context and clone the token. Nothing else
    /// is started: a deadline is watched by the runtime's alarm driver (or,
    /// outside a runtime, a process-wide thread), which forgets the token as
    /// soon as it is canceled. A context that never ends gives a token that
    /// is never canceled.
    ///
    /// If the context is dropped before it ended (every clone and handle
    /// gone), the token is canceled then: nothing can end the context any
    /// more, and the code holding the token must not wait forever.
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
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// let token = ctx.cancellation_token();
    /// drop(ctx);
    /// assert!(!token.is_cancelled(), "its handle could still cancel it");
    /// drop(cancel);
    /// assert!(token.is_cancelled(), "released once nothing can");
    /// ```
    pub fn cancellation_token(&self) -> CancellationToken {
        let token = CancellationToken::new();
        let to_cancel = token.clone();
        // Dropping the registration keeps it: the token follows the context
        // for as long as the context lives, and is released when it goes.
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
    /// Otherwise a small task waits for the token, so this needs a Tokio
    /// runtime. The task holds neither the child nor its values: it ends as
    /// soon as the child ends or is dropped, or the token is canceled. (Once
    /// that runtime is gone, nothing waits for the token any more.)
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
        let Some(node) = child.node() else {
            return (child, handle);
        };
        // The task can cancel the child: never treat it as handle-less
        // (invariant 9 of the core).
        node.handle_cloned();
        let watched = Arc::downgrade(node);
        // Canceled when the child ends, or is dropped before it ended.
        let ended = child.cancellation_token();
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => {
                    if let Some(node) = watched.upgrade() {
                        node.cancel(Some(Cause::Reason(&TOKEN_CANCELED)));
                    }
                }
                () = ended.cancelled() => {}
            }
        });
        (child, handle)
    }
}
