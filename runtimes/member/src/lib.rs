//! # consort-member
//!
//! The Member API of consort for std hosts: the Rust form of Ensemble's
//! client API (`JoinOps`, `Member`, views and messages) and of Maestro's
//! `GroupMember`, for async Rust. It is runtime-agnostic: `consort-tokio`
//! and `consort-async-std` give it a socket, a clock and a task, and
//! re-export it; nothing here decides protocol behaviour (the core does).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use consort_member::{JoinOptions, MemberEvent};
//! # let join = |o: JoinOptions| async move { Err::<(consort_member::Member, consort_member::Events), consort_member::JoinError>(consort_member::JoinError::NoGroupFound) };
//! let opts = JoinOptions::new("chat").seeds(["127.0.0.1:7000"]).bind("127.0.0.1:0");
//! let (member, mut events) = join(opts).await?; // consort_tokio::join
//! member.cast(b"hello".to_vec()).await?;
//! while let Some(ev) = events.next().await {
//!     match ev {
//!         MemberEvent::View(v) => println!("view {:?}: {:?}", v.id, v.members),
//!         MemberEvent::Cast { from, bytes } => println!("{from:?}: {bytes:?}"),
//!         MemberEvent::Exit => break,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Two ways to use it: the [`Events`] stream, or, for code ported from
//! Maestro, the [`GroupMember`] callback trait driven by [`run`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bridge;
mod callbacks;
mod error;
mod member;
mod options;

pub use bridge::{Joined, Prepared, Task, prepare};
pub use callbacks::{GroupMember, run};
pub use consort_core::{EndpointId, SendView, Status};
pub use error::{JoinError, MemberError};
pub use member::{Events, Member, MemberEvent, SuspectHandle, ViewInfo};
pub use options::{Capacity, JoinOptions, advertised_address};

/// Whether a UDP receive error only reports that an earlier datagram was
/// lost: an ICMP "port unreachable" for a member gone away is returned by
/// some systems as `ConnectionRefused` or `ConnectionReset` on the next
/// receive. It is a loss, which the protocol repairs, not a broken socket:
/// a runtime's transport receives again.
///
/// ```
/// use std::io::{Error, ErrorKind};
/// assert!(consort_member::is_loss_report(&Error::from(ErrorKind::ConnectionRefused)));
/// assert!(!consort_member::is_loss_report(&Error::from(ErrorKind::PermissionDenied)));
/// ```
pub fn is_loss_report(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
    )
}
