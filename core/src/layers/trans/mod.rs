//! Transport layers: framing, reliability, stability and fragmentation.

mod bottom;
mod frag;
mod mnak;
mod pt2pt;
mod stable;

pub(crate) use bottom::Bottom;
pub(crate) use frag::Frag;
pub(crate) use mnak::Mnak;
pub(crate) use pt2pt::Pt2pt;
pub(crate) use stable::Stable;
