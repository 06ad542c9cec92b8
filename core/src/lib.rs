//! # consort-core
//!
//! The protocol core of consort, a group communication toolkit in the line
//! of Cornell's Ensemble: processes join a group, agree on who is in it, and
//! multicast with the guarantees the group asks for, by stacking small
//! protocol layers.
//!
//! This crate is `#![no_std]` and never allocates. It is **sans-IO**: an
//! [`Endpoint`] is a deterministic state machine fed with datagrams, timeouts
//! and the application's downcalls, and polled for datagrams to send,
//! events to deliver and its next deadline. Runtimes (tokio, async-std,
//! smoltcp on a board) do the I/O; the simulator drives thousands of
//! endpoints in virtual time. The [`driver`] module runs an endpoint on any
//! runtime that provides a [`driver::Clock`] and a [`driver::Transport`].
//!
//! Map of the crate:
//! - [`Endpoint`] (`endpoint.rs`): inputs, outputs, admission and the scheduler loop.
//! - [`stack`]: stack specifications (properties, explicit stacks), events and
//!   the context layers see; `layers/`: one file per layer.
//! - `buffer/`: the slot pool every message lives in.
//! - [`wire`]: the datagram prefix (format in `docs/wire.md`).
//! - [`profile`]: compile-time capacities; [`Config`] and [`config::Params`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

#[macro_use]
mod fmt;

mod buffer;
pub mod config;
pub mod driver;
mod endpoint;
pub mod epidemic;
mod error;
mod event;
mod id;
mod layers;
pub mod profile;
mod rng;
pub mod stack;
mod stats;
mod time;
mod view;
pub mod wire;

pub use buffer::SLOT_OVERHEAD;
pub use config::{Config, Params, Protocol};
pub use endpoint::{Endpoint, MAX_FRAGMENTS, RequestError, SEAL_RESERVE, SendView, Status};
pub use error::{ConfigError, Name, SendError};
pub use event::{BufferTooSmall, Event, Payload, Transmit};
pub use id::{EndpointId, GroupId, MAX_GROUP_SIZE, Rank, RankSet, ViewId};
pub use profile::{ServerEndpoint, SmallEndpoint};
pub use stats::Stats;
pub use time::Instant;
pub use view::{Member, VERSION, View};
