//! [`Context::on_done`]: run a function when a context ends (Go's `AfterFunc`).

use std::fmt;
use std::sync::Arc;

use crate::context::Context;
use crate::core::{Callback, Entry, Node};

/// **Callbacks**: run code when the context ends (Go's `AfterFunc`).
impl Context {
    /// Runs `f` once when this context ends (Go's `AfterFunc`); at once, on
    /// this thread, if it already has.
    ///
    /// On cancellation `f` runs on the thread that cancels, after the
    /// context's locks are released: keep it short, or have it spawn. At the
    /// deadline it runs on a driver task of the runtime it was registered in
    /// (one per thread and runtime, not one per registration), on that
    /// runtime's clock, so `tokio::time::pause` and `advance` work; outside
    /// a runtime, or once that runtime is gone, on a process-wide thread on
    /// the real clock.
    ///
    /// If the context is dropped before it ended (every clone, every
    /// [`CancelHandle`](crate::CancelHandle) and every [`OnDone`] gone),
    /// `f` runs then, on the thread that drops it: nothing can end it or
    /// wait for it any more, and whatever `f` releases must not be kept
    /// forever. An `OnDone` keeps its context alive.
    ///
    /// `f` runs exactly once however many threads cancel concurrently,
    /// unless [`OnDone::stop`] comes first. Dropping the [`OnDone`] does not
    /// stop it. A context that never ends ([`background`](Context::background),
    /// [`without_cancel`](Context::without_cancel)) never calls `f`.
    ///
    /// # Panics
    ///
    /// A panic of `f` when the context has already ended goes to the caller.
    /// Otherwise it goes to whoever ended the context, after every other
    /// callback ran (a thread that is already unwinding reports it to
    /// `tracing` instead); at a deadline it is reported and dropped.
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
        };
        let Some(node) = self.node() else {
            return on_done;
        };
        if self.is_done() {
            callback.fire();
            return on_done;
        }
        // On the node itself, not where its waiters wait: its drop must
        // find the callback (invariant 11 of the core). A cancellation that
        // races with the registration either finds the entry or refuses it.
        match node.register(Entry::Callback(Arc::clone(&callback))) {
            Ok(key) => on_done.registration = Some((Arc::clone(node), key)),
            Err(_) => {
                callback.fire();
                return on_done;
            }
        }
        // Below a movable deadline, the alarm follows every move (invariant
        // 14 of the core); elsewhere it is set once.
        node.arm_alarm(&callback);
        on_done
    }
}

/// The registration made by [`Context::on_done`]. It keeps its context
/// alive.
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
}

impl OnDone {
    /// Prevents the call; true if this prevented it, false if `f` has
    /// already run (or started running, or panicked) or was stopped before.
    ///
    /// The registration and its deadline's alarm are freed at once.
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
        self.forget();
        prevented
    }

    /// Removes the spent callback's entry: dead weight on a context that
    /// may live for long.
    fn forget(&self) {
        if let Some((node, key)) = &self.registration {
            node.deregister_callback(*key, &self.callback);
        }
    }
}

impl Drop for OnDone {
    fn drop(&mut self) {
        // Dropping does not stop the call: an entry that may still fire
        // stays, and if this was the context's last reference, its drop
        // runs the callback now (invariant 11 of the core).
        if self.callback.is_spent() {
            self.forget();
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
