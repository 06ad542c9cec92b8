//! Message storage: a pool of fixed-size slots in caller-provided memory.
//!
//! Every message inside an endpoint lives in the [`Pool`]: a received
//! datagram, a cast on its way down the stack, a fragment waiting for its
//! siblings, a copy kept for retransmission. A [`Msg`] is an owned handle on
//! a chain of slots; events carry `Msg`s, so moving a message from layer to
//! layer never copies its bytes.
//!
//! The pool is where the endpoint's memory bound is enforced: when it is
//! empty, a cast is refused with `WouldBlock` and a datagram is dropped and
//! counted, never a panic and never growth.

mod pool;

pub use pool::SLOT_OVERHEAD;
pub(crate) use pool::{
    MAX_HEADER, Msg, MsgQueue, Pool, PoolError, PoolState, QueueSlices, Segments, SlotQueue,
};
