//! The membership monitor (MM) side: registers with an MSS
//! (`RegisterMembershipMonitor`), receives `MembershipUpdate`s carrying the
//! lifecycle sets (Members, Joined, Left, Failed, Suspected), whole or
//! changes only, and acknowledges them.
//!
//! Updates are read in place: [`Monitor::poll_event`] decodes the items of
//! the last update one at a time, so a monitor needs no room for the
//! whole membership. Changes-only updates are taken in order: one starting
//! past what was received is ignored (the MSS sends again from the last
//! acknowledgement), so no change is ever skipped.

use core::net::SocketAddr;

use heapless::Deque;

use super::client::{Client, ClientConfig, ClientStats};
use super::ids::{Lifecycle, MemberId, MssId};
use super::service::ServiceError;
use super::wire::{
    self, Kind, MAX_DATAGRAM, Message, RegisterMonitor, UpdateAck, UpdateHead, UpdateItem,
};
use crate::event::Transmit;
use crate::time::Instant;

/// What a monitor tells its application.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MonitorEvent {
    /// Registered with an MSS.
    Registered {
        /// The MSS.
        mss: MssId,
    },
    /// A whole-state update starts: forget the sets, they follow in full.
    SnapshotStart,
    /// A member service and the lifecycle set it is in.
    Update {
        /// The member service.
        member: MemberId,
        /// Its set.
        set: Lifecycle,
    },
    /// The whole-state update is complete.
    SnapshotEnd,
}

/// A membership monitor. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Monitor {
    changes_only: bool,
    mss: Option<MssId>,
    c: Client,
    /// Changes received without a gap, up to this number.
    have: u32,
    /// The whole-state update being received: next index expected.
    snapshot: Option<u32>,
    events: Deque<MonitorEvent, 4>,
    last: [u8; MAX_DATAGRAM],
    last_len: usize,
    cursor: usize,
    last_end: bool,
}

impl Monitor {
    /// A monitor for context `uri` (the MSS sends updates to the address
    /// its registration came from), asking for changes only or for the
    /// whole state each time, trying the MSS in `servers` in order.
    pub fn new(
        uri: &str,
        changes_only: bool,
        servers: &[SocketAddr],
    ) -> Result<Self, ServiceError> {
        Ok(Monitor {
            changes_only,
            mss: None,
            c: Client::new(uri, servers)?,
            have: 0,
            snapshot: None,
            events: Deque::new(),
            last: [0; MAX_DATAGRAM],
            last_len: 0,
            cursor: 0,
            last_end: false,
        })
    }

    /// Changes the timing.
    pub fn set_config(&mut self, config: ClientConfig) {
        self.c.config = config;
    }

    /// The MSS it is registered with.
    pub fn registered_with(&self) -> Option<MssId> {
        self.mss
    }

    /// Counters.
    pub fn stats(&self) -> &ClientStats {
        &self.c.stats
    }

    /// Starts registering.
    pub fn start(&mut self, now: Instant) {
        self.mss = None;
        self.have = 0;
        self.c.tries = 0;
        self.register(now);
    }

    fn register(&mut self, now: Instant) {
        let uri = self.c.uri.clone();
        self.c.stats.registrations += 1;
        self.c.send_server(
            Kind::RegisterMembershipMonitor,
            &RegisterMonitor {
                uri: &uri,
                changes_only: self.changes_only,
            },
        );
        self.c.next = Some(now + self.c.config.retry);
    }

    /// Hands it a datagram. Read the update's events before the next one.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.c.stats.datagrams_in += 1;
        let Ok((p, msg)) = Message::parse(data) else {
            self.c.stats.malformed += 1;
            return;
        };
        if p.context != self.c.ctx || !self.c.is_server(from) {
            self.c.stats.unexpected += 1;
            return;
        }
        match msg {
            Message::MonitorRegistered(r) => {
                if self.mss.is_none() {
                    self.mss = Some(r.mss);
                    let _ = self
                        .events
                        .push_back(MonitorEvent::Registered { mss: r.mss });
                }
                self.c.last_heard = now;
                self.c.next = Some(now + self.c.config.orphan_after);
            }
            Message::MembershipUpdate(h, items) => {
                if self.mss != Some(h.mss) {
                    // From an MSS life this monitor did not register with.
                    self.c.stats.unexpected += 1;
                    if self.mss.is_some() {
                        self.start(now);
                    }
                    return;
                }
                self.c.last_heard = now;
                self.c.next = Some(now + self.c.config.orphan_after);
                if self.accept(&h) {
                    let body = data.len() - items_len(&items);
                    let n = data.len().min(MAX_DATAGRAM);
                    self.last[..n].copy_from_slice(&data[..n]);
                    self.last_len = n;
                    self.cursor = body;
                    self.last_end = h.full && h.last;
                }
                self.c
                    .send(from, Kind::UpdateAck, &UpdateAck { to: self.have });
            }
            _ => self.c.stats.unexpected += 1,
        }
    }

    /// Whether an update continues what was received; advances the marks.
    fn accept(&mut self, h: &UpdateHead) -> bool {
        if h.full {
            if h.from == 0 {
                let _ = self.events.push_back(MonitorEvent::SnapshotStart);
            } else if self.snapshot != Some(h.from) {
                return false;
            }
            self.snapshot = if h.last { None } else { Some(h.to) };
            true
        } else if h.from <= self.have {
            self.have = self.have.max(h.to);
            true
        } else {
            false
        }
    }

    /// Runs retries and the silence check.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(next) = self.c.next else { return };
        if next > now {
            return;
        }
        if self.mss.is_none() {
            self.c.tries += 1;
            if self.c.tries >= self.c.config.tries_per_server {
                self.c.rotate();
            }
            self.register(now);
        } else {
            // Silent MSS: register elsewhere and start from scratch.
            self.c.rotate();
            self.start(now);
        }
    }

    /// The next event: control events first, then the items of the last
    /// update, one at a time.
    pub fn poll_event(&mut self) -> Option<MonitorEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        if self.cursor < self.last_len {
            let rest = &self.last[self.cursor..self.last_len];
            match postcard::take_from_bytes::<UpdateItem>(rest) {
                Ok((it, tail)) => {
                    self.cursor = self.last_len - tail.len();
                    if let Some(set) = Lifecycle::from_wire(it.set) {
                        return Some(MonitorEvent::Update {
                            member: it.member,
                            set,
                        });
                    }
                    return self.poll_event();
                }
                Err(_) => self.cursor = self.last_len,
            }
        }
        if self.last_end {
            self.last_end = false;
            return Some(MonitorEvent::SnapshotEnd);
        }
        None
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.c.poll_transmit()
    }

    /// When to call [`Monitor::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.c.next
    }
}

fn items_len(items: &wire::Items<'_, UpdateItem>) -> usize {
    items.rest_len()
}

crate::driver::forward_machine!([] Monitor);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epidemic::ids::{ContextId, Lifecycle, MssId};
    use crate::epidemic::wire::{Registered, Writer};
    use std::vec::Vec;

    const URI: &str = "urn:t";

    fn server() -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], 7100))
    }

    fn member(i: u8) -> MemberId {
        MemberId {
            addr: SocketAddr::from(([10, 1, 0, i], 9000)),
            incarnation: 1,
        }
    }

    fn update(
        m: &mut Monitor,
        mss: MssId,
        from: u32,
        to: u32,
        items: &[(u8, Lifecycle)],
    ) -> Vec<MonitorEvent> {
        let mut buf = [0u8; MAX_DATAGRAM];
        let head = UpdateHead {
            mss,
            from,
            to,
            full: false,
            last: true,
        };
        let mut w = Writer::new(
            &mut buf,
            MAX_DATAGRAM,
            Kind::MembershipUpdate,
            ContextId::from_uri(URI),
            &head,
        )
        .unwrap();
        for (i, set) in items {
            assert!(w.push(&UpdateItem {
                member: member(*i),
                set: set.to_wire(),
            }));
        }
        let n = w.len();
        m.handle_datagram(Instant::ZERO, server(), &buf[..n]);
        let mut v = Vec::new();
        while let Some(e) = m.poll_event() {
            v.push(e);
        }
        v
    }

    #[test]
    fn changes_are_taken_in_order_and_acknowledged() {
        let mut m = Monitor::new(URI, true, &[server()]).unwrap();
        m.start(Instant::ZERO);
        let mss = MssId {
            addr: server(),
            incarnation: 3,
        };
        let who = MemberId {
            addr: server(),
            incarnation: 0,
        };
        let mut buf = [0u8; 128];
        let n = wire::encode(
            &mut buf,
            Kind::MonitorRegistered,
            ContextId::from_uri(URI),
            &Registered { who, mss },
        )
        .unwrap();
        m.handle_datagram(Instant::ZERO, server(), &buf[..n]);
        assert_eq!(m.poll_event(), Some(MonitorEvent::Registered { mss }));
        let got = update(
            &mut m,
            mss,
            0,
            2,
            &[(1, Lifecycle::Joined), (2, Lifecycle::Joined)],
        );
        assert_eq!(got.len(), 2);
        // A gap (3..=4 missing): ignored, and the acknowledgement says 2.
        assert!(update(&mut m, mss, 4, 5, &[(3, Lifecycle::Failed)]).is_empty());
        let acks: Vec<u32> = core::iter::from_fn(|| m.poll_transmit().map(|t| t.contents.to_vec()))
            .filter_map(|b| match Message::parse(&b) {
                Ok((_, Message::UpdateAck(a))) => Some(a.to),
                _ => None,
            })
            .collect();
        assert_eq!(acks.last(), Some(&2));
        let got = update(&mut m, mss, 2, 5, &[(1, Lifecycle::Failed)]);
        assert_eq!(
            got,
            [MonitorEvent::Update {
                member: member(1),
                set: Lifecycle::Failed
            }]
        );
    }
}
