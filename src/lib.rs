//! The Dive into Deep Learning "concise MLP" on Fashion-MNIST, trained with Burn.
//!
//! One concept per module; `main.rs` is a thin CLI over these.

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod commands;
pub mod config;
pub mod data;
pub mod download;
pub mod error;
pub mod fsutil;
pub mod inference;
pub mod interchange;
pub mod loader;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod training;

pub use error::{Error, Result};
