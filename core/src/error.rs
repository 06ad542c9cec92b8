//! Errors the core reports to its caller.
//!
//! Two enums, because they answer different questions: [`ConfigError`] says
//! why an endpoint cannot be built as asked (once, at start-up, naming the
//! offending value), [`SendError`] why one cast or send was not taken (often,
//! and usually to be retried). Mixing them would make every caller match on
//! cases that cannot happen where it stands.

use crate::stack::LayerKind;
use crate::stack::Property;

/// A short copy of a name that was not understood, for error messages.
pub type Name = heapless::String<32>;

/// Keeps the first 32 bytes of `s` (cut at a character boundary).
pub(crate) fn name(s: &str) -> Name {
    let mut out = Name::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// Why an endpoint could not be built from its configuration.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A property name that consort does not know, e.g. `"Fragg"`.
    UnknownProperty(Name),
    /// A property consort knows (from the Maestro list) but this version
    /// does not provide yet.
    PropertyNotAvailable(Property),
    /// A layer name that consort does not know, e.g. `"Mnakk"`.
    UnknownLayer(Name),
    /// A property that needs another property, e.g. Sync needs Gmp.
    PropertyNeeds {
        /// The property with the requirement.
        property: Property,
        /// What it needs.
        needs: Property,
    },
    /// An Ensemble layer name that this version does not provide yet.
    LayerNotAvailable(Name),
    /// The same layer twice in one stack.
    DuplicateLayer(LayerKind),
    /// A stack must start with `Top` and end with `Bottom`.
    MissingEnd(LayerKind),
    /// `layer` needs `needs` somewhere below it in the stack.
    NeedsBelow {
        /// The layer with the requirement.
        layer: LayerKind,
        /// What it needs below it.
        needs: LayerKind,
    },
    /// `layer` needs `needs` somewhere above it in the stack.
    NeedsAbove {
        /// The layer with the requirement.
        layer: LayerKind,
        /// What it needs above it.
        needs: LayerKind,
    },
    /// More layers than a stack can hold.
    TooManyLayers(usize),
    /// A parameter name that no layer reads, e.g. `"stable_swep"`.
    UnknownParam(Name),
    /// A parameter whose value does not parse or is out of range.
    BadParam {
        /// The parameter.
        name: Name,
        /// The value given.
        value: Name,
    },
    /// A parameter setting without `=`.
    MalformedParam(Name),
    /// The group name is empty.
    EmptyGroupName,
    /// The group name is longer than 64 bytes.
    GroupNameTooLong(usize),
    /// The parameter string is longer than 256 bytes.
    ParamsTooLong(usize),
    /// The view has more members than the endpoint's profile holds.
    TooManyMembers {
        /// Members in the view.
        members: usize,
        /// Members the profile holds.
        capacity: usize,
    },
    /// The view given does not contain this endpoint.
    NotInView,
    /// The view lists the same endpoint twice.
    DuplicateMember(u64),
    /// The storage given cannot even hold Stable's acknowledgement matrix
    /// (`members² × 4` bytes), let alone a pool beside it.
    StorageTooSmall {
        /// Bytes the matrix needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The message pool is too small for this stack and group.
    PoolTooSmall {
        /// Slots needed.
        needed: usize,
        /// Slots available.
        available: usize,
    },
    /// A slot is too small for the headers of this stack plus some payload.
    SlotTooSmall {
        /// Bytes needed per slot.
        needed: usize,
        /// Bytes per slot.
        slot_size: usize,
    },
    /// `frag_max` needs more fragments than one message may have.
    TooManyFragments {
        /// Fragments needed for `frag_max`.
        needed: usize,
        /// The limit.
        limit: usize,
    },
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use ConfigError::*;
        match self {
            UnknownProperty(p) => write!(f, "unknown property {p:?}"),
            PropertyNotAvailable(p) => {
                write!(
                    f,
                    "property {p:?} is not available in this version of consort"
                )
            }
            UnknownLayer(l) => write!(f, "unknown layer {l:?}"),
            PropertyNeeds { property, needs } => {
                write!(f, "property {property:?} needs property {needs:?}")
            }
            LayerNotAvailable(l) => {
                write!(f, "layer {l:?} is not available in this version of consort")
            }
            DuplicateLayer(l) => write!(f, "layer {l:?} appears twice in the stack"),
            MissingEnd(l) => write!(
                f,
                "a stack must start with Top and end with Bottom ({l:?} misplaced or missing)"
            ),
            NeedsBelow { layer, needs } => write!(f, "layer {layer:?} needs {needs:?} below it"),
            NeedsAbove { layer, needs } => write!(f, "layer {layer:?} needs {needs:?} above it"),
            TooManyLayers(n) => write!(f, "{n} layers is more than a stack holds"),
            UnknownParam(p) => write!(f, "unknown parameter {p:?}"),
            BadParam { name, value } => write!(f, "bad value {value:?} for parameter {name:?}"),
            MalformedParam(s) => write!(f, "parameter setting {s:?} is not of the form name=value"),
            EmptyGroupName => write!(f, "the group name is empty"),
            GroupNameTooLong(n) => write!(f, "the group name is {n} bytes long; the limit is 64"),
            ParamsTooLong(n) => write!(
                f,
                "the parameter string is {n} bytes long; the limit is 256"
            ),
            TooManyMembers { members, capacity } => {
                write!(
                    f,
                    "{members} members is more than this profile holds ({capacity})"
                )
            }
            NotInView => write!(f, "this endpoint is not in the view it was given"),
            DuplicateMember(id) => write!(f, "endpoint {id:#x} appears twice in the view"),
            StorageTooSmall { needed, available } => {
                write!(
                    f,
                    "storage of {available} bytes cannot hold the acknowledgement matrix of {needed} bytes, let alone a pool"
                )
            }
            PoolTooSmall { needed, available } => {
                write!(
                    f,
                    "message pool has {available} slots, this configuration needs {needed}"
                )
            }
            SlotTooSmall { needed, slot_size } => {
                write!(
                    f,
                    "slots of {slot_size} bytes are too small: this stack needs {needed}"
                )
            }
            TooManyFragments { needed, limit } => {
                write!(
                    f,
                    "frag_max needs {needed} fragments per message, the limit is {limit}"
                )
            }
        }
    }
}

impl core::error::Error for ConfigError {}

/// Why a cast or send was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// Flow control or buffer space says wait: retry after the next
    /// [`Event::Writable`](crate::Event::Writable) (the async API waits for you).
    WouldBlock,
    /// The message is larger than this stack carries (`frag_max`, or one
    /// datagram without the Frag property).
    TooLarge {
        /// The message length.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// No member has this rank in the current view.
    NoSuchMember(u16),
    /// Point-to-point sends to oneself are not carried.
    SendToSelf,
    /// No member has this endpoint id in the current view.
    NotAMember(u64),
    /// This member has left the group.
    Exited,
    /// The stack has no layer that carries this (`send_to_many` without
    /// Subcast).
    NotInStack(crate::stack::LayerKind),
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::WouldBlock => write!(f, "flow control window or buffers full; retry later"),
            SendError::TooLarge { len, max } => {
                write!(
                    f,
                    "message of {len} bytes is larger than the maximum of {max}"
                )
            }
            SendError::NoSuchMember(r) => write!(f, "no member with rank {r} in the current view"),
            SendError::SendToSelf => write!(f, "cannot send point-to-point to oneself"),
            SendError::NotAMember(id) => {
                write!(f, "endpoint {id:#x} is not a member of the current view")
            }
            SendError::Exited => write!(f, "this member has left the group"),
            SendError::NotInStack(k) => write!(f, "the stack has no {} layer", k.name()),
        }
    }
}

impl core::error::Error for SendError {}
