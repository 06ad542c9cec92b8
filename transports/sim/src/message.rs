//! The workload's messages: a self-describing header and checkable filler.
//!
//! Every payload the workload casts or sends names itself — origin, kind,
//! destination, per-stream sequence number, length — and the rest of it is
//! filler computed from that name. A receiver can therefore tell exactly
//! which message it got and whether every byte arrived intact, without the
//! checker keeping any payload: a corrupted, truncated, spliced or
//! misattributed message cannot pass as a real one.
//!
//! Layout (little-endian): magic `0xC5`, kind (0 cast, 1 send), origin
//! `u16`, destination `u16` (`0xFFFF` for casts), sequence `u32`, total
//! length `u32`, then filler.

use std::fmt;

use crate::rng::Rng;

/// Bytes of the header; the smallest message the workload makes.
pub const HEADER_LEN: usize = 14;
const MAGIC: u8 = 0xC5;
const NO_DEST: u16 = u16::MAX;

/// Cast (to the view) or send (to one member).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A multicast to the view.
    Cast,
    /// A point-to-point message.
    Send,
}

/// Which message this is: its stream and its place in the stream.
///
/// Casts are numbered per origin, sends per (origin, destination), in the
/// order the endpoint accepted them, so the numbers are exactly what FIFO
/// promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId {
    /// The sending node.
    pub origin: usize,
    /// Cast or send.
    pub kind: Kind,
    /// The destination node of a send; `None` for a cast.
    pub dest: Option<usize>,
    /// Number in its stream, from 0.
    pub seq: u32,
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dest {
            None => write!(f, "cast n{}#{}", self.origin, self.seq),
            Some(d) => write!(f, "send n{}->n{}#{}", self.origin, d, self.seq),
        }
    }
}

/// Writes the message `id` of `len` bytes (at least [`HEADER_LEN`]) into `out`.
///
/// ```
/// use consort_sim::message::{decode, encode, Kind, MsgId};
/// let id = MsgId { origin: 2, kind: Kind::Send, dest: Some(0), seq: 9 };
/// let mut buf = Vec::new();
/// encode(&id, 100, &mut buf);
/// assert_eq!(decode(&buf), Some((id, true)));
/// buf[50] ^= 1;
/// assert_eq!(decode(&buf), Some((id, false)));
/// ```
pub fn encode(id: &MsgId, len: usize, out: &mut Vec<u8>) {
    let len = len.max(HEADER_LEN);
    out.clear();
    out.push(MAGIC);
    out.push(match id.kind {
        Kind::Cast => 0,
        Kind::Send => 1,
    });
    out.extend_from_slice(&(id.origin as u16).to_le_bytes());
    let dest = id.dest.map_or(NO_DEST, |d| d as u16);
    out.extend_from_slice(&dest.to_le_bytes());
    out.extend_from_slice(&id.seq.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    let mut filler = filler(id);
    while out.len() < len {
        let word = filler.next_u64().to_le_bytes();
        let take = (len - out.len()).min(word.len());
        out.extend_from_slice(&word[..take]);
    }
}

/// Reads a payload: which message it claims to be, and whether every byte
/// (length included) is what that message holds. `None` when not even the
/// header is recognisable.
pub fn decode(bytes: &[u8]) -> Option<(MsgId, bool)> {
    let h = bytes.get(..HEADER_LEN)?;
    if h[0] != MAGIC {
        return None;
    }
    let kind = match h[1] {
        0 => Kind::Cast,
        1 => Kind::Send,
        _ => return None,
    };
    let origin = u16::from_le_bytes([h[2], h[3]]) as usize;
    let dest = match (kind, u16::from_le_bytes([h[4], h[5]])) {
        (Kind::Cast, NO_DEST) => None,
        (Kind::Send, d) if d != NO_DEST => Some(d as usize),
        _ => return None,
    };
    let seq = u32::from_le_bytes([h[6], h[7], h[8], h[9]]);
    let len = u32::from_le_bytes([h[10], h[11], h[12], h[13]]) as usize;
    let id = MsgId {
        origin,
        kind,
        dest,
        seq,
    };
    let mut filler = filler(&id);
    let mut intact = len == bytes.len();
    for chunk in bytes[HEADER_LEN..].chunks(8) {
        let word = filler.next_u64().to_le_bytes();
        if chunk != &word[..chunk.len()] {
            intact = false;
            break;
        }
    }
    Some((id, intact))
}

/// The filler stream of one message: a function of its id only.
fn filler(id: &MsgId) -> Rng {
    let kind = match id.kind {
        Kind::Cast => 0,
        Kind::Send => 1,
    };
    let stream =
        (id.origin as u64) << 40 | (id.dest.map_or(0xffff, |d| d as u64)) << 24 | kind << 16;
    Rng::derive(u64::from(id.seq), stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_damage() {
        let id = MsgId {
            origin: 63,
            kind: Kind::Cast,
            dest: None,
            seq: 70_000,
        };
        let mut buf = Vec::new();
        for len in [0, HEADER_LEN, 15, 22, 23, 1000] {
            encode(&id, len, &mut buf);
            assert_eq!(buf.len(), len.max(HEADER_LEN));
            assert_eq!(decode(&buf), Some((id, true)));
        }
        // Truncated, extended, another message's filler, bad header.
        assert_eq!(decode(&buf[..999]), Some((id, false)));
        let mut longer = buf.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Some((id, false)));
        let other = MsgId { seq: 1, ..id };
        let mut spliced = Vec::new();
        encode(&other, 1000, &mut spliced);
        spliced[..HEADER_LEN].copy_from_slice(&buf[..HEADER_LEN]);
        assert_eq!(decode(&spliced), Some((id, false)));
        assert_eq!(decode(&buf[..5]), None);
        buf[0] = 0;
        assert_eq!(decode(&buf), None);
    }
}
