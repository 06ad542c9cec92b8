//! The membership proxy (MP) side: registers with an MSS
//! (`RegisterMembershipProxy`), registers the services it speaks for
//! (`RequestMemberService` naming itself as proxy), answers `ProxyProbe`s
//! with `ProxyAlive`, and reports `MemberLeaves` and `MemberFailed`.
//!
//! The MSS probes the proxy, not its services: if the proxy fails, every
//! service it speaks for is failed with it. `N` is how many services one
//! proxy speaks for.

use core::net::SocketAddr;

use heapless::{Deque, Vec};

use super::client::{Client, ClientConfig, ClientStats};
use super::ids::{MemberId, MssId};
use super::service::ServiceError;
use super::wire::{About, Kind, Liveness, Message, RegisterProxy, RequestMember};
use crate::event::Transmit;
use crate::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Want {
    /// Registration not confirmed yet.
    Register,
    Registered,
    /// A leave or failure report not confirmed yet.
    Report(bool),
}

/// What a proxy tells its application.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProxyEvent {
    /// The proxy is registered with an MSS.
    Registered {
        /// The MSS.
        mss: MssId,
    },
    /// A service it speaks for is registered.
    ServiceRegistered {
        /// The service.
        member: MemberId,
    },
    /// A service had to take a new incarnation (the MSS failed or forgot the old one).
    ServiceReincarnated {
        /// The old incarnation.
        old: MemberId,
        /// The new one.
        new: MemberId,
    },
    /// A leave or failure report was recorded; the service is forgotten here.
    ServiceRemoved {
        /// The service.
        member: MemberId,
    },
}

/// Why a proxy refused a downcall.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProxyError {
    /// It already speaks for `N` services.
    Full,
    /// It does not speak for this service.
    Unknown(MemberId),
}

/// A membership proxy. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct ProxyService<const N: usize> {
    id: MemberId,
    mss: Option<MssId>,
    c: Client,
    /// Each service, what is wanted for it, and the MSS instance its
    /// registration was last asked of.
    services: Vec<(MemberId, Want, Option<MssId>), N>,
    events: Deque<ProxyEvent, 16>,
}

impl<const N: usize> ProxyService<N> {
    /// A proxy at `addr`, in its `incarnation`th life, for context `uri`,
    /// trying the MSS in `servers` in order.
    pub fn new(
        addr: SocketAddr,
        incarnation: u64,
        uri: &str,
        servers: &[SocketAddr],
    ) -> Result<Self, ServiceError> {
        Ok(ProxyService {
            id: MemberId { addr, incarnation },
            mss: None,
            c: Client::new(uri, servers)?,
            services: Vec::new(),
            events: Deque::new(),
        })
    }

    /// Changes the timing.
    pub fn set_config(&mut self, config: ClientConfig) {
        self.c.config = config;
    }

    /// The proxy's incarnation.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// The MSS it is registered with.
    pub fn registered_with(&self) -> Option<MssId> {
        self.mss
    }

    /// The services it speaks for, and whether each is registered.
    pub fn services(&self) -> impl Iterator<Item = (MemberId, bool)> + '_ {
        self.services
            .iter()
            .map(|(m, w, _)| (*m, *w == Want::Registered))
    }

    /// Counters.
    pub fn stats(&self) -> &ClientStats {
        &self.c.stats
    }

    /// Starts registering the proxy.
    pub fn start(&mut self, now: Instant) {
        self.mss = None;
        self.c.tries = 0;
        self.register(now);
    }

    fn register(&mut self, now: Instant) {
        let uri = self.c.uri.clone();
        self.c.stats.registrations += 1;
        self.c.send_server(
            Kind::RegisterMembershipProxy,
            &RegisterProxy {
                uri: &uri,
                proxy: self.id,
            },
        );
        self.c.next = Some(now + self.c.config.retry);
    }

    /// Speaks for one more service from now on.
    pub fn add_service(&mut self, now: Instant, member: MemberId) -> Result<(), ProxyError> {
        if !self.services.iter().any(|(m, _, _)| *m == member) {
            self.services
                .push((member, Want::Register, None))
                .map_err(|_| ProxyError::Full)?;
        }
        self.flush(now);
        Ok(())
    }

    /// Reports that a service it speaks for failed (`MemberFailed`).
    pub fn report_failed(&mut self, now: Instant, member: MemberId) -> Result<(), ProxyError> {
        self.report(now, member, true)
    }

    /// Reports that a service it speaks for left (`MemberLeaves`).
    pub fn report_left(&mut self, now: Instant, member: MemberId) -> Result<(), ProxyError> {
        self.report(now, member, false)
    }

    fn report(&mut self, now: Instant, member: MemberId, failed: bool) -> Result<(), ProxyError> {
        let s = self
            .services
            .iter_mut()
            .find(|(m, _, _)| *m == member)
            .ok_or(ProxyError::Unknown(member))?;
        s.1 = Want::Report(failed);
        self.flush(now);
        Ok(())
    }

    /// Sends every unconfirmed registration and report.
    fn flush(&mut self, now: Instant) {
        let Some(mss) = self.mss else {
            return;
        };
        let uri = self.c.uri.clone();
        let proxy = self.id;
        for k in 0..self.services.len() {
            let (member, want, asked) = self.services[k];
            match want {
                Want::Register => {
                    let mut member = member;
                    if asked.is_some_and(|a| a != mss) {
                        // An earlier MSS instance may have registered this
                        // incarnation, now failed with it: take a new one.
                        let old = member;
                        member.incarnation += 1;
                        self.services[k].0 = member;
                        let _ = self
                            .events
                            .push_back(ProxyEvent::ServiceReincarnated { old, new: member });
                    }
                    self.services[k].2 = Some(mss);
                    let r = RequestMember {
                        uri: &uri,
                        member,
                        probe_port: 0,
                        proxy: Some(proxy),
                        mss: Some(mss),
                    };
                    self.c.send_server(Kind::RequestMemberService, &r);
                }
                Want::Report(true) => self.c.send_server(Kind::MemberFailed, &About { member }),
                Want::Report(false) => self.c.send_server(Kind::MemberLeaves, &About { member }),
                Want::Registered => {}
            }
        }
        self.c.next = Some(now + self.c.config.retry);
    }

    fn pending(&self) -> bool {
        self.services.iter().any(|(_, w, _)| *w != Want::Registered)
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
            Message::ProxyRegistered(r) if r.who == self.id => {
                if self.mss.is_none() {
                    self.mss = Some(r.mss);
                    self.c.last_heard = now;
                    let _ = self.events.push_back(ProxyEvent::Registered { mss: r.mss });
                    self.flush(now);
                    if !self.pending() {
                        self.c.next = Some(now + self.c.config.orphan_after);
                    }
                }
            }
            Message::ProxyProbe(l) if l.who == self.id => {
                self.c.last_heard = now;
                self.c.send(
                    from,
                    Kind::ProxyAlive,
                    &Liveness {
                        who: self.id,
                        seq: l.seq,
                    },
                );
                if !self.pending() && self.mss.is_some() {
                    self.c.next = Some(now + self.c.config.orphan_after);
                }
            }
            Message::MemberRegistered(r) => {
                if let Some(s) = self.services.iter_mut().find(|(m, _, _)| *m == r.who) {
                    if s.1 == Want::Register && s.2 == Some(r.mss) {
                        s.1 = Want::Registered;
                        let _ = self
                            .events
                            .push_back(ProxyEvent::ServiceRegistered { member: r.who });
                    }
                }
            }
            Message::MemberRemoved(a) => {
                if let Some(i) = self.services.iter().position(|(m, _, _)| *m == a.member) {
                    if matches!(self.services[i].1, Want::Report(_)) {
                        self.services.swap_remove(i);
                        let _ = self
                            .events
                            .push_back(ProxyEvent::ServiceRemoved { member: a.member });
                    }
                }
            }
            Message::NotRegistered(a) if a.member == self.id => self.reincarnate(now, false),
            Message::NotRegistered(a) => {
                if let Some(s) = self.services.iter_mut().find(|(m, _, _)| *m == a.member) {
                    if matches!(s.1, Want::Report(_)) {
                        // Already final at the MSS: nothing left to report.
                        let member = s.0;
                        self.services.retain(|(m, _, _)| *m != member);
                        let _ = self.events.push_back(ProxyEvent::ServiceRemoved { member });
                    } else {
                        let old = s.0;
                        s.0.incarnation += 1;
                        s.1 = Want::Register;
                        s.2 = None;
                        let new = s.0;
                        let _ = self
                            .events
                            .push_back(ProxyEvent::ServiceReincarnated { old, new });
                        // The MSS may be a new instance (it reincarnated):
                        // register again to learn it, then send the rest.
                        // Not flushing here keeps one refusal from
                        // multiplying into a request per service.
                        if self.mss.is_some() {
                            self.mss = None;
                            self.c.tries = 0;
                            self.register(now);
                        }
                    }
                }
            }
            _ => self.c.stats.unexpected += 1,
        }
    }

    /// The proxy's MSS failed it (or forgot it): new incarnations for the
    /// proxy and every service, which failed with the old proxy.
    fn reincarnate(&mut self, now: Instant, rotate: bool) {
        self.id.incarnation += 1;
        self.c.stats.reincarnations += 1;
        let mut moved: Vec<(MemberId, MemberId), N> = Vec::new();
        for s in self.services.iter_mut() {
            if matches!(s.1, Want::Report(_)) {
                continue;
            }
            let old = s.0;
            s.0.incarnation += 1;
            s.1 = Want::Register;
            s.2 = None;
            let _ = moved.push((old, s.0));
        }
        self.services.retain(|(_, w, _)| *w == Want::Register);
        for (old, new) in moved {
            let _ = self
                .events
                .push_back(ProxyEvent::ServiceReincarnated { old, new });
        }
        if rotate {
            self.c.rotate();
        }
        self.start(now);
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
                // As for a member service: a new MSS, a new incarnation.
                self.reincarnate(now, true);
            } else {
                self.register(now);
            }
        } else if now - self.c.last_heard >= self.c.config.orphan_after {
            self.reincarnate(now, true);
        } else if self.pending() {
            self.flush(now);
        } else {
            self.c.next = Some(self.c.last_heard + self.c.config.orphan_after);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.c.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        self.events.pop_front()
    }

    /// When to call [`ProxyService::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.c.next
    }
}

crate::driver::forward_machine!([const N: usize] ProxyService<N>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epidemic::ids::ContextId;
    use crate::epidemic::wire::{self, Registered};
    use std::vec::Vec;

    const URI: &str = "urn:t";

    fn server() -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], 7100))
    }

    fn deliver<H: serde::Serialize>(p: &mut ProxyService<4>, kind: Kind, head: &H) {
        let mut buf = [0u8; 256];
        let n = wire::encode(&mut buf, kind, ContextId::from_uri(URI), head).unwrap();
        p.handle_datagram(Instant::ZERO, server(), &buf[..n]);
    }

    fn requests(p: &mut ProxyService<4>) -> Vec<RequestMemberLite> {
        let mut v = Vec::new();
        while let Some(t) = p.poll_transmit() {
            if let Ok((_, Message::RequestMemberService(r))) = Message::parse(t.contents) {
                v.push(RequestMemberLite {
                    member: r.member,
                    mss: r.mss,
                });
            }
        }
        v
    }

    #[derive(Debug, PartialEq)]
    struct RequestMemberLite {
        member: MemberId,
        mss: Option<MssId>,
    }

    #[test]
    fn services_move_to_a_new_incarnation_when_the_mss_is_a_new_one() {
        let me = SocketAddr::from(([10, 3, 0, 1], 9100));
        let mut p = ProxyService::<4>::new(me, 1, URI, &[server()]).unwrap();
        let s = MemberId {
            addr: SocketAddr::from(([10, 5, 0, 1], 1)),
            incarnation: 1,
        };
        p.start(Instant::ZERO);
        p.add_service(Instant::ZERO, s).unwrap();
        let old = MssId {
            addr: server(),
            incarnation: 10,
        };
        let pid = p.id();
        deliver(
            &mut p,
            Kind::ProxyRegistered,
            &Registered { who: pid, mss: old },
        );
        assert_eq!(
            requests(&mut p),
            [RequestMemberLite {
                member: s,
                mss: Some(old)
            }]
        );
        // The MSS reincarnated: it refuses the service, the proxy registers
        // again, learns the new instance, and asks with a new incarnation.
        deliver(&mut p, Kind::NotRegistered, &wire::About { member: s });
        let _ = requests(&mut p);
        let new = MssId {
            addr: server(),
            incarnation: 11,
        };
        let pid = p.id();
        deliver(
            &mut p,
            Kind::ProxyRegistered,
            &Registered { who: pid, mss: new },
        );
        let got = requests(&mut p);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].member.incarnation, 2);
        assert_eq!(got[0].mss, Some(new));
        assert!(matches!(
            p.report_left(Instant::ZERO, s),
            Err(ProxyError::Unknown(_))
        ));
    }
}
