//! One switch between the standard library's synchronization types and
//! loom's, so that the concurrency core can be model-checked unchanged.
//!
//! Only the types whose interleavings matter are switched: the node's state
//! word and its lock, the lazily allocated box that holds the lock, the
//! callbacks' locks, and the process-wide epoch word (a loom `lazy_static`
//! there, so that each execution of a model starts with its own).
//! Reference counting stays on `std::sync::Arc`, which loom does not model
//! and which the core treats as plain ownership.

#[cfg(not(tokio_ctx_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex, MutexGuard,
};

#[cfg(tokio_ctx_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex, MutexGuard,
};

/// Locks `mutex`, ignoring poisoning.
///
/// No code in this crate runs user code while holding a lock, so a poisoned
/// lock can only come from a panic inside the crate's own short critical
/// sections, which leave the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Locks a standard mutex, ignoring poisoning, for state that loom does not
/// model (task bookkeeping outside the core).
pub(crate) fn lock_std<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A value allocated the first time it is needed and never moved or freed
/// before its owner: the wait state of a node.
///
/// Under loom it is allocated up front instead: loom models the locks and
/// atomics inside the value, and an eager box has the same interleavings
/// without a `OnceLock` that loom cannot see into.
#[derive(Debug)]
pub(crate) struct Lazy<T>(
    #[cfg(not(tokio_ctx_loom))] std::sync::OnceLock<Box<T>>,
    #[cfg(tokio_ctx_loom)] Box<T>,
);

impl<T: Default> Lazy<T> {
    /// Empty, until [`get_or_default`](Self::get_or_default).
    pub(crate) fn new() -> Self {
        #[cfg(not(tokio_ctx_loom))]
        return Lazy(std::sync::OnceLock::new());
        #[cfg(tokio_ctx_loom)]
        return Lazy(Box::default());
    }

    /// Holding `value` from the start.
    pub(crate) fn with(value: T) -> Self {
        #[cfg(not(tokio_ctx_loom))]
        return Lazy(std::sync::OnceLock::from(Box::new(value)));
        #[cfg(tokio_ctx_loom)]
        return Lazy(Box::new(value));
    }

    /// The value, if it was allocated.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        #[cfg(not(tokio_ctx_loom))]
        return self.0.get().map(|value| &**value);
        #[cfg(tokio_ctx_loom)]
        return Some(&self.0);
    }

    /// The value, allocated with its default now if it was not yet.
    pub(crate) fn get_or_default(&self) -> &T {
        #[cfg(not(tokio_ctx_loom))]
        return self.0.get_or_init(Box::default);
        #[cfg(tokio_ctx_loom)]
        return &self.0;
    }
}

/// Lets another thread make progress while this one waits for a short
/// critical section elsewhere to finish: spins for the first few `round`s,
/// then yields to the scheduler. Under loom, always a modeled yield, so that
/// a model does not spin forever.
pub(crate) fn back_off(round: u32) {
    #[cfg(not(tokio_ctx_loom))]
    if round < 16 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
    #[cfg(tokio_ctx_loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
}
