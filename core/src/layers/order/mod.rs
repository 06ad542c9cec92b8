//! Ordering and delivery guarantees on top of reliable FIFO casts: total
//! order by a sequencer (Total), causal order by vector timestamps
//! (Causal), and agreed (safe) delivery on stability (Agree).
//!
//! All three hold casts back and deliver what they still hold when a view
//! ends (`Layer::finish_view`), after Sync's flush has given every survivor
//! the same casts, in an order every survivor computes alike.

mod agree;
mod causal;
mod total;

pub(crate) use agree::Agree;
pub(crate) use causal::Causal;
pub(crate) use total::Total;
