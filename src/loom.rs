//! One switch between the standard library's synchronization types and
//! loom's, so that the concurrency core can be model-checked unchanged.
//!
//! Only the types whose interleavings matter are switched: the node's state
//! word and its lock. Reference counting stays on `std::sync::Arc`, which
//! loom does not model and which the core treats as plain ownership.

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
