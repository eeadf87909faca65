//! The kernel team's protocol under ThreadSanitizer: `src/engine/team.rs` and
//! `src/engine/batches.rs` (the helpers, the jobs they claim, work posted ahead and the buffers
//! it fills) with their own unit tests, compiled alone, so that the nightly toolchain can
//! instrument them and the standard library without building Burn.
//!
//! `RUSTFLAGS=-Zsanitizer=thread cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu`
//! (`.ci/run` runs it).
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

// At the root, where `super::team` in batches.rs finds the team as it does in `src/engine/`.
#[path = "../src/engine/batches.rs"]
pub mod batches;
#[path = "../src/engine/team.rs"]
pub mod team;
