//! The futures returned by [`Context`](crate::Context)'s methods, one file each.

mod done;
mod run;
mod timeout;
pub(crate) mod wait;

pub use done::{Done, DoneOwned};
pub use run::Run;
pub use timeout::Timeout;
