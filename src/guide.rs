//! The scenarios tokio-ctx is built for and the Go idioms, step by step.
//!
// The source is `docs/guide.md`: included here so that docs.rs readers find
// it, and so that every snippet in it is compiled and run as a doctest.
#![doc = include_str!("../docs/guide.md")]
