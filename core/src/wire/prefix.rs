//! The fixed datagram prefix: a checked view over bytes and a typed repr,
//! in the manner of smoltcp's `wire` module.
//!
//! ```text
//!  0      2   3   4   5   6      8              16       20             28
//!  +------+---+---+---+---+------+--------------+--------+--------------+
//!  |magic |ver|flg|key|rsv|sender|   group id   | ltime  | coordinator  |
//!  | "CS" | 1 |   |epo| 0 | rank |  (FNV-1a 64) |        | endpoint id  |
//!  +------+---+---+---+---+------+--------------+--------+--------------+
//! ```
//! All integers are big-endian. `flags` bit 0 (`SEALED`) is reserved for the
//! AEAD of the Auth/Privacy properties; version 1 endpoints reject it, as
//! they reject any other non-zero flag bit and a non-zero reserved byte.

use crate::id::{EndpointId, GroupId, Rank, ViewId};

/// The two bytes every consort datagram starts with.
pub const MAGIC: [u8; 2] = *b"CS";
/// The wire format version this crate speaks.
pub const VERSION: u8 = 1;
/// Length of the prefix in bytes.
pub const PREFIX_LEN: usize = 28;

mod field {
    use core::ops::Range;
    pub(super) const MAGIC: Range<usize> = 0..2;
    pub(super) const VERSION: usize = 2;
    pub(super) const FLAGS: usize = 3;
    pub(super) const KEY_EPOCH: usize = 4;
    pub(super) const RESERVED: usize = 5;
    pub(super) const SENDER: Range<usize> = 6..8;
    pub(super) const GROUP: Range<usize> = 8..16;
    pub(super) const LTIME: Range<usize> = 16..20;
    pub(super) const COORD: Range<usize> = 20..28;
}

/// The prefix's flag bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Flags(pub u8);

impl Flags {
    /// The datagram after the prefix is sealed with an AEAD (not in version 1).
    pub const SEALED: u8 = 0b0000_0001;
    /// Bits version 1 understands.
    pub const KNOWN: u8 = 0;
}

/// Why bytes are not a valid prefix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PrefixError {
    /// Fewer than [`PREFIX_LEN`] bytes.
    Truncated,
    /// The first two bytes are not [`MAGIC`]: not a consort datagram.
    BadMagic,
    /// A version this endpoint does not speak.
    UnsupportedVersion(u8),
    /// A flag bit or the reserved byte is set that this version does not know.
    UnsupportedFlags(u8),
}

impl core::fmt::Display for PrefixError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PrefixError::Truncated => {
                write!(f, "datagram shorter than the {PREFIX_LEN}-byte prefix")
            }
            PrefixError::BadMagic => write!(f, "not a consort datagram (bad magic)"),
            PrefixError::UnsupportedVersion(v) => write!(f, "unsupported wire version {v}"),
            PrefixError::UnsupportedFlags(b) => write!(f, "unsupported prefix flags {b:#04x}"),
        }
    }
}

impl core::error::Error for PrefixError {}

/// A read-only view of a prefix at the start of a datagram.
///
/// ```
/// use consort_core::wire::{PrefixPacket, PrefixError};
/// assert_eq!(PrefixPacket::new_checked(&[0u8; 3][..]).err(), Some(PrefixError::Truncated));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PrefixPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> PrefixPacket<T> {
    /// Wraps `buffer` after checking its length, magic, version and flags;
    /// every accessor may then read its field without further checks.
    pub fn new_checked(buffer: T) -> Result<Self, PrefixError> {
        let b = buffer.as_ref();
        if b.len() < PREFIX_LEN {
            return Err(PrefixError::Truncated);
        }
        if b[field::MAGIC] != MAGIC {
            return Err(PrefixError::BadMagic);
        }
        if b[field::VERSION] != VERSION {
            return Err(PrefixError::UnsupportedVersion(b[field::VERSION]));
        }
        let flags = b[field::FLAGS];
        if flags & !Flags::KNOWN != 0 || b[field::RESERVED] != 0 {
            return Err(PrefixError::UnsupportedFlags(flags | b[field::RESERVED]));
        }
        Ok(PrefixPacket { buffer })
    }

    fn bytes<const N: usize>(&self, range: core::ops::Range<usize>) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buffer.as_ref()[range]);
        out
    }

    /// Flag bits.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Key epoch (0 while the group is not sealed).
    pub fn key_epoch(&self) -> u8 {
        self.buffer.as_ref()[field::KEY_EPOCH]
    }

    /// The sender's rank in the view named by [`Self::view_id`].
    pub fn sender(&self) -> Rank {
        Rank(u16::from_be_bytes(self.bytes(field::SENDER)))
    }

    /// The group's id.
    pub fn group(&self) -> GroupId {
        GroupId(u64::from_be_bytes(self.bytes(field::GROUP)))
    }

    /// The sender's view.
    pub fn view_id(&self) -> ViewId {
        ViewId {
            ltime: u32::from_be_bytes(self.bytes(field::LTIME)),
            coordinator: EndpointId(u64::from_be_bytes(self.bytes(field::COORD))),
        }
    }

    /// The bytes after the prefix: the layers' headers and the payload.
    pub fn rest(&self) -> &[u8] {
        &self.buffer.as_ref()[PREFIX_LEN..]
    }
}

/// A prefix as plain typed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Prefix {
    /// Flag bits.
    pub flags: Flags,
    /// Key epoch.
    pub key_epoch: u8,
    /// Sender's rank in `view`.
    pub sender: Rank,
    /// Group.
    pub group: GroupId,
    /// Sender's view.
    pub view: ViewId,
}

impl Prefix {
    /// Reads the fields of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &PrefixPacket<T>) -> Prefix {
        Prefix {
            flags: packet.flags(),
            key_epoch: packet.key_epoch(),
            sender: packet.sender(),
            group: packet.group(),
            view: packet.view_id(),
        }
    }

    /// Writes the prefix into the first [`PREFIX_LEN`] bytes of `out`.
    ///
    /// Returns `None` if `out` is too short.
    pub fn emit(&self, out: &mut [u8]) -> Option<()> {
        let out = out.get_mut(..PREFIX_LEN)?;
        out[field::MAGIC].copy_from_slice(&MAGIC);
        out[field::VERSION] = VERSION;
        out[field::FLAGS] = self.flags.0;
        out[field::KEY_EPOCH] = self.key_epoch;
        out[field::RESERVED] = 0;
        out[field::SENDER].copy_from_slice(&self.sender.0.to_be_bytes());
        out[field::GROUP].copy_from_slice(&self.group.0.to_be_bytes());
        out[field::LTIME].copy_from_slice(&self.view.ltime.to_be_bytes());
        out[field::COORD].copy_from_slice(&self.view.coordinator.0.to_be_bytes());
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BYTES: [u8; PREFIX_LEN] = [
        b'C', b'S', 1, 0, 0, 0, // magic, version, flags, key epoch, reserved
        0x00, 0x02, // sender rank 2
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // group
        0x00, 0x00, 0x00, 0x07, // ltime 7
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // coordinator 42
    ];

    fn repr() -> Prefix {
        Prefix {
            flags: Flags(0),
            key_epoch: 0,
            sender: Rank(2),
            group: GroupId(0x0102_0304_0506_0708),
            view: ViewId {
                ltime: 7,
                coordinator: EndpointId(42),
            },
        }
    }

    #[test]
    fn parse_pinned_bytes() {
        let p = PrefixPacket::new_checked(&BYTES[..]).unwrap();
        assert_eq!(Prefix::parse(&p), repr());
        assert!(p.rest().is_empty());
    }

    #[test]
    fn emit_pinned_bytes() {
        let mut out = [0xffu8; PREFIX_LEN];
        repr().emit(&mut out).unwrap();
        assert_eq!(out, BYTES);
        assert_eq!(repr().emit(&mut [0u8; PREFIX_LEN - 1]), None);
    }

    #[test]
    fn rejects_each_kind_of_bad_prefix() {
        let check = |b: &[u8]| PrefixPacket::new_checked(b).err();
        assert_eq!(
            check(&BYTES[..PREFIX_LEN - 1]),
            Some(PrefixError::Truncated)
        );
        let mut b = BYTES;
        b[0] = b'X';
        assert_eq!(check(&b), Some(PrefixError::BadMagic));
        let mut b = BYTES;
        b[2] = 2;
        assert_eq!(check(&b), Some(PrefixError::UnsupportedVersion(2)));
        let mut b = BYTES;
        b[3] = Flags::SEALED;
        assert_eq!(check(&b), Some(PrefixError::UnsupportedFlags(1)));
        let mut b = BYTES;
        b[5] = 0x80;
        assert_eq!(check(&b), Some(PrefixError::UnsupportedFlags(0x80)));
    }
}
