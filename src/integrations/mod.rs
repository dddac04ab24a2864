//! Where the budget meets other crates: the header forms that carry it
//! between services, and the middleware of each framework, each behind a
//! feature of its name.
//!
//! - `grpc_timeout`: [`GrpcTimeout`](crate::GrpcTimeout), always there (it
//!   needs no other crate).
//! - `headers` (feature `http`): the budget headers a server reads and a
//!   client writes.
//! - `tower` (feature `tower`): framework-neutral middleware, the base of
//!   the next two.
//! - `tonic` (feature `tonic`) and `axum` (feature `axum`): the same, with
//!   every ending a status or a response of the protocol.
//! - `reqwest` (feature `reqwest`): a request sent with the caller's
//!   budget.
//!
//! `server`, `client` and `body` hold what the server layers, the client
//! layers and both share.

pub(crate) mod grpc_timeout;

#[cfg(feature = "http")]
pub mod headers;

#[cfg(feature = "tower")]
pub(crate) mod body;
#[cfg(any(feature = "tower", feature = "reqwest"))]
pub(crate) mod client;
#[cfg(feature = "tower")]
pub(crate) mod server;
#[cfg(feature = "tower")]
pub mod tower;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "tonic")]
pub mod tonic;
