//! The futures and streams that [`Context`](crate::Context)'s methods
//! return, one file each.
//!
//! You rarely name them: await them, or call the setup methods some offer
//! ([`Timeout::context`], [`ScopeFuture::limit`], [`ScopeFuture::grace_period`],
//! [`ScopeFuture::collect_all`]) on the value a method returned. Each page
//! documents the future's fairness, ordering, cancel safety and panics.

mod as_completed;
pub(crate) mod branches;
mod cleanup;
mod done;
pub(crate) mod fanout;
pub(crate) mod fixed;
mod guarded;
mod join;
mod join_all;
mod race;
mod run;
mod select_first;
pub(crate) mod step;
mod timeout;
mod try_join_all;
pub(crate) mod wait;

pub use crate::current::Attached;
pub use crate::task::ScopeFuture;
pub use as_completed::AsCompleted;
pub use done::{Done, DoneOwned};
pub use guarded::Guarded;
pub use join::{Join, TryJoin};
pub use join_all::{JoinAll, Settle};
pub use race::{Race, RaceEither};
pub use run::Run;
pub use select_first::SelectFirst;
pub(crate) use step::make_under;
pub use timeout::Timeout;
pub use try_join_all::TryJoinAll;
