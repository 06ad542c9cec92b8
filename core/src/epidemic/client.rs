//! What the three client roles (member service, proxy, monitor) share:
//! the list of MSS to try, retries, silence detection and a small outbox.

use core::net::SocketAddr;
use core::time::Duration;

use heapless::{Deque, String, Vec};
use serde::Serialize;

use super::ids::{ContextId, MAX_URI};
use super::service::{MAX_SEEDS, ServiceError};
use super::wire::{self, Kind};
use crate::event::Transmit;
use crate::time::Instant;

/// The largest datagram a client role sends (its messages are small).
pub(crate) const SMALL: usize = 256;
const OUTBOX: usize = 16;

/// Timing of a client role.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ClientConfig {
    /// Resend an unanswered registration or leave after this long.
    pub retry: Duration,
    /// Registration attempts at one MSS before trying the next.
    pub tries_per_server: u8,
    /// With no probe (or update) from its MSS for this long, the MSS is
    /// presumed failed: register again elsewhere, as a new incarnation
    /// (the old one fails with the MSS).
    pub orphan_after: Duration,
}

impl Default for ClientConfig {
    /// 500 ms retries, 3 tries per MSS, orphaned after 6 s of silence (six
    /// missed probes at the default 1 s interval: longer than an MSS takes
    /// to fail a silent member, so a member never outlives its entry by
    /// leaving early).
    fn default() -> Self {
        ClientConfig {
            retry: Duration::from_millis(500),
            tries_per_server: 3,
            orphan_after: Duration::from_secs(6),
        }
    }
}

#[derive(Clone, Debug)]
struct Small {
    to: SocketAddr,
    len: u16,
    buf: [u8; SMALL],
}

/// The shared state of a client role.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub(crate) uri: String<MAX_URI>,
    pub(crate) ctx: ContextId,
    servers: Vec<SocketAddr, MAX_SEEDS>,
    server: usize,
    pub(crate) config: ClientConfig,
    pub(crate) tries: u8,
    pub(crate) next: Option<Instant>,
    pub(crate) last_heard: Instant,
    outbox: Deque<Small, OUTBOX>,
    out: [u8; SMALL],
    /// Datagrams received, sent, and dropped (malformed or unexpected).
    pub(crate) stats: ClientStats,
}

/// Counters of a client role.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ClientStats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Dropped: did not decode.
    pub malformed: u64,
    /// Dropped: not for this role, context or incarnation.
    pub unexpected: u64,
    /// Dropped: the outbox was full.
    pub tx_queue_full: u64,
    /// Registrations sent (first tries and retries).
    pub registrations: u64,
    /// Times a new incarnation was taken.
    pub reincarnations: u64,
}

impl Client {
    pub(crate) fn new(uri: &str, servers: &[SocketAddr]) -> Result<Self, ServiceError> {
        if uri.is_empty() || uri.len() > MAX_URI {
            return Err(ServiceError::BadUri(uri.len()));
        }
        let mut u = String::new();
        let _ = u.push_str(uri);
        let mut s = Vec::new();
        for a in servers {
            s.push(*a).map_err(|_| ServiceError::TooManySeeds)?;
        }
        Ok(Client {
            uri: u,
            ctx: ContextId::from_uri(uri),
            servers: s,
            server: 0,
            config: ClientConfig::default(),
            tries: 0,
            next: None,
            last_heard: Instant::ZERO,
            outbox: Deque::new(),
            out: [0; SMALL],
            stats: ClientStats::default(),
        })
    }

    /// The MSS currently used.
    pub(crate) fn server(&self) -> Option<SocketAddr> {
        self.servers.get(self.server).copied()
    }

    /// Moves on to the next MSS of the list.
    pub(crate) fn rotate(&mut self) {
        if !self.servers.is_empty() {
            self.server = (self.server + 1) % self.servers.len();
        }
        self.tries = 0;
    }

    pub(crate) fn send<H: Serialize>(&mut self, to: SocketAddr, kind: Kind, head: &H) {
        let mut s = Small {
            to,
            len: 0,
            buf: [0; SMALL],
        };
        match wire::Writer::new(&mut s.buf, SMALL, kind, self.ctx, head) {
            Some(w) => s.len = w.len() as u16,
            None => return,
        }
        if self.outbox.push_back(s).is_err() {
            self.stats.tx_queue_full += 1;
        }
    }

    /// Sends to the current MSS, if there is one.
    pub(crate) fn send_server<H: Serialize>(&mut self, kind: Kind, head: &H) {
        if let Some(to) = self.server() {
            self.send(to, kind, head);
        }
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        let s = self.outbox.pop_front()?;
        let len = s.len as usize;
        self.out[..len].copy_from_slice(&s.buf[..len]);
        self.stats.datagrams_out += 1;
        Some(Transmit {
            destination: s.to,
            contents: &self.out[..len],
        })
    }

    /// Whether `from` is the MSS in use (answers from others are stale).
    pub(crate) fn is_server(&self, from: SocketAddr) -> bool {
        self.server() == Some(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_wraps_and_bad_uris_are_refused() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let mut c = Client::new("urn:x", &[a, b]).unwrap();
        assert_eq!(c.server(), Some(a));
        c.rotate();
        assert_eq!(c.server(), Some(b));
        c.rotate();
        assert_eq!(c.server(), Some(a));
        assert!(matches!(
            Client::new("", &[a]),
            Err(ServiceError::BadUri(0))
        ));
        let long = [b'x'; MAX_URI + 1];
        let long = core::str::from_utf8(&long).unwrap();
        assert!(Client::new(long, &[a]).is_err());
        let none = Client::new("urn:x", &[]).unwrap();
        assert_eq!(none.server(), None);
    }
}
