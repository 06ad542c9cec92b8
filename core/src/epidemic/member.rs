//! The member service (MS) side: register with an MSS
//! (`RequestMemberService`), answer its `MemberProbe`s with `MemberAlive`,
//! leave with `MemberLeaves`. A small sans-IO machine like the others.
//!
//! When its MSS falls silent (no probe for [`ClientConfig::orphan_after`])
//! or says it does not know this incarnation (`NotRegistered`: the MSS
//! restarted, or failed this incarnation), the service takes a new
//! incarnation and registers again, with the next MSS of its list if the
//! old one is silent. A Left or Failed incarnation is never reused.

use core::net::SocketAddr;

use heapless::Deque;

use super::client::{Client, ClientConfig, ClientStats};
use super::ids::{MemberId, MssId};
use super::service::ServiceError;
use super::wire::{About, Activate, Kind, Liveness, Message, RequestMember};
use crate::event::Transmit;
use crate::time::Instant;

/// Where a member service stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemberState {
    /// Not started.
    Idle,
    /// Asking an MSS for the context (`CreateCoordinationContext`), to
    /// learn which MSS instance it is.
    Activating,
    /// Asking this MSS instance to register it.
    Registering(MssId),
    /// Registered with this MSS.
    Registered(MssId),
    /// Leaving.
    Leaving,
    /// Left (or stopped).
    Left,
}

/// What a member service tells its application.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemberEvent {
    /// Registered with an MSS.
    Registered {
        /// This incarnation.
        member: MemberId,
        /// The MSS.
        mss: MssId,
    },
    /// Took a new incarnation (the old one is Failed or unknown at the MSS).
    Reincarnated {
        /// The incarnation given up.
        old: MemberId,
        /// The new one.
        new: MemberId,
    },
    /// The leave was recorded.
    Left,
}

/// A member service. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct MemberService {
    id: MemberId,
    /// The port `MemberProbe`s go to, on `id.addr`'s IP.
    probe_port: u16,
    state: MemberState,
    c: Client,
    events: Deque<MemberEvent, 8>,
}

impl MemberService {
    /// A member service at `addr` (where it is probed), in its
    /// `incarnation`th life, for the context `uri`, trying the MSS in
    /// `servers` in order.
    pub fn new(
        addr: SocketAddr,
        incarnation: u64,
        uri: &str,
        servers: &[SocketAddr],
    ) -> Result<Self, ServiceError> {
        Ok(MemberService {
            id: MemberId { addr, incarnation },
            probe_port: addr.port(),
            state: MemberState::Idle,
            c: Client::new(uri, servers)?,
            events: Deque::new(),
        })
    }

    /// Changes the timing.
    pub fn set_config(&mut self, config: ClientConfig) {
        self.c.config = config;
    }

    /// Has `MemberProbe`s sent to this port, on the IP of the service's
    /// address, rather than to the address itself (the seed's
    /// `RequestMemberService` names both): the service's address can then
    /// be another socket's, say the one a process uses in a group, while
    /// this machine answers probes on its own. Takes effect at the next
    /// registration; call it before [`MemberService::start`].
    pub fn set_probe_port(&mut self, port: u16) {
        self.probe_port = port;
    }

    /// The port probes go to.
    pub fn probe_port(&self) -> u16 {
        self.probe_port
    }

    /// This incarnation.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// Where it stands.
    pub fn state(&self) -> MemberState {
        self.state
    }

    /// The MSS it is registered with.
    pub fn registered_with(&self) -> Option<MssId> {
        match self.state {
            MemberState::Registered(m) => Some(m),
            _ => None,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &ClientStats {
        &self.c.stats
    }

    /// Starts registering: `CreateCoordinationContext`, then
    /// `RequestMemberService` naming the MSS instance that answered.
    pub fn start(&mut self, now: Instant) {
        self.state = MemberState::Activating;
        self.c.tries = 0;
        self.request(now);
    }

    /// Leaves: `MemberLeaves`, resent until the MSS answers.
    pub fn leave(&mut self, now: Instant) {
        self.state = MemberState::Leaving;
        self.c.tries = 0;
        self.c
            .send_server(Kind::MemberLeaves, &About { member: self.id });
        self.c.next = Some(now + self.c.config.retry);
    }

    fn request(&mut self, now: Instant) {
        let uri = self.c.uri.clone();
        self.c.stats.registrations += 1;
        match self.state {
            MemberState::Activating => {
                self.c
                    .send_server(Kind::CreateCoordinationContext, &Activate { uri: &uri });
            }
            MemberState::Registering(mss) => {
                let r = RequestMember {
                    uri: &uri,
                    member: self.id,
                    probe_port: self.probe_port,
                    proxy: None,
                    mss: Some(mss),
                };
                self.c.send_server(Kind::RequestMemberService, &r);
            }
            _ => return,
        }
        self.c.next = Some(now + self.c.config.retry);
    }

    fn registered(&mut self, now: Instant, mss: MssId) {
        self.state = MemberState::Registered(mss);
        self.c.last_heard = now;
        self.c.next = Some(now + self.c.config.orphan_after);
        let _ = self.events.push_back(MemberEvent::Registered {
            member: self.id,
            mss,
        });
    }

    fn reincarnate(&mut self, now: Instant, rotate: bool) {
        let old = self.id;
        self.id.incarnation += 1;
        self.c.stats.reincarnations += 1;
        let _ = self
            .events
            .push_back(MemberEvent::Reincarnated { old, new: self.id });
        if rotate {
            self.c.rotate();
        }
        self.start(now);
    }

    /// Hands it a datagram.
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
            Message::ContextCreated(r) => {
                if self.state == MemberState::Activating {
                    self.state = MemberState::Registering(r.mss);
                    self.c.tries = 0;
                    self.request(now);
                }
            }
            Message::MemberRegistered(r) if r.who == self.id => {
                if self.state == MemberState::Registering(r.mss) {
                    self.registered(now, r.mss);
                }
            }
            Message::MemberProbe(l) if l.who == self.id => match self.state {
                MemberState::Registering(mss) | MemberState::Registered(mss) => {
                    // A probe proves the registration even if its answer was lost.
                    if self.state == MemberState::Registering(mss) {
                        self.registered(now, mss);
                    }
                    self.c.last_heard = now;
                    self.c.next = Some(now + self.c.config.orphan_after);
                    self.c.send(
                        from,
                        Kind::MemberAlive,
                        &Liveness {
                            who: self.id,
                            seq: l.seq,
                        },
                    );
                }
                _ => self.c.stats.unexpected += 1,
            },
            Message::NotRegistered(a) if a.member == self.id => {
                if matches!(
                    self.state,
                    MemberState::Registering(_) | MemberState::Registered(_)
                ) {
                    self.reincarnate(now, false);
                }
            }
            Message::MemberRemoved(a) if a.member == self.id => {
                if self.state == MemberState::Leaving {
                    self.state = MemberState::Left;
                    self.c.next = None;
                    let _ = self.events.push_back(MemberEvent::Left);
                }
            }
            _ => self.c.stats.unexpected += 1,
        }
    }

    /// Runs retries and the silence check.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(next) = self.c.next else { return };
        if next > now {
            return;
        }
        match self.state {
            MemberState::Activating => {
                self.c.tries += 1;
                if self.c.tries >= self.c.config.tries_per_server {
                    self.c.rotate();
                }
                self.request(now);
            }
            MemberState::Registering(_) => {
                self.c.tries += 1;
                if self.c.tries >= self.c.config.tries_per_server {
                    // The silent MSS may have registered this incarnation
                    // (only its answers were lost): a new MSS gets a new
                    // incarnation, so that one incarnation never has two.
                    self.reincarnate(now, true);
                } else {
                    self.request(now);
                }
            }
            MemberState::Registered(_) => self.reincarnate(now, true),
            MemberState::Leaving => {
                self.c.tries += 1;
                if self.c.tries >= self.c.config.tries_per_server {
                    // Nobody answers: the MSS fails this incarnation anyway.
                    self.state = MemberState::Left;
                    self.c.next = None;
                    let _ = self.events.push_back(MemberEvent::Left);
                } else {
                    self.c
                        .send_server(Kind::MemberLeaves, &About { member: self.id });
                    self.c.next = Some(now + self.c.config.retry);
                }
            }
            MemberState::Idle | MemberState::Left => self.c.next = None,
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.c.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        self.events.pop_front()
    }

    /// When to call [`MemberService::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.c.next
    }
}

crate::driver::forward_machine!([] MemberService);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epidemic::ids::ContextId;
    use crate::epidemic::wire::{self, Registered};
    use core::time::Duration;
    use std::vec::Vec;

    const URI: &str = "urn:t";

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 7100))
    }

    fn mss(i: u8, inc: u64) -> MssId {
        MssId {
            addr: addr(i),
            incarnation: inc,
        }
    }

    fn sent(m: &mut MemberService) -> Vec<(SocketAddr, Kind)> {
        let mut v = Vec::new();
        while let Some(t) = m.poll_transmit() {
            let (p, _) = Message::parse(t.contents).unwrap();
            v.push((t.destination, p.kind));
        }
        v
    }

    fn deliver<H: serde::Serialize>(
        m: &mut MemberService,
        now: Instant,
        from: SocketAddr,
        kind: Kind,
        head: &H,
    ) {
        let mut buf = [0u8; 256];
        let n = wire::encode(&mut buf, kind, ContextId::from_uri(URI), head).unwrap();
        m.handle_datagram(now, from, &buf[..n]);
    }

    /// The first MSS answers the context request (which names incarnation
    /// 0 of this member service) with its id.
    fn context_created(m: &mut MemberService, t: Instant) {
        let who = MemberId {
            addr: m.id().addr,
            incarnation: 0,
        };
        deliver(
            m,
            t,
            addr(1),
            Kind::ContextCreated,
            &Registered {
                who,
                mss: mss(1, 5),
            },
        );
    }

    #[test]
    fn registers_through_context_creation_and_answers_probes() {
        let me = SocketAddr::from(([10, 1, 0, 1], 9000));
        let mut m = MemberService::new(me, 1, URI, &[addr(1), addr(2)]).unwrap();
        let t = Instant::ZERO;
        m.start(t);
        assert_eq!(sent(&mut m), [(addr(1), Kind::CreateCoordinationContext)]);
        context_created(&mut m, t);
        assert_eq!(m.state(), MemberState::Registering(mss(1, 5)));
        assert_eq!(sent(&mut m), [(addr(1), Kind::RequestMemberService)]);
        // The answer is lost, but a probe proves the registration.
        let id = m.id();
        deliver(
            &mut m,
            t,
            addr(1),
            Kind::MemberProbe,
            &Liveness { who: id, seq: 3 },
        );
        assert_eq!(m.registered_with(), Some(mss(1, 5)));
        assert_eq!(sent(&mut m), [(addr(1), Kind::MemberAlive)]);
        // A probe from elsewhere is not its MSS's: ignored.
        let id = m.id();
        deliver(
            &mut m,
            t,
            addr(2),
            Kind::MemberProbe,
            &Liveness { who: id, seq: 4 },
        );
        assert!(sent(&mut m).is_empty());
        assert_eq!(m.stats().unexpected, 1);
    }

    #[test]
    fn a_silent_mss_means_a_new_incarnation_elsewhere() {
        let me = SocketAddr::from(([10, 1, 0, 1], 9000));
        let mut m = MemberService::new(me, 7, URI, &[addr(1), addr(2)]).unwrap();
        let t = Instant::ZERO;
        m.start(t);
        context_created(&mut m, t);
        let id = m.id();
        deliver(
            &mut m,
            t,
            addr(1),
            Kind::MemberRegistered,
            &Registered {
                who: id,
                mss: mss(1, 5),
            },
        );
        assert!(m.registered_with().is_some());
        let _ = sent(&mut m);
        let later = t + Duration::from_secs(7);
        m.handle_timeout(later);
        assert_eq!(m.id().incarnation, 8);
        assert_eq!(m.state(), MemberState::Activating);
        assert_eq!(sent(&mut m), [(addr(2), Kind::CreateCoordinationContext)]);
        assert!(matches!(
            m.poll_event(),
            Some(MemberEvent::Registered { .. })
        ));
        assert!(matches!(
            m.poll_event(),
            Some(MemberEvent::Reincarnated { .. })
        ));
    }

    #[test]
    fn a_refusal_or_an_unanswered_request_takes_a_new_incarnation() {
        let me = SocketAddr::from(([10, 1, 0, 1], 9000));
        let mut m = MemberService::new(me, 1, URI, &[addr(1), addr(2)]).unwrap();
        let mut t = Instant::ZERO;
        m.start(t);
        context_created(&mut m, t);
        let id = m.id();
        deliver(
            &mut m,
            t,
            addr(1),
            Kind::NotRegistered,
            &wire::About { member: id },
        );
        assert_eq!(m.id().incarnation, 2);
        context_created(&mut m, t);
        let _ = sent(&mut m);
        // Three unanswered requests: the MSS may have registered this
        // incarnation, so the next MSS gets a new one.
        for _ in 0..3 {
            t = t + Duration::from_millis(500);
            m.handle_timeout(t);
        }
        assert_eq!(m.id().incarnation, 3);
        assert!(sent(&mut m).contains(&(addr(2), Kind::CreateCoordinationContext)));
    }

    #[test]
    fn leaving_ends_when_recorded() {
        let me = SocketAddr::from(([10, 1, 0, 1], 9000));
        let mut m = MemberService::new(me, 1, URI, &[addr(1)]).unwrap();
        let t = Instant::ZERO;
        m.start(t);
        m.leave(t);
        let _ = sent(&mut m);
        let id = m.id();
        deliver(
            &mut m,
            t,
            addr(1),
            Kind::MemberRemoved,
            &wire::About { member: id },
        );
        assert_eq!(m.state(), MemberState::Left);
        assert_eq!(m.poll_timeout(), None);
    }
}
