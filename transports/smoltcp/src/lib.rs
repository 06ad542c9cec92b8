//! # consort-smoltcp
//!
//! The core's [`Transport`] over a [smoltcp] UDP socket, for boards that run
//! their own IP stack: the same group stacks, byte for byte on the wire, as
//! the tokio and async-std members they talk to. `no_std`, no heap; CI builds
//! it for `thumbv7em-none-eabihf`.
//!
//! [`SmolUdp`] owns the smoltcp [`Interface`], its [`Device`] and a
//! [`SocketSet`] holding one UDP socket bound to the group's port. Each
//! `send_to` queues a datagram on the socket and polls the interface so the
//! frame leaves at once; each `recv_from` polls the interface and takes the
//! next datagram, or waits for the device ([`Readiness`]) or for smoltcp's
//! own timers (ARP retries), whichever comes first. The core's async driver
//! runs on top unchanged, on whatever executor the board has.
//!
//! The one thing a board must supply besides the device is a [`Readiness`]:
//! a future that completes when a frame may have arrived (an Ethernet
//! interrupt, a readable file descriptor). [`Interval`] polls at a fixed
//! period for boards without one.
//!
//! ```
//! use consort_core::driver::Clock;
//! use consort_smoltcp::{Interval, SmolUdp, UdpStorage};
//! use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage as Slot};
//! use smoltcp::phy::Device;
//! use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
//!
//! /// On a board: the Ethernet driver's `Device`, a clock, and storage
//! /// that lives forever (`static_cell` or similar).
//! fn transport<'a, D: Device, C: Clock + Copy>(
//!     mut device: D,
//!     clock: C,
//!     slots: &'a mut [Slot<'a>; 2],
//!     storage: &'a mut UdpStorage<8, 8192>,
//! ) -> SmolUdp<'a, D, C, Interval<C>> {
//!     let mac = EthernetAddress([0x02, 0, 0, 0, 0, 7]);
//!     let now = smoltcp::time::Instant::from_micros(clock.now().as_micros() as i64);
//!     let mut iface = Interface::new(Config::new(mac.into()), &mut device, now);
//!     iface.update_ip_addrs(|a| {
//!         let _ = a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 7), 24));
//!     });
//!     let mut socket = storage.socket();
//!     socket.bind(4000).expect("port 4000 is not 0");
//!     let mut sockets = SocketSet::new(&mut slots[..]);
//!     let udp = sockets.add(socket);
//!     // No interrupt wired up here: look at the device every millisecond.
//!     let ready = Interval::new(clock, core::time::Duration::from_millis(1));
//!     SmolUdp::new(iface, device, sockets, udp, clock, ready).expect("a bound UDP socket")
//! }
//! ```
//!
//! Then `consort_core::driver::drive(&mut endpoint, &mut transport, &clock,
//! &mut app, &mut buf)` runs an [`Endpoint`](consort_core::Endpoint) over it.
//!
//! On Linux the `linux-tap` feature adds [`tap`](crate::tap) (std, tokio): a
//! member over a TAP device, used by the example `tap` and by the
//! cross-runtime test to put a smoltcp member in one group with ordinary
//! sockets.
#![no_std]
// Only the Linux TAP device (feature `linux-tap`) needs one `ioctl`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "linux-tap")]
extern crate std;

#[cfg(feature = "linux-tap")]
pub mod tap;

use core::future::Future;
use core::net::{IpAddr, SocketAddr, SocketAddrV4};
use core::time::Duration;

use consort_core::Instant;
use consort_core::driver::{Clock, Transport};
use embassy_futures::select::select;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::{AnySocket, udp};
use smoltcp::wire::{IpAddress, IpEndpoint};

/// Completes when the device may have a frame to read.
///
/// A spurious completion costs one interface poll; a missed one costs
/// latency until the next smoltcp timer or the next datagram sent, never a
/// datagram (frames wait in the device). Cancel-safe: the driver drops the
/// future whenever another input wins.
pub trait Readiness {
    /// Waits for the device.
    fn frame_ready(&mut self) -> impl Future<Output = ()>;
}

/// [`Readiness`] by polling: completes every `period`, for devices without
/// an interrupt to wait on.
#[derive(Debug, Clone, Copy)]
pub struct Interval<C> {
    clock: C,
    period: Duration,
}

impl<C: Clock> Interval<C> {
    /// Polls the device every `period` on `clock`.
    pub fn new(clock: C, period: Duration) -> Self {
        Interval { clock, period }
    }
}

impl<C: Clock> Readiness for Interval<C> {
    fn frame_ready(&mut self) -> impl Future<Output = ()> {
        self.clock.sleep_until(self.clock.now() + self.period)
    }
}

/// Why a datagram was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The destination is not an IPv4 address (this transport speaks IPv4
    /// only) or has port 0.
    Unaddressable,
    /// The socket's transmit buffer stayed full after the interface was
    /// polled: the device is not taking frames. The protocol retransmits.
    BufferFull,
    /// The datagram is larger than the socket's transmit buffer.
    TooLarge,
    /// The application removed the UDP socket from the set.
    SocketGone,
}

/// Why [`SmolUdp::new`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SetupError {
    /// The handle names no UDP socket in the set.
    NotUdp,
    /// The UDP socket is not bound to a port: a member needs a port others
    /// can be told.
    NotBound,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::Unaddressable => "destination is not an IPv4 address with a port",
            Error::BufferFull => "the UDP transmit buffer is full",
            Error::TooLarge => "the datagram is larger than the UDP transmit buffer",
            Error::SocketGone => "the UDP socket was removed from the socket set",
        })
    }
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SetupError::NotUdp => "the socket handle names no UDP socket in the set",
            SetupError::NotBound => "the UDP socket is not bound to a port",
        })
    }
}

impl core::error::Error for Error {}
impl core::error::Error for SetupError {}

/// What the transport counted and dropped. Read with [`SmolUdp::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Datagrams handed to the socket.
    pub sent: u64,
    /// Datagrams taken from the socket and given to the core.
    pub received: u64,
    /// Datagrams dropped because they were larger than the receive buffer.
    pub truncated: u64,
    /// Datagrams not sent: transmit buffer full, too large, or unaddressable.
    pub send_failed: u64,
}

/// Packet buffers for one UDP socket: `P` datagrams and `BYTES` bytes of
/// payload in each direction, as plain arrays (a `static` on a board).
///
/// Size `BYTES` for a burst of the profile's datagrams: the small profile's
/// 512-byte slots times the flow window fit in 8 KiB.
///
/// ```
/// let mut storage = consort_smoltcp::UdpStorage::<8, 8192>::new();
/// let socket = storage.socket();
/// assert_eq!(socket.payload_recv_capacity(), 8192);
/// ```
pub struct UdpStorage<const P: usize, const BYTES: usize> {
    rx_meta: [udp::PacketMetadata; P],
    rx_payload: [u8; BYTES],
    tx_meta: [udp::PacketMetadata; P],
    tx_payload: [u8; BYTES],
}

impl<const P: usize, const BYTES: usize> Default for UdpStorage<P, BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const P: usize, const BYTES: usize> UdpStorage<P, BYTES> {
    /// Empty buffers; `const`, so they can be a `static`.
    pub const fn new() -> Self {
        UdpStorage {
            rx_meta: [udp::PacketMetadata::EMPTY; P],
            rx_payload: [0; BYTES],
            tx_meta: [udp::PacketMetadata::EMPTY; P],
            tx_payload: [0; BYTES],
        }
    }

    /// A UDP socket over this storage (bind it, then add it to the set).
    pub fn socket(&mut self) -> udp::Socket<'_> {
        udp::Socket::new(
            udp::PacketBuffer::new(&mut self.rx_meta[..], &mut self.rx_payload[..]),
            udp::PacketBuffer::new(&mut self.tx_meta[..], &mut self.tx_payload[..]),
        )
    }
}

/// consort's [`Transport`] over one smoltcp UDP socket.
pub struct SmolUdp<'a, D, C, R> {
    iface: Interface,
    device: D,
    sockets: SocketSet<'a>,
    handle: SocketHandle,
    port: u16,
    clock: C,
    ready: R,
    stats: Stats,
}

impl<'a, D: Device, C: Clock, R: Readiness> SmolUdp<'a, D, C, R> {
    /// Takes the interface, its device and the socket set holding the UDP
    /// socket `handle`, already bound to the group port. The set may hold
    /// an application's other sockets too; reach them with
    /// [`SmolUdp::sockets`].
    pub fn new(
        iface: Interface,
        device: D,
        mut sockets: SocketSet<'a>,
        handle: SocketHandle,
        clock: C,
        ready: R,
    ) -> Result<Self, SetupError> {
        let port = udp_socket(&mut sockets, handle)
            .ok_or(SetupError::NotUdp)?
            .endpoint()
            .port;
        if port == 0 {
            return Err(SetupError::NotBound);
        }
        Ok(SmolUdp {
            iface,
            device,
            sockets,
            handle,
            port,
            clock,
            ready,
            stats: Stats::default(),
        })
    }

    /// The address other members reach this one at: the interface's first
    /// IPv4 address and the bound port. `None` until the interface has one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.iface
            .ip_addrs()
            .iter()
            .find_map(|cidr| match cidr.address() {
                #[allow(unreachable_patterns)]
                IpAddress::Ipv4(ip) => Some(SocketAddr::V4(SocketAddrV4::new(ip, self.port))),
                #[allow(unreachable_patterns)]
                _ => None,
            })
    }

    /// What was sent, received and dropped.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The interface (to add routes or addresses).
    pub fn interface(&mut self) -> &mut Interface {
        &mut self.iface
    }

    /// The socket set, for an application's other sockets.
    pub fn sockets(&mut self) -> &mut SocketSet<'a> {
        &mut self.sockets
    }

    /// Runs the interface once: frames in, frames out.
    fn poll(&mut self) -> smoltcp::time::Instant {
        let now = smol_instant(self.clock.now());
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        now
    }
}

impl<D: Device, C: Clock, R: Readiness> Transport for SmolUdp<'_, D, C, R> {
    type Error = Error;

    async fn send_to(&mut self, to: SocketAddr, bytes: &[u8]) -> Result<(), Error> {
        let result = self.try_send(to, bytes);
        match result {
            Ok(()) => self.stats.sent += 1,
            Err(_) => self.stats.send_failed += 1,
        }
        result
    }

    async fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
        loop {
            let now = self.poll();
            let Some(socket) = udp_socket(&mut self.sockets, self.handle) else {
                return Err(Error::SocketGone);
            };
            match socket.recv_slice(buf) {
                Ok((n, meta)) => {
                    if let Some(from) = socket_addr(meta.endpoint) {
                        self.stats.received += 1;
                        return Ok((n, from));
                    }
                }
                // smoltcp has already dropped it; the protocol will NAK.
                Err(udp::RecvError::Truncated) => self.stats.truncated += 1,
                Err(udp::RecvError::Exhausted) => {
                    let delay = self.iface.poll_delay(now, &self.sockets);
                    let ready = self.ready.frame_ready();
                    match delay {
                        Some(d) => {
                            let at = self.clock.now() + Duration::from_micros(d.total_micros());
                            select(ready, self.clock.sleep_until(at)).await;
                        }
                        None => ready.await,
                    }
                }
            }
        }
    }
}

impl<D: Device, C: Clock, R: Readiness> SmolUdp<'_, D, C, R> {
    fn try_send(&mut self, to: SocketAddr, bytes: &[u8]) -> Result<(), Error> {
        let to = ip_endpoint(to).ok_or(Error::Unaddressable)?;
        for first in [true, false] {
            let socket = udp_socket(&mut self.sockets, self.handle).ok_or(Error::SocketGone)?;
            if bytes.len() > socket.payload_send_capacity() {
                return Err(Error::TooLarge);
            }
            match socket.send_slice(bytes, to) {
                Ok(()) => {
                    self.poll();
                    return Ok(());
                }
                Err(udp::SendError::Unaddressable) => return Err(Error::Unaddressable),
                // A poll moves queued datagrams to the device and frees room.
                Err(udp::SendError::BufferFull) if first => {
                    self.poll();
                }
                Err(udp::SendError::BufferFull) => return Err(Error::BufferFull),
            }
        }
        Err(Error::BufferFull)
    }
}

/// The UDP socket `handle`, found without `SocketSet::get_mut`, which
/// panics when an application has removed or replaced it.
fn udp_socket<'s, 'a>(
    sockets: &'s mut SocketSet<'a>,
    handle: SocketHandle,
) -> Option<&'s mut udp::Socket<'a>> {
    sockets
        .iter_mut()
        .find(|(h, _)| *h == handle)
        .and_then(|(_, s)| udp::Socket::downcast_mut(s))
}

/// The core's time scale on smoltcp's clock type.
fn smol_instant(t: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(t.as_micros() as i64)
}

fn ip_endpoint(addr: SocketAddr) -> Option<IpEndpoint> {
    match addr {
        SocketAddr::V4(v4) if v4.port() != 0 => {
            Some(IpEndpoint::new(IpAddress::Ipv4(*v4.ip()), v4.port()))
        }
        _ => None,
    }
}

fn socket_addr(ep: IpEndpoint) -> Option<SocketAddr> {
    match ep.addr {
        #[allow(unreachable_patterns)]
        IpAddress::Ipv4(ip) => Some(SocketAddr::new(IpAddr::V4(ip), ep.port)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}
