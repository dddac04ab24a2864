//! [`CancelHandle`] and [`CancelGuard`]: the power to end a derived context.

use std::fmt;
use std::sync::Arc;

use crate::core::{Cause, Node};

/// Cancels the context it was derived with, and through it every context
/// derived from that one.
///
/// Returned next to the context by [`Context::child`](crate::Context::child)
/// and its siblings, like the `CancelFunc` of Go's `context.WithCancel`.
/// Cancelling is idempotent and the first cancellation wins: later calls, and
/// calls after the context's deadline has passed, change nothing, and every
/// descendant reports the first cause.
///
/// Dropping a handle does **not** cancel (use [`drop_guard`](Self::drop_guard)
/// for that, Go's `defer cancel()`), and leaks nothing: a context that is
/// never canceled is simply freed when its last clone (and its last handle)
/// is dropped, and its pending [`on_done`](crate::Context::on_done)
/// callbacks run then. The type is `#[must_use]`, so a derivation whose
/// handle is thrown away unbound warns, as Go's `vet` does for a lost
/// cancel; bind it to `_` when the context is meant to end only with its
/// parent or its deadline. The crate root has a table of which handles
/// cancel when dropped.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let parent = tokio_ctx::Context::background();
/// parent.child(); // error: unused `CancelHandle` in tuple element 1
/// ```
///
/// # Examples
///
/// ```
/// use tokio_ctx::Context;
///
/// let (ctx, cancel) = Context::background().child();
/// let (grandchild, _) = ctx.child();
///
/// cancel.cancel_with("client went away");
/// cancel.cancel_with("ignored: the first cause wins");
///
/// let err = grandchild.err().unwrap();
/// assert!(err.is_canceled());
/// assert_eq!(err.cause().unwrap().to_string(), "client went away");
/// ```
#[must_use = "dropping a CancelHandle does not cancel: call `cancel()` when done \
              (Go's `defer cancel()` is `let _guard = handle.drop_guard();`), \
              or bind it to `_` to say the context only ends with its parent"]
pub struct CancelHandle {
    node: Arc<Node>,
}

impl Clone for CancelHandle {
    fn clone(&self) -> Self {
        self.node.handle_cloned();
        CancelHandle {
            node: Arc::clone(&self.node),
        }
    }
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        // Lets waiters on the context wait on the nearest ancestor that can
        // still be canceled instead (invariant 9 of the core). When this is
        // the last reference, no context is left to wait on: the node is
        // about to go, and the atomic write can be skipped.
        if Arc::strong_count(&self.node) > 1 {
            self.node.handle_dropped();
        }
    }
}

impl CancelHandle {
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// Cancels the context without a cause.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// assert!(ctx.err().unwrap().cause().is_none());
    /// ```
    pub fn cancel(&self) {
        self.node.cancel(None);
    }

    /// Cancels the context with `cause`, which every descendant reports
    /// through [`Error::cause`](crate::Error::cause). Anything that converts
    /// into a boxed error works: an error value, a `String` or a `&str`.
    ///
    /// ```
    /// use std::io;
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel_with(io::Error::new(io::ErrorKind::ConnectionReset, "peer reset"));
    /// let err = ctx.err().unwrap();
    /// let cause = err.cause().unwrap().downcast_ref::<io::Error>().unwrap();
    /// assert_eq!(cause.kind(), io::ErrorKind::ConnectionReset);
    /// ```
    pub fn cancel_with<E>(&self, cause: E)
    where
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        self.node.cancel(Some(Cause::User(Arc::from(cause.into()))));
    }

    /// The node it cancels.
    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Cancels with one of this crate's own reasons.
    pub(crate) fn cancel_for(&self, cause: Cause) {
        self.node.cancel(Some(cause));
    }

    /// Cancels on behalf of a combinator that is done with its child, unless
    /// nobody could tell: no reference to the child exists beyond the
    /// combinator's own `own_refs` (this handle included), and nothing waits
    /// on it. Skipping saves a clock read, a lock and an epoch bump on every
    /// step that finishes without having shared its context.
    // The steps and branches finish their private children themselves
    // (`future/step.rs`); only the client layers' bodies finish through a
    // handle.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn finish(&self, cause: Cause, own_refs: usize) {
        self.node.finish(cause, own_refs);
    }

    /// Turns the handle into a guard that cancels the context when dropped.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// {
    ///     let _guard = cancel.drop_guard();
    ///     assert!(!ctx.is_done());
    /// }
    /// assert!(ctx.is_done());
    /// ```
    pub fn drop_guard(self) -> CancelGuard {
        CancelGuard { handle: Some(self) }
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("context", &self.node.name())
            .field("done", &self.node.is_done())
            .finish()
    }
}

/// Cancels its context when dropped, unless [disarmed](Self::disarm).
///
/// Made by [`CancelHandle::drop_guard`]. Tie a context's life to a scope:
/// whatever way the scope is left (return, `?`, panic, the enclosing future
/// being dropped) the context and everything derived from it ends.
///
/// ```
/// use tokio_ctx::Context;
///
/// let (ctx, cancel) = Context::background().child();
/// let guard = cancel.drop_guard();
/// let cancel = guard.disarm();
/// assert!(!ctx.is_done(), "a disarmed guard cancels nothing");
/// drop(cancel);
/// assert!(!ctx.is_done());
/// ```
#[must_use = "the context is canceled as soon as the guard is dropped"]
pub struct CancelGuard {
    handle: Option<CancelHandle>,
}

impl CancelGuard {
    /// Gives the handle back without canceling.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// let guard = cancel.drop_guard();
    /// // The work went well: keep the context alive past this scope.
    /// let cancel = guard.disarm();
    /// assert!(!ctx.is_done());
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// ```
    pub fn disarm(mut self) -> CancelHandle {
        match self.handle.take() {
            Some(handle) => handle,
            // Only `disarm` and `drop` take the handle, and both consume the guard.
            None => unreachable!("a CancelGuard holds its handle until disarmed or dropped"),
        }
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.cancel();
        }
    }
}

impl fmt::Debug for CancelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelGuard")
            .field("handle", &self.handle)
            .finish()
    }
}
