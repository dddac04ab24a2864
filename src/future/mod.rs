//! The futures returned by [`Context`](crate::Context)'s methods, one file each.

mod as_completed;
mod branches;
mod cleanup;
mod done;
mod join_all;
mod race;
mod run;
mod select_first;
mod timeout;
mod try_join_all;
pub(crate) mod wait;

pub use as_completed::AsCompleted;
pub use done::{Done, DoneOwned};
pub use join_all::{JoinAll, Settle};
pub use race::{Race, RaceEither};
pub use run::Run;
pub use select_first::SelectFirst;
pub use timeout::Timeout;
pub use try_join_all::TryJoinAll;
