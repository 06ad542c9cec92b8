//! A smoltcp member on Linux, over a TAP device (feature `linux-tap`).
//!
//! The member's IP stack is smoltcp, not the kernel's: frames go through a
//! TAP device, so the kernel sees an Ethernet neighbour on the TAP link and
//! ordinary UDP sockets on the host talk to it as to any other host. This
//! is how the example `tap` and the cross-runtime test put a smoltcp member
//! in one group with tokio and async-std members. It needs root (or
//! `CAP_NET_ADMIN`) to create the device.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use consort_smoltcp::tap::{TapOptions, spawn};
//! use consort_tokio::JoinOptions;
//! // The host side of the link gets 10.77.0.1/24; the member is 10.77.0.2.
//! let tap = TapOptions::new("cstap0", "10.77.0.2/24").host("10.77.0.1/24");
//! let running = spawn(JoinOptions::new("chat").bind("10.77.0.2:4000").seeds(["10.77.0.1:5000"]), tap).await?;
//! running.member.cast(b"hello from smoltcp".to_vec()).await?;
//! # Ok(()) }
//! ```

use std::format;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::string::{String, ToString};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::vec;
use std::vec::Vec;

use consort_tokio::{JoinError, JoinOptions, Running, TokioClock};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::udp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};
use tokio::io::unix::AsyncFd;

use crate::{Readiness, SmolUdp};

/// The largest Ethernet frame the device carries: a 1500-byte IP MTU and
/// the 14-byte Ethernet header.
const FRAME: usize = 1514;
/// Datagrams each direction of the UDP socket can hold.
const SOCKET_PACKETS: usize = 256;
/// Payload bytes each direction of the UDP socket can hold.
const SOCKET_BYTES: usize = 256 * 1024;

/// Where the TAP member sits.
#[derive(Debug, Clone)]
pub struct TapOptions {
    device: String,
    address: String,
    host: Option<String>,
}

impl TapOptions {
    /// The TAP device `device` (created if absent, gone when the member
    /// stops), with smoltcp's interface at `address` (`"10.77.0.2/24"`).
    pub fn new(device: impl Into<String>, address: impl Into<String>) -> Self {
        TapOptions {
            device: device.into(),
            address: address.into(),
            host: None,
        }
    }

    /// Also gives the host's side of the link an address (`"10.77.0.1/24"`)
    /// and brings it up, with `ip`; without this the caller configures it.
    pub fn host(mut self, address: impl Into<String>) -> Self {
        self.host = Some(address.into());
        self
    }
}

/// Why a TAP member did not start.
#[derive(Debug)]
pub enum TapError {
    /// The address is not `a.b.c.d/len`.
    Address(String),
    /// Opening or configuring the TAP device failed (not root? no
    /// `/dev/net/tun`?).
    Device(io::Error),
    /// The bind address in the join options is not an IPv4 address with a
    /// port, or is not the TAP interface's address.
    Bind(String),
    /// Joining failed.
    Join(JoinError),
}

impl std::fmt::Display for TapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TapError::Address(a) => write!(f, "bad interface address {a:?}: expected a.b.c.d/len"),
            TapError::Device(e) => write!(
                f,
                "TAP device: {e} (creating one needs root or CAP_NET_ADMIN)"
            ),
            TapError::Bind(e) => write!(f, "bind address: {e}"),
            TapError::Join(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TapError {}

impl From<JoinError> for TapError {
    fn from(e: JoinError) -> Self {
        TapError::Join(e)
    }
}

/// Starts a member whose IP stack is smoltcp over the TAP device: its
/// address is the join options' bind address (which must be on the TAP
/// interface and carry a port), and it finds the group through the
/// options' seeds like any member. Returns once the first view is in.
pub async fn spawn(options: JoinOptions, tap: TapOptions) -> Result<Running, TapError> {
    let cidr: Ipv4Cidr = tap
        .address
        .parse()
        .map_err(|_| TapError::Address(tap.address.clone()))?;
    let (bind, _advertise, seeds) = options.resolve()?;
    let SocketAddr::V4(bind) = bind else {
        return Err(TapError::Bind(format!("{bind} is not IPv4")));
    };
    if *bind.ip() != cidr.address() || bind.port() == 0 {
        return Err(TapError::Bind(format!(
            "{bind} must be the interface address {} with a port",
            cidr.address()
        )));
    }
    let device = TapDevice::open(&tap.device).map_err(TapError::Device)?;
    if let Some(host) = &tap.host {
        configure_host(&tap.device, host).map_err(TapError::Device)?;
    }
    let ready = TapReady(device.fd.clone());
    let mut device = device;

    let clock = TokioClock::new();
    let mut mac = [0u8; 6];
    let mut seed = [0u8; 8];
    getrandom::fill(&mut mac)
        .and_then(|()| getrandom::fill(&mut seed))
        .map_err(|e| TapError::Device(io::Error::other(e.to_string())))?;
    // A locally administered unicast address.
    mac[0] = (mac[0] & 0xfe) | 0x02;
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    config.random_seed = u64::from_le_bytes(seed);
    let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::ZERO);
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::Ipv4(cidr));
    });

    let mut socket = udp::Socket::new(
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; SOCKET_PACKETS],
            vec![0u8; SOCKET_BYTES],
        ),
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; SOCKET_PACKETS],
            vec![0u8; SOCKET_BYTES],
        ),
    );
    socket
        .bind(bind.port())
        .map_err(|e| TapError::Bind(e.to_string()))?;
    let mut sockets = SocketSet::new(Vec::new());
    let handle = sockets.add(socket);
    let transport = SmolUdp::new(iface, device, sockets, handle, clock, ready)
        .map_err(|e| TapError::Bind(e.to_string()))?;

    let consort_tokio::Prepared {
        member,
        events,
        task,
        joined,
    } = consort_tokio::prepare(&options, transport, clock, SocketAddr::V4(bind), &seeds)?;
    let task = match task {
        consort_tokio::Task::Small(t) => tokio::spawn(t),
        consort_tokio::Task::Server(t) => tokio::spawn(t),
    };
    joined.wait().await?;
    Ok(Running {
        member,
        events,
        task,
    })
}

/// Gives the host's side of TAP device `device` the address `cidr` and
/// brings it up, with iproute2's `ip`.
pub fn configure_host(device: &str, cidr: &str) -> io::Result<()> {
    for args in [
        vec!["addr", "replace", cidr, "dev", device],
        vec!["link", "set", device, "up"],
    ] {
        let out = std::process::Command::new("ip").args(&args).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// A TAP device as a smoltcp [`Device`]. Unlike smoltcp's own
/// `TunTapInterface`, an error from the file descriptor is counted and the
/// frame dropped instead of a panic: a link taken down under the member is
/// a fault to survive, not a bug.
pub struct TapDevice {
    fd: Arc<AsyncFd<File>>,
    errors: Arc<AtomicU64>,
}

impl TapDevice {
    /// Opens (creating if needed) the TAP device `name`, non-blocking.
    /// Must be called inside a tokio runtime (an error otherwise).
    pub fn open(name: &str) -> io::Result<TapDevice> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")?;
        attach(&file, name)?;
        // `register` panics outside a runtime: say so as an error instead.
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        // SAFETY: a `File` owns its descriptor, keeps it open until it is
        // dropped (which only the `AsyncFd` can do now) and always returns
        // the same one from `as_raw_fd`.
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register_with_interest(file, tokio::io::Interest::READABLE) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(TapDevice {
            fd: Arc::new(fd),
            errors: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Read and write errors so far (each one a dropped frame).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// `struct ifreq` as `TUNSETIFF` reads it: the name, then the flags, padded
/// to the size of the kernel's union.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// Binds the open `/dev/net/tun` file to a TAP device called `name`.
#[allow(unsafe_code)]
fn attach(file: &File, name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "device name {name:?} must be 1 to {} bytes",
                libc::IFNAMSIZ - 1
            ),
        ));
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: `req` is a properly initialised `struct ifreq` prefix padded
    // to the kernel's size, it outlives the call, and the descriptor is open.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Device for TapDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken;

    fn receive(
        &mut self,
        _timestamp: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let mut frame = vec![0u8; FRAME];
        loop {
            match self.fd.get_ref().read(&mut frame) {
                Ok(n) => {
                    frame.truncate(n);
                    return Some((RxToken(frame), self.tx()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
    }

    fn transmit(&mut self, _timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(self.tx())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME;
        caps
    }
}

impl TapDevice {
    fn tx(&self) -> TxToken {
        TxToken {
            fd: self.fd.clone(),
            errors: self.errors.clone(),
        }
    }
}

#[doc(hidden)]
pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

#[doc(hidden)]
pub struct TxToken {
    fd: Arc<AsyncFd<File>>,
    errors: Arc<AtomicU64>,
}

impl phy::TxToken for TxToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        // A full device queue or a link that is down loses the frame, as a
        // wire would; the protocol above retransmits.
        if self.fd.get_ref().write(&frame).is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

/// [`Readiness`] of the TAP descriptor, from tokio's reactor.
pub struct TapReady(Arc<AsyncFd<File>>);

impl Readiness for TapReady {
    async fn frame_ready(&mut self) {
        match self.0.readable().await {
            // Cleared before the interface reads: a frame arriving after the
            // reads stop raises readiness again, so none is missed.
            Ok(mut guard) => guard.clear_ready(),
            // The reactor is gone (runtime shutting down): nothing will come.
            Err(_) => std::future::pending().await,
        }
    }
}
