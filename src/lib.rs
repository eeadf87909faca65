//! The Dive into Deep Learning "concise MLP" on Fashion-MNIST, trained with Burn.
//!
//! Data flows one way: `main.rs` parses, `commands` turns arguments into calls, and the
//! library below (run folders, training, data, plots, inference) never prints or exits.

// Every unsafe operation sits in its own block with the reason it is sound.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod backend;
pub mod bench;
pub mod commands;
pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod inference;
pub mod interchange;
pub mod model;
pub mod plot;
pub mod report;
pub mod run;
pub mod sweep;
pub mod train;

pub use error::{Error, Result};
