//! Layers that carry information between views: discovery and healing,
//! protocol switching.

mod heal;
mod switch;

pub(crate) use heal::Heal;
pub(crate) use switch::Switch;
