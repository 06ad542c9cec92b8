//! Flow control.

#[allow(clippy::module_inception)]
mod flow;

pub(crate) use flow::Flow;
