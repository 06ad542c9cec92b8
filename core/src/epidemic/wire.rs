//! The epidemic service's datagram format, version 1 (`docs/epidemic/wire.md`).
//!
//! ```text
//!  0      2   3    4                  12
//!  +------+---+----+------------------+----------------+-------------------+
//!  |magic |ver|kind|  context id      | head (postcard)| items (postcard)* |
//!  | "CE" | 1 |    | FNV-1a 64, BE    |                | until the end     |
//!  +------+---+----+------------------+----------------+-------------------+
//! ```
//! The magic differs from the group stack's `"CS"`, so that a datagram sent
//! to the wrong port is told apart at once. After the 12-byte prefix comes
//! the message's head, then, for list messages, items one after another up
//! to the end of the datagram: no count to trust, and a sender fills a
//! datagram item by item until the next one does not fit.
//!
//! Decoding never panics and never trusts a length: [`Prefix::parse`]
//! checks the fixed part; [`Message::parse`] decodes the head and
//! validates every item before the message is handed out, so a receiver
//! never applies half of a malformed datagram.

use core::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ids::{ContextId, MemberId, MssId, wire_addr};

/// The two bytes every epidemic datagram starts with.
pub const MAGIC: [u8; 2] = *b"CE";
/// The format version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes of the fixed prefix.
pub const PREFIX_LEN: usize = 12;
/// The largest datagram the service ever sends or accepts. 1400 bytes
/// leave room for IP, UDP and tunnel headers inside a 1500-byte MTU.
pub const MAX_DATAGRAM: usize = 1400;

/// Why a datagram was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// Shorter than the prefix.
    Truncated,
    /// Not `"CE"`.
    BadMagic,
    /// A version this crate does not speak.
    UnsupportedVersion(u8),
    /// A message kind this version does not know.
    UnknownKind(u8),
    /// The head or an item did not decode.
    Malformed,
    /// Longer than [`MAX_DATAGRAM`].
    TooLong,
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WireError::Truncated => write!(f, "datagram shorter than the {PREFIX_LEN}-byte prefix"),
            WireError::BadMagic => write!(f, "not an epidemic datagram (bad magic)"),
            WireError::UnsupportedVersion(v) => write!(f, "unsupported epidemic wire version {v}"),
            WireError::UnknownKind(k) => write!(f, "unknown epidemic message kind {k}"),
            WireError::Malformed => write!(f, "malformed epidemic message"),
            WireError::TooLong => write!(f, "datagram longer than {MAX_DATAGRAM} bytes"),
        }
    }
}

impl core::error::Error for WireError {}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = $v:literal,)*) => {
        /// Message kinds: the byte at offset 3.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        pub enum Kind { $($(#[$doc])* $name = $v,)* }
        impl Kind {
            /// Parses the kind byte.
            pub const fn from_byte(b: u8) -> Option<Kind> {
                match b { $($v => Some(Kind::$name),)* _ => None }
            }
        }
    };
}

kinds! {
    /// MSS to MSS: heartbeat digest of one range of the sender's peer table.
    Digest = 1,
    /// MSS to MSS: "send me these owners' member entries changed since".
    Pull = 2,
    /// MSS to MSS: one owner's member entries, a complete range of stamps.
    Members = 3,
    /// MSS to MSS: a direct probe of a suspected MSS.
    Ping = 4,
    /// MSS to MSS: "probe this suspected MSS for me" (indirect probe).
    PingReq = 5,
    /// MSS to MSS: answer to a probe, with the target's current heartbeat.
    Ack = 6,
    /// Client to MSS: activate a coordination context.
    CreateCoordinationContext = 16,
    /// MSS to client: the context is active here.
    ContextCreated = 17,
    /// MS (or proxy) to MSS: register a member service.
    RequestMemberService = 18,
    /// MSS to MS: registered.
    MemberRegistered = 19,
    /// MSS to MS: are you alive?
    MemberProbe = 20,
    /// MS to MSS: alive.
    MemberAlive = 21,
    /// MS or proxy to MSS: this member service leaves.
    MemberLeaves = 22,
    /// MSS to MS or proxy: the leave or failure report is recorded.
    MemberRemoved = 23,
    /// MSS to MS or proxy: this incarnation is unknown here, or final:
    /// register again under a new incarnation.
    NotRegistered = 24,
    /// Proxy to MSS: register a membership proxy.
    RegisterMembershipProxy = 25,
    /// MSS to proxy: registered.
    ProxyRegistered = 26,
    /// MSS to proxy: are you alive?
    ProxyProbe = 27,
    /// Proxy to MSS: alive.
    ProxyAlive = 28,
    /// Proxy to MSS: a member service it speaks for has failed.
    MemberFailed = 29,
    /// Monitor to MSS: register a membership monitor.
    RegisterMembershipMonitor = 30,
    /// MSS to monitor: registered.
    MonitorRegistered = 31,
    /// MSS to monitor: lifecycle sets, whole or changes.
    MembershipUpdate = 32,
    /// Monitor to MSS: updates up to this sequence number arrived.
    UpdateAck = 33,
}

/// The fixed prefix, as typed fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Prefix {
    /// What the rest of the datagram is.
    pub kind: Kind,
    /// The coordination context it is about (0 for none).
    pub context: ContextId,
}

impl Prefix {
    /// Checks and reads the first [`PREFIX_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Result<Prefix, WireError> {
        if b.len() > MAX_DATAGRAM {
            return Err(WireError::TooLong);
        }
        let Some(p) = b.get(..PREFIX_LEN) else {
            return Err(WireError::Truncated);
        };
        if p[0..2] != MAGIC {
            return Err(WireError::BadMagic);
        }
        if p[2] != VERSION {
            return Err(WireError::UnsupportedVersion(p[2]));
        }
        let kind = Kind::from_byte(p[3]).ok_or(WireError::UnknownKind(p[3]))?;
        let mut ctx = [0u8; 8];
        ctx.copy_from_slice(&p[4..12]);
        Ok(Prefix {
            kind,
            context: ContextId(u64::from_be_bytes(ctx)),
        })
    }

    /// Writes the prefix into `out`; `None` if `out` is too short.
    pub fn emit(&self, out: &mut [u8]) -> Option<()> {
        let p = out.get_mut(..PREFIX_LEN)?;
        p[0..2].copy_from_slice(&MAGIC);
        p[2] = VERSION;
        p[3] = self.kind as u8;
        p[4..12].copy_from_slice(&self.context.0.to_be_bytes());
        Some(())
    }
}

// ---- heads and items --------------------------------------------------

/// Head of a [`Kind::Digest`]: a complete range of the sender's peer
/// table, `(lo, hi]` in [`MssId`] order (`None`: from the start / to the end).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DigestHead {
    /// The sending MSS.
    pub sender: MssId,
    /// An answer to a digest (not answered again), or the start of a round.
    pub reply: bool,
    /// Exclusive lower bound of the range.
    pub lo: Option<MssId>,
    /// Inclusive upper bound of the range.
    pub hi: Option<MssId>,
}

/// One peer in a digest.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DigestItem {
    /// The peer.
    pub id: MssId,
    /// Its heartbeat counter.
    pub heartbeat: u64,
    /// Version of its member list held by the sender.
    pub version: u32,
    /// Highest stamp of its member tombstones removed so far.
    pub floor: u32,
    /// [`Status`](super::Status) byte: alive, left or failed.
    pub status: u8,
}

/// Head of a [`Kind::Pull`] and of a [`Kind::Ping`]-less MSS message: who sends.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PullHead {
    /// The sending MSS.
    pub sender: MssId,
}

/// One owner whose member entries are wanted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PullItem {
    /// The owning MSS.
    pub owner: MssId,
    /// Send entries with stamps above this.
    pub since: u32,
}

/// Head of a [`Kind::Members`]: every entry of `owner` with a stamp in
/// `(from, to]` is in this datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MembersHead {
    /// The sending MSS.
    pub sender: MssId,
    /// The MSS the member services are registered with.
    pub owner: MssId,
    /// Exclusive lower stamp.
    pub from: u32,
    /// Inclusive upper stamp.
    pub to: u32,
}

/// One member service in a [`Kind::Members`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MemberItem {
    /// The member service.
    pub id: MemberId,
    /// [`Status`](super::Status) byte.
    pub status: u8,
    /// The owner's version when this entry last changed.
    pub stamp: u32,
}

/// A [`Kind::Ping`], [`Kind::PingReq`] or [`Kind::Ack`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Probe {
    /// The sending MSS (for an `Ack`: the probed MSS, as it is now).
    pub sender: MssId,
    /// The probed MSS.
    pub target: MssId,
    /// The probed MSS's heartbeat (in an `Ack`; 0 otherwise).
    pub heartbeat: u64,
    /// Matches an `Ack` to its probe.
    pub nonce: u32,
    /// For an indirect probe: who asked, and gets the `Ack` forwarded.
    #[serde(with = "opt_addr")]
    pub requester: Option<core::net::SocketAddr>,
}

/// Head of the client messages that name a context by URI.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Activate<'a> {
    /// The context's URI (at most [`MAX_URI`](super::MAX_URI) bytes).
    pub uri: &'a str,
}

/// A [`Kind::RequestMemberService`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RequestMember<'a> {
    /// The context's URI.
    pub uri: &'a str,
    /// The member service.
    pub member: MemberId,
    /// The port probes go to, on the member's address.
    pub probe_port: u16,
    /// The proxy that speaks for it, if any (probes then go to the proxy).
    pub proxy: Option<MemberId>,
    /// The MSS instance the client expects (learned from `ContextCreated`
    /// or `ProxyRegistered`): a restarted MSS refuses requests meant for its
    /// earlier life, which may have registered this incarnation already.
    pub mss: Option<MssId>,
}

/// A [`Kind::RegisterMembershipProxy`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RegisterProxy<'a> {
    /// The context's URI.
    pub uri: &'a str,
    /// The proxy.
    pub proxy: MemberId,
}

/// A [`Kind::RegisterMembershipMonitor`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RegisterMonitor<'a> {
    /// The context's URI.
    pub uri: &'a str,
    /// Send only changes (otherwise the whole state every time).
    pub changes_only: bool,
}

/// Answers that name the MSS: `ContextCreated`, `MemberRegistered`,
/// `ProxyRegistered`, `MonitorRegistered`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Registered {
    /// The registered member service or proxy (the MSS itself for the others).
    pub who: MemberId,
    /// The MSS instance now responsible.
    pub mss: MssId,
}

/// Probes and answers between an MSS and a member service or proxy:
/// `MemberProbe`, `MemberAlive`, `ProxyProbe`, `ProxyAlive`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Liveness {
    /// The member service or proxy.
    pub who: MemberId,
    /// Probe sequence number, echoed.
    pub seq: u32,
}

/// Reports about one member service: `MemberLeaves`, `MemberFailed`,
/// `MemberRemoved`, `NotRegistered`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct About {
    /// The member service.
    pub member: MemberId,
}

/// Head of a [`Kind::MembershipUpdate`]: entries whose change numbers are
/// in `(from, to]` (changes only), or a slice of the whole state (`full`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UpdateHead {
    /// The MSS sending.
    pub mss: MssId,
    /// Exclusive lower change number (whole state: index of the first entry).
    pub from: u32,
    /// Inclusive upper change number (whole state: index after the last).
    pub to: u32,
    /// The whole state rather than changes.
    pub full: bool,
    /// The last datagram of this update.
    pub last: bool,
}

/// One member service in a [`Kind::MembershipUpdate`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UpdateItem {
    /// The member service.
    pub member: MemberId,
    /// [`Lifecycle`](super::Lifecycle) byte.
    pub set: u8,
}

/// An [`Kind::UpdateAck`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UpdateAck {
    /// Changes up to this number arrived.
    pub to: u32,
}

mod opt_addr {
    use core::net::SocketAddr;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct A(#[serde(with = "super::wire_addr")] SocketAddr);

    pub(crate) fn serialize<S: Serializer>(
        a: &Option<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        a.map(A).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        Ok(Option::<A>::deserialize(d)?.map(|a| a.0))
    }
}

// ---- decoding ---------------------------------------------------------

/// Items of type `T` one after another up to the end of a datagram. Built
/// only after every item decoded, so iterating never fails.
#[derive(Clone, Debug)]
pub struct Items<'a, T> {
    rest: &'a [u8],
    _t: PhantomData<T>,
}

impl<'a, T: DeserializeOwned> Items<'a, T> {
    fn validate(rest: &'a [u8]) -> Result<Self, WireError> {
        let mut r = rest;
        while !r.is_empty() {
            let (_, tail) = postcard::take_from_bytes::<T>(r).map_err(|_| WireError::Malformed)?;
            r = tail;
        }
        Ok(Items {
            rest,
            _t: PhantomData,
        })
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Bytes of the items not yet read.
    pub fn rest_len(&self) -> usize {
        self.rest.len()
    }
}

impl<T: DeserializeOwned> Iterator for Items<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.rest.is_empty() {
            return None;
        }
        match postcard::take_from_bytes::<T>(self.rest) {
            Ok((t, tail)) => {
                self.rest = tail;
                Some(t)
            }
            // Cannot happen after `validate`; stop rather than loop.
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// A decoded datagram.
#[derive(Clone, Debug)]
#[allow(missing_docs)] // each variant is its `Kind`, documented there
pub enum Message<'a> {
    Digest(DigestHead, Items<'a, DigestItem>),
    Pull(PullHead, Items<'a, PullItem>),
    Members(MembersHead, Items<'a, MemberItem>),
    Ping(Probe),
    PingReq(Probe),
    Ack(Probe),
    CreateCoordinationContext(Activate<'a>),
    ContextCreated(Registered),
    RequestMemberService(RequestMember<'a>),
    MemberRegistered(Registered),
    MemberProbe(Liveness),
    MemberAlive(Liveness),
    MemberLeaves(About),
    MemberRemoved(About),
    NotRegistered(About),
    RegisterMembershipProxy(RegisterProxy<'a>),
    ProxyRegistered(Registered),
    ProxyProbe(Liveness),
    ProxyAlive(Liveness),
    MemberFailed(About),
    RegisterMembershipMonitor(RegisterMonitor<'a>),
    MonitorRegistered(Registered),
    MembershipUpdate(UpdateHead, Items<'a, UpdateItem>),
    UpdateAck(UpdateAck),
}

fn head<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<(T, &'a [u8]), WireError> {
    postcard::take_from_bytes::<T>(b).map_err(|_| WireError::Malformed)
}

fn only<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, WireError> {
    match head::<T>(b)? {
        (t, []) => Ok(t),
        _ => Err(WireError::Malformed),
    }
}

impl<'a> Message<'a> {
    /// Decodes a whole datagram: the prefix, the head and every item.
    ///
    /// ```
    /// use consort_core::epidemic::wire::{Message, WireError};
    /// assert_eq!(Message::parse(b"XX").err(), Some(WireError::Truncated));
    /// ```
    pub fn parse(b: &'a [u8]) -> Result<(Prefix, Message<'a>), WireError> {
        let p = Prefix::parse(b)?;
        let body = &b[PREFIX_LEN..];
        let m = match p.kind {
            Kind::Digest => {
                let (h, r) = head(body)?;
                Message::Digest(h, Items::validate(r)?)
            }
            Kind::Pull => {
                let (h, r) = head(body)?;
                Message::Pull(h, Items::validate(r)?)
            }
            Kind::Members => {
                let (h, r) = head(body)?;
                Message::Members(h, Items::validate(r)?)
            }
            Kind::MembershipUpdate => {
                let (h, r) = head(body)?;
                Message::MembershipUpdate(h, Items::validate(r)?)
            }
            Kind::Ping => Message::Ping(only(body)?),
            Kind::PingReq => Message::PingReq(only(body)?),
            Kind::Ack => Message::Ack(only(body)?),
            Kind::CreateCoordinationContext => Message::CreateCoordinationContext(only(body)?),
            Kind::ContextCreated => Message::ContextCreated(only(body)?),
            Kind::RequestMemberService => Message::RequestMemberService(only(body)?),
            Kind::MemberRegistered => Message::MemberRegistered(only(body)?),
            Kind::MemberProbe => Message::MemberProbe(only(body)?),
            Kind::MemberAlive => Message::MemberAlive(only(body)?),
            Kind::MemberLeaves => Message::MemberLeaves(only(body)?),
            Kind::MemberRemoved => Message::MemberRemoved(only(body)?),
            Kind::NotRegistered => Message::NotRegistered(only(body)?),
            Kind::RegisterMembershipProxy => Message::RegisterMembershipProxy(only(body)?),
            Kind::ProxyRegistered => Message::ProxyRegistered(only(body)?),
            Kind::ProxyProbe => Message::ProxyProbe(only(body)?),
            Kind::ProxyAlive => Message::ProxyAlive(only(body)?),
            Kind::MemberFailed => Message::MemberFailed(only(body)?),
            Kind::RegisterMembershipMonitor => Message::RegisterMembershipMonitor(only(body)?),
            Kind::MonitorRegistered => Message::MonitorRegistered(only(body)?),
            Kind::UpdateAck => Message::UpdateAck(only(body)?),
        };
        Ok((p, m))
    }
}

// ---- encoding ---------------------------------------------------------

/// Builds one datagram in a caller's buffer: prefix, head, then items
/// while they fit.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    items: usize,
}

impl<'b> Writer<'b> {
    /// Starts a datagram of `kind` about `context` with `head`, in at most
    /// `limit` bytes of `buf`. `None` if even the head does not fit.
    pub fn new<H: Serialize>(
        buf: &'b mut [u8],
        limit: usize,
        kind: Kind,
        context: ContextId,
        head: &H,
    ) -> Option<Self> {
        let limit = limit.min(buf.len()).min(MAX_DATAGRAM);
        let buf = &mut buf[..limit];
        Prefix { kind, context }.emit(buf)?;
        let n = postcard::to_slice(head, &mut buf[PREFIX_LEN..]).ok()?.len();
        Some(Writer {
            buf,
            len: PREFIX_LEN + n,
            items: 0,
        })
    }

    /// Appends an item; `false` (and nothing written) if it does not fit.
    pub fn push<T: Serialize>(&mut self, item: &T) -> bool {
        match postcard::to_slice(item, &mut self.buf[self.len..]) {
            Ok(s) => {
                self.len += s.len();
                self.items += 1;
                true
            }
            Err(_) => false,
        }
    }

    /// Items written so far.
    pub fn items(&self) -> usize {
        self.items
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether only the prefix and head are written.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }
}

/// Encodes a message without items into `buf`; returns its length.
pub fn encode<H: Serialize>(
    buf: &mut [u8],
    kind: Kind,
    context: ContextId,
    head: &H,
) -> Option<usize> {
    Writer::new(buf, MAX_DATAGRAM, kind, context, head).map(|w| w.len())
}

/// The encoded size of an item, or `None` if it is larger than a datagram.
pub fn item_size<T: Serialize>(item: &T) -> Option<usize> {
    let mut scratch = [0u8; 64];
    postcard::to_slice(item, &mut scratch).ok().map(|s| s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epidemic::Status;
    use core::net::SocketAddr;

    fn mss(last: u8, inc: u64) -> MssId {
        MssId {
            addr: SocketAddr::from(([10, 0, 0, last], 7100)),
            incarnation: inc,
        }
    }

    /// The bytes of a one-item digest, pinned: an accidental format change
    /// must fail here (docs/epidemic/wire.md shows the same bytes).
    #[test]
    fn digest_bytes_are_pinned() {
        let ctx = ContextId(0x0102_0304_0506_0708);
        let mut buf = [0u8; MAX_DATAGRAM];
        let head = DigestHead {
            sender: mss(1, 3),
            reply: false,
            lo: None,
            hi: None,
        };
        let mut w = Writer::new(&mut buf, MAX_DATAGRAM, Kind::Digest, ctx, &head).unwrap();
        assert!(w.push(&DigestItem {
            id: mss(2, 1),
            heartbeat: 300,
            version: 2,
            floor: 0,
            status: Status::Alive.to_wire(),
        }));
        let n = w.len();
        #[rustfmt::skip]
        let expect: &[u8] = &[
            b'C', b'E', 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, // prefix: magic, version, Digest, context
            0, 10, 0, 0, 1, 0xbc, 0x37, 3,            // sender: V4 10.0.0.1 port 7100 (varint), incarnation 3
            0, 0, 0,                                  // reply false, lo None, hi None
            0, 10, 0, 0, 2, 0xbc, 0x37, 1,            // item: id 10.0.0.2:7100 incarnation 1
            0xac, 0x02, 2, 0, 0,                      // heartbeat 300, version 2, floor 0, Alive
        ];
        assert_eq!(&buf[..n], expect);
        let (p, m) = Message::parse(expect).unwrap();
        assert_eq!(p.kind, Kind::Digest);
        assert_eq!(p.context, ctx);
        let Message::Digest(h, items) = m else {
            panic!("not a digest")
        };
        assert_eq!(h, head);
        let items: heapless::Vec<DigestItem, 4> = items.collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].heartbeat, 300);
    }

    #[test]
    fn probe_and_registration_bytes_are_pinned() {
        let ctx = ContextId::from_uri("urn:test");
        let mut buf = [0u8; 64];
        let member = MemberId {
            addr: SocketAddr::from(([10, 1, 0, 5], 9000)),
            incarnation: 1,
        };
        let n = encode(
            &mut buf,
            Kind::MemberProbe,
            ctx,
            &Liveness {
                who: member,
                seq: 7,
            },
        )
        .unwrap();
        let mut expect = [0u8; 21];
        expect[..4].copy_from_slice(&[b'C', b'E', 1, 20]);
        expect[4..12].copy_from_slice(&ctx.0.to_be_bytes());
        // who = V4 10.1.0.5, port 9000 = varint a8 46, incarnation 1; seq 7
        expect[12..].copy_from_slice(&[0, 10, 1, 0, 5, 0xa8, 0x46, 1, 7]);
        assert_eq!(&buf[..n], &expect[..]);
        let n = encode(
            &mut buf,
            Kind::CreateCoordinationContext,
            ctx,
            &Activate { uri: "urn:test" },
        )
        .unwrap();
        assert_eq!(&buf[12..n], b"\x08urn:test");
    }

    #[test]
    fn every_kind_of_bad_datagram_is_an_error_not_a_panic() {
        assert_eq!(Prefix::parse(&[]).err(), Some(WireError::Truncated));
        let mut b = [0u8; 13];
        Prefix {
            kind: Kind::Ping,
            context: ContextId(1),
        }
        .emit(&mut b)
        .unwrap();
        assert_eq!(Message::parse(&b).err(), Some(WireError::Malformed));
        b[0] = b'X';
        assert_eq!(Prefix::parse(&b).err(), Some(WireError::BadMagic));
        b[0] = b'C';
        b[2] = 9;
        assert_eq!(
            Prefix::parse(&b).err(),
            Some(WireError::UnsupportedVersion(9))
        );
        b[2] = VERSION;
        b[3] = 200;
        assert_eq!(Prefix::parse(&b).err(), Some(WireError::UnknownKind(200)));
        assert_eq!(
            Prefix::parse(&[0u8; MAX_DATAGRAM + 1]).err(),
            Some(WireError::TooLong)
        );
        // A digest whose last item is cut short is refused whole.
        let mut buf = [0u8; MAX_DATAGRAM];
        let mut w = Writer::new(
            &mut buf,
            MAX_DATAGRAM,
            Kind::Digest,
            ContextId(1),
            &DigestHead {
                sender: mss(1, 1),
                reply: true,
                lo: None,
                hi: None,
            },
        )
        .unwrap();
        for i in 0..3 {
            w.push(&DigestItem {
                id: mss(i, 1),
                heartbeat: 1000,
                version: 1,
                floor: 0,
                status: 0,
            });
        }
        let n = w.len();
        assert!(Message::parse(&buf[..n]).is_ok());
        assert_eq!(
            Message::parse(&buf[..n - 1]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn the_largest_control_message_fits_the_control_queue() {
        // The service queues probes and answers in 192-byte slots
        // (`CONTROL_LEN`): the worst case, IPv6 everywhere and the largest
        // numbers, must fit.
        let v6 = SocketAddr::from(([0xffff; 8], u16::MAX));
        let id = MssId {
            addr: v6,
            incarnation: u64::MAX,
        };
        let p = Probe {
            sender: id,
            target: id,
            heartbeat: u64::MAX,
            nonce: u32::MAX,
            requester: Some(v6),
        };
        let mut buf = [0u8; MAX_DATAGRAM];
        let n = encode(&mut buf, Kind::Ack, ContextId(u64::MAX), &p).unwrap();
        assert!(n <= 192, "{n}");
    }

    #[test]
    fn writer_stops_at_the_limit() {
        let mut buf = [0u8; MAX_DATAGRAM];
        let mut w = Writer::new(
            &mut buf,
            100,
            Kind::Pull,
            ContextId(1),
            &PullHead { sender: mss(1, 1) },
        )
        .unwrap();
        let mut pushed = 0;
        while w.push(&PullItem {
            owner: mss(2, 2),
            since: 5,
        }) {
            pushed += 1;
        }
        assert!(pushed > 0 && w.len() <= 100);
        let n = w.len();
        let (_, m) = Message::parse(&buf[..n]).unwrap();
        let Message::Pull(_, items) = m else { panic!() };
        assert_eq!(items.count(), pushed);
    }
}
