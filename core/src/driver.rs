//! The async driver: runs a sans-IO machine on any runtime.
//!
//! A runtime adapter provides two small traits, [`Clock`] and
//! [`Transport`], and an [`Application`] that reacts to events and issues
//! downcalls; [`drive`] does the rest. It is the only async code on the
//! protocol path, built on `embassy-futures`' `select` so that it runs the
//! same on tokio, async-std and an embassy board, and it decides nothing
//! about the protocol: it waits for a datagram, a deadline or the
//! application, hands the input to the machine, and drains the outputs.
//!
//! The loop:
//! 1. the application drains events and makes downcalls ([`Application::step`]);
//! 2. every datagram the machine has is sent;
//! 3. wait for whichever comes first: a datagram, the machine's deadline,
//!    or the application waking up ([`Application::wake`]); feed it in.
//!
//! A failed send is treated like a lost datagram (logged, then left to the
//! protocol's retransmission); a failed receive ends the driver, because a
//! broken socket does not heal.

use core::future::Future;
use core::net::SocketAddr;
use core::ops::ControlFlow;

use embassy_futures::select::{Either3, select3};

use crate::Endpoint;
use crate::event::Transmit;
use crate::fmt::Dbg;
use crate::time::Instant;

/// A source of time and of timers, on the [`Instant`] scale the endpoint uses.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;

    /// Completes at or after `deadline`.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()>;
}

/// A datagram socket.
///
/// Addresses are `core::net::SocketAddr` everywhere, so members on tokio,
/// async-std and smoltcp can share a view.
pub trait Transport {
    /// What a failed send or receive reports.
    type Error: core::fmt::Debug;

    /// Sends one datagram.
    fn send_to(
        &mut self,
        to: SocketAddr,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// Receives one datagram into `buf`, returning its length and source.
    ///
    /// Must be cancel-safe: the driver drops this future when another input
    /// wins the race, and a datagram must not be lost by that.
    fn recv_from(
        &mut self,
        buf: &mut [u8],
    ) -> impl Future<Output = Result<(usize, SocketAddr), Self::Error>>;
}

/// A sans-IO state machine the driver can run: an [`Endpoint`], and later
/// the epidemic membership service.
pub trait Machine {
    /// Feeds a received datagram.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]);
    /// Runs due timers.
    fn handle_timeout(&mut self, now: Instant);
    /// The next datagram to send.
    fn poll_transmit(&mut self) -> Option<Transmit<'_>>;
    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// Implements [`Machine`] for a type by its inherent methods of the same
/// names, which every sans-IO machine of the crate has: `[generics] Type`,
/// then an optional `where` clause.
macro_rules! forward_machine {
    ([$($generics:tt)*] $ty:ty $(where $($bounds:tt)*)?) => {
        impl<$($generics)*> $crate::driver::Machine for $ty $(where $($bounds)*)? {
            fn handle_datagram(
                &mut self,
                now: $crate::time::Instant,
                from: core::net::SocketAddr,
                data: &[u8],
            ) {
                <$ty>::handle_datagram(self, now, from, data);
            }
            fn handle_timeout(&mut self, now: $crate::time::Instant) {
                <$ty>::handle_timeout(self, now);
            }
            fn poll_transmit(&mut self) -> Option<$crate::event::Transmit<'_>> {
                <$ty>::poll_transmit(self)
            }
            fn poll_timeout(&self) -> Option<$crate::time::Instant> {
                <$ty>::poll_timeout(self)
            }
        }
    };
}
pub(crate) use forward_machine;

forward_machine!([const M: usize, B: AsMut<[u8]> + AsRef<[u8]>] Endpoint<M, B>);

/// The application side of the driver.
pub trait Application<S> {
    /// What the driver returns when the application stops it.
    type Output;

    /// Drains the machine's events and makes downcalls. Called after every
    /// input and every wake-up. `Break` stops the driver (after the pending
    /// datagrams are sent) and makes it return the value.
    fn step(&mut self, machine: &mut S, now: Instant) -> ControlFlow<Self::Output>;

    /// Completes when the application has new work for [`Application::step`]
    /// (a request from another task, say). An application that acts only on
    /// events can return `core::future::pending()`.
    fn wake(&mut self) -> impl Future<Output = ()>;
}

/// Why [`drive`] stopped without the application asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveError<E> {
    /// Receiving failed: the socket is unusable.
    Receive(E),
    /// The receive buffer is smaller than the machine's largest datagram.
    BufferTooSmall,
}

/// Runs `machine` over `transport` until the application stops it.
///
/// `buf` receives datagrams; it must hold the largest datagram the machine
/// accepts (the profile's slot size).
pub async fn drive<S, T, C, A>(
    machine: &mut S,
    transport: &mut T,
    clock: &C,
    app: &mut A,
    buf: &mut [u8],
) -> Result<A::Output, DriveError<T::Error>>
where
    S: Machine,
    T: Transport,
    C: Clock,
    A: Application<S>,
{
    if buf.is_empty() {
        return Err(DriveError::BufferTooSmall);
    }
    loop {
        let stop = app.step(machine, clock.now());
        flush(machine, transport).await;
        if let ControlFlow::Break(out) = stop {
            return Ok(out);
        }
        let deadline = machine.poll_timeout();
        let timer = async {
            match deadline {
                Some(d) => clock.sleep_until(d).await,
                None => core::future::pending().await,
            }
        };
        match select3(transport.recv_from(buf), timer, app.wake()).await {
            Either3::First(Ok((n, from))) => {
                machine.handle_datagram(clock.now(), from, &buf[..n.min(buf.len())]);
            }
            Either3::First(Err(e)) => return Err(DriveError::Receive(e)),
            Either3::Second(()) => machine.handle_timeout(clock.now()),
            Either3::Third(()) => {}
        }
    }
}

/// Sends every datagram the machine has ready.
async fn flush<S: Machine, T: Transport>(machine: &mut S, transport: &mut T) {
    while let Some(t) = machine.poll_transmit() {
        if let Err(e) = transport.send_to(t.destination, t.contents).await {
            // A datagram that cannot be sent is a lost datagram: the
            // reliability layers repair it.
            warn!("send to {:?} failed: {:?}", Dbg(t.destination), Dbg(&e));
        }
    }
}

#[cfg(test)]
mod tests {
    //! Two endpoints driven by `drive` over an in-memory transport and the
    //! host clock, joined on one thread.

    use super::*;
    use crate::{Config, EndpointId, Event, Member, Rank};
    use core::cell::RefCell;
    use core::task::Poll;
    use std::collections::{HashMap, VecDeque};
    use std::rc::Rc;
    use std::vec::Vec;

    type Wire = Rc<RefCell<HashMap<SocketAddr, VecDeque<(SocketAddr, Vec<u8>)>>>>;

    struct MemTransport {
        me: SocketAddr,
        wire: Wire,
    }

    impl Transport for MemTransport {
        type Error = ();
        async fn send_to(&mut self, to: SocketAddr, bytes: &[u8]) -> Result<(), ()> {
            self.wire
                .borrow_mut()
                .entry(to)
                .or_default()
                .push_back((self.me, bytes.to_vec()));
            Ok(())
        }
        async fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddr), ()> {
            // embassy's block_on polls again without a wake-up, so Pending
            // without registering a waker is enough here.
            core::future::poll_fn(|_| {
                match self
                    .wire
                    .borrow_mut()
                    .entry(self.me)
                    .or_default()
                    .pop_front()
                {
                    Some((from, bytes)) => {
                        buf[..bytes.len()].copy_from_slice(&bytes);
                        Poll::Ready(Ok((bytes.len(), from)))
                    }
                    None => Poll::Pending,
                }
            })
            .await
        }
    }

    struct HostClock(std::time::Instant);

    impl Clock for HostClock {
        fn now(&self) -> Instant {
            Instant::from_micros(self.0.elapsed().as_micros() as u64)
        }
        fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
            core::future::poll_fn(move |_| {
                if self.now() >= deadline {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        }
    }

    /// Casts `outgoing`, then stops once it has received `expect` casts.
    struct Chat {
        outgoing: VecDeque<Vec<u8>>,
        received: Vec<Vec<u8>>,
        expect: usize,
    }

    impl<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>> Application<Endpoint<M, B>> for Chat {
        type Output = Vec<Vec<u8>>;
        fn step(&mut self, ep: &mut Endpoint<M, B>, now: Instant) -> ControlFlow<Vec<Vec<u8>>> {
            while let Some(ev) = ep.poll_event() {
                if let Event::Cast { payload, .. } = ev {
                    self.received
                        .push(payload.chunks().flatten().copied().collect());
                }
            }
            while let Some(m) = self.outgoing.front() {
                if ep.cast(now, m).is_err() {
                    break;
                }
                self.outgoing.pop_front();
            }
            if self.outgoing.is_empty() && self.received.len() >= self.expect {
                ControlFlow::Break(core::mem::take(&mut self.received))
            } else {
                ControlFlow::Continue(())
            }
        }
        fn wake(&mut self) -> impl Future<Output = ()> {
            core::future::pending()
        }
    }

    #[test]
    fn two_endpoints_exchange_casts_through_the_driver() {
        let addrs: Vec<SocketAddr> = ["10.0.0.1:1", "10.0.0.2:1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let members: Vec<Member> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Member {
                id: EndpointId(i as u64 + 1),
                addr: *a,
            })
            .collect();
        let wire = Wire::default();
        let clock = HostClock(std::time::Instant::now());
        let mk = |i: usize| {
            let cfg = Config::new("driver", EndpointId(i as u64 + 1), i as u64);
            Endpoint::<4, _>::new(&cfg, &members, std::vec![0u8; 256 * 1036], 1024).unwrap()
        };
        let (mut a, mut b) = (mk(0), mk(1));
        let (mut ta, mut tb) = (
            MemTransport {
                me: addrs[0],
                wire: wire.clone(),
            },
            MemTransport { me: addrs[1], wire },
        );
        // Each casts 16 messages (the larger ones fragmented) and expects its
        // own 16 (Local) and the other's 16.
        let msgs = |tag: u8| -> VecDeque<Vec<u8>> {
            (0..16u8)
                .map(|i| std::vec![tag | i; 1 + i as usize * 150])
                .collect()
        };
        let mut chat_a = Chat {
            outgoing: msgs(0xa0),
            received: Vec::new(),
            expect: 32,
        };
        let mut chat_b = Chat {
            outgoing: msgs(0xb0),
            received: Vec::new(),
            expect: 32,
        };
        let (mut buf_a, mut buf_b) = ([0u8; 1024], [0u8; 1024]);
        let (ra, rb) = embassy_futures::block_on(embassy_futures::join::join(
            drive(&mut a, &mut ta, &clock, &mut chat_a, &mut buf_a),
            drive(&mut b, &mut tb, &clock, &mut chat_b, &mut buf_b),
        ));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        // Summaries (first byte, length) keep a failure readable.
        let summary = |v: Vec<&Vec<u8>>| v.iter().map(|m| (m[0], m.len())).collect::<Vec<_>>();
        for got in [&ra, &rb] {
            for tag in [0xa0, 0xb0] {
                let sent = summary(msgs(tag).iter().collect());
                let seen = summary(got.iter().filter(|m| m[0] & 0xf0 == tag).collect());
                assert_eq!(seen, sent, "every cast, in order");
                assert!(
                    got.iter().all(|m| m.iter().all(|b| *b == m[0])),
                    "contents intact"
                );
            }
        }
        assert!(a.stats().cast_deliveries >= 32 && b.view().my_rank() == Rank(1));
    }
}
