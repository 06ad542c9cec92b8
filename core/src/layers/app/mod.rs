//! The application's end of the stack.

mod local;
mod subcast;
mod top;

pub(crate) use local::Local;
pub(crate) use subcast::Subcast;
pub(crate) use top::Top;
