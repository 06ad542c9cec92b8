//! The application's end of the stack.

mod local;
mod top;

pub(crate) use local::Local;
pub(crate) use top::Top;
