//! [`Context::on_done`]: run a function when a context ends (Go's `AfterFunc`).

use std::fmt;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::context::Context;
use crate::core::{Callback, Entry, Node};

/// **Callbacks**: run code when the context ends (Go's `AfterFunc`).
impl Context {
    /// Runs `f` once when this context ends (Go's `AfterFunc`); at once, on
    /// this thread, if it already has.
    ///
    /// On cancellation `f` runs on the thread that cancels, after the
    /// context's locks are released: keep it short, or have it spawn. When a
    /// context with a deadline is registered inside a Tokio runtime, a small
    /// task waits for the context instead, and `f` runs on that task,
    /// whichever way the context ends. Outside a runtime a deadline cannot be
    /// watched, and `f` runs on cancellation only.
    ///
    /// `f` runs exactly once however many threads cancel concurrently,
    /// unless [`OnDone::stop`] comes first. Dropping the [`OnDone`] does not
    /// stop it. A context that never ends ([`background`](Context::background),
    /// [`without_cancel`](Context::without_cancel)) never calls `f`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use tokio_ctx::Context;
    ///
    /// let closed = Arc::new(AtomicUsize::new(0));
    /// let (ctx, cancel) = Context::background().child();
    /// let counter = Arc::clone(&closed);
    /// let _registration = ctx.on_done(move || {
    ///     counter.fetch_add(1, Ordering::SeqCst);
    /// });
    /// cancel.cancel();
    /// cancel.cancel();
    /// assert_eq!(closed.load(Ordering::SeqCst), 1);
    /// ```
    pub fn on_done<F>(&self, f: F) -> OnDone
    where
        F: FnOnce() + Send + 'static,
    {
        let callback = Arc::new(Callback::new(f));
        let mut on_done = OnDone {
            callback: Arc::clone(&callback),
            registration: None,
            watcher: None,
        };
        let Some(node) = self.node() else {
            return on_done;
        };
        if self.is_done() {
            callback.fire();
            return on_done;
        }
        if node.deadline().is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let done = self.done_owned();
                on_done.watcher = Some(runtime.spawn(async move {
                    done.await;
                    callback.fire();
                }));
                return on_done;
            }
        }
        match node.register(Entry::Callback(Arc::clone(&callback))) {
            Ok(key) => on_done.registration = Some((Arc::clone(node), key)),
            Err(_) => {
                callback.fire();
                return on_done;
            }
        }
        // A cancellation that raced with the registration shows here; `fire`
        // makes sure that only one of us runs `f`.
        if self.is_done() {
            callback.fire();
        }
        on_done
    }
}

/// The registration made by [`Context::on_done`].
///
/// ```
/// use tokio_ctx::Context;
///
/// let (ctx, cancel) = Context::background().child();
/// let registration = ctx.on_done(|| unreachable!("stopped before the end"));
/// assert!(registration.stop(), "stop prevented the call");
/// cancel.cancel();
/// assert!(!registration.stop(), "nothing left to stop");
/// ```
#[must_use = "dropping an OnDone does not stop it; keep it to be able to call `stop`"]
pub struct OnDone {
    callback: Arc<Callback>,
    registration: Option<(Arc<Node>, usize)>,
    watcher: Option<JoinHandle<()>>,
}

impl OnDone {
    /// Prevents the call; true if this prevented it, false if `f` has
    /// already run (or started running) or was stopped before.
    ///
    /// ```
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, cancel) = Context::background().child();
    /// cancel.cancel();
    /// let registration = ctx.on_done(|| println!("runs at once: the context had ended"));
    /// assert!(!registration.stop());
    /// ```
    pub fn stop(&self) -> bool {
        let prevented = self.callback.stop();
        if let Some(watcher) = &self.watcher {
            watcher.abort();
        }
        prevented
    }
}

impl Drop for OnDone {
    fn drop(&mut self) {
        // Dropping does not stop the call; but once the call is spent its
        // entry is dead weight on a context that may live for long.
        if self.callback.is_spent() {
            if let Some((node, key)) = self.registration.take() {
                node.deregister(key);
            }
        }
    }
}

impl fmt::Debug for OnDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnDone")
            .field("spent", &self.callback.is_spent())
            .finish()
    }
}
