//! The wire format, version 1 (documented in `docs/wire.md`).
//!
//! A datagram is a fixed [`Prefix`] followed by the headers of the layers,
//! Bottom's first and Top's last, each encoded with `postcard`, and then the
//! application payload. This module holds the prefix; each layer owns its
//! header type in its own file.
//!
//! Decoding never trusts a length and never panics: [`PrefixPacket::new_checked`]
//! validates before any field is read, and headers are decoded with
//! `postcard::take_from_bytes`, which returns an error on short or invalid
//! input.

mod prefix;

pub use prefix::{Flags, MAGIC, PREFIX_LEN, Prefix, PrefixError, PrefixPacket, VERSION};
