//! Test layers that inject faults.

mod drop;

pub(crate) use drop::DropLayer;
