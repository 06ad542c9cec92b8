//! Virtual synchrony: membership, the flush, failure detection.

mod gmp;
pub(crate) mod primary;
mod slander;
mod suspect;
mod sync;

pub(crate) use gmp::{Gmp, flush_ok_extra};
pub(crate) use primary::Primary;
pub(crate) use slander::Slander;
pub(crate) use suspect::Suspect;
pub(crate) use sync::{HELD_MAX, Sync};
