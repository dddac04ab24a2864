//! Real Tokio tasks under a context: one at a time ([`Context::spawn`],
//! [`Context::spawn_blocking`]) or as a group that never outlives its scope
//! ([`Context::scope`]).
//!
//! [`Context::spawn`]: crate::Context::spawn
//! [`Context::spawn_blocking`]: crate::Context::spawn_blocking
//! [`Context::scope`]: crate::Context::scope

mod graceful;
mod guard;
mod scope;
mod spawn;

pub use scope::{Scope, ScopeFuture, ScopedHandle};
pub use spawn::TaskHandle;
