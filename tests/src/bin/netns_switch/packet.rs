//! `AF_PACKET` sockets, one bound to each port: every unsafe call of the
//! switch is here, each behind a safe function.
//!
//! The sockets use `PACKET_VNET_HDR`. A veth hands its peer the frames its
//! member's kernel sent with the UDP (or TCP) checksum left for the
//! "hardware" to fill in (checksum offload); the bridge passes that on
//! untouched, but bytes that leave through a packet socket would carry the
//! unfinished checksum and the receiving kernel would discard them. The
//! virtio-net header that comes with each frame says where that checksum
//! is, so the switch finishes it, as the hardware would have.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `struct virtio_net_hdr`, in front of every frame read or written.
const VNET_HEADER: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum is left for us to finish.
const NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
const GSO_NONE: u8 = 0;
/// Room for any frame a veth carries (64 KiB with offloads), so a frame
/// that does not fit is a malformed one, not a short read.
pub(crate) const BUFFER: usize = 65_536 + VNET_HEADER;

/// What one read from a port gave.
#[derive(Debug)]
pub(crate) enum Received {
    /// Nothing more to read now.
    Nothing,
    /// A frame the switch itself sent out of this port: not the member's.
    Outgoing,
    /// A whole Ethernet frame from the member, checksum finished.
    Frame(Vec<u8>),
    /// Something that cannot be forwarded as a frame, and why.
    Malformed(&'static str),
}

/// A packet socket bound to one interface, non-blocking.
#[derive(Debug)]
pub(crate) struct PacketSocket {
    fd: OwnedFd,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live `T` and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(rc).map(drop)
}

impl PacketSocket {
    /// Opens a socket for every frame on interface `name`, in promiscuous
    /// mode (a veth delivers everything anyway; a real NIC would not).
    pub(crate) fn open(name: &str) -> io::Result<PacketSocket> {
        let c_name =
            CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain system call; the descriptor is owned right after.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(protocol),
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_option(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            &1 as &libc::c_int,
        )?;
        // Bursts (a view change floods every link at once) must not
        // overflow the socket: the only loss should be the one we make.
        // FORCE passes `rmem_max`, as root; plain RCVBUF is the fallback.
        let size: libc::c_int = 4 << 20;
        if set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
            set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size)?;
        }
        // SAFETY: all-zero is a valid `sockaddr_ll`.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as libc::c_ushort;
        address.sll_protocol = protocol;
        address.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: `address` is a live `sockaddr_ll` and its size is passed.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        // SAFETY: all-zero is a valid `packet_mreq`.
        let mut promiscuous: libc::packet_mreq = unsafe { std::mem::zeroed() };
        promiscuous.mr_ifindex = ifindex as libc::c_int;
        promiscuous.mr_type = libc::PACKET_MR_PROMISC as libc::c_ushort;
        set_option(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &promiscuous,
        )?;
        Ok(PacketSocket { fd })
    }

    /// Reads one frame into `buffer` (at least [`BUFFER`] long).
    pub(crate) fn receive(&self, buffer: &mut [u8]) -> io::Result<Received> {
        // SAFETY: all-zero is a valid `sockaddr_ll`.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // MSG_TRUNC: the length returned is the frame's, even if longer
        // than the buffer, so a truncated frame is seen as one.
        // SAFETY: the buffer and the address are live and their sizes passed.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                libc::MSG_TRUNC,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut from_len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(Received::Nothing),
                io::ErrorKind::Interrupted => Ok(Received::Nothing),
                _ => Err(e),
            };
        }
        if from.sll_pkttype == libc::PACKET_OUTGOING {
            return Ok(Received::Outgoing);
        }
        let n = n as usize;
        if n > buffer.len() {
            return Ok(Received::Malformed("longer than the buffer"));
        }
        Ok(match unwrap_vnet(&mut buffer[..n]) {
            Ok(frame) => Received::Frame(frame.to_vec()),
            Err(why) => Received::Malformed(why),
        })
    }

    /// Sends one Ethernet frame out of the port.
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        // No offloads asked for: the frame is finished as it is.
        let header = [0u8; VNET_HEADER];
        let mut parts = [
            libc::iovec {
                iov_base: header.as_ptr() as *mut libc::c_void,
                iov_len: header.len(),
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: all-zero is a valid `msghdr`; no address, as the socket
        // is bound to its interface.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = parts.as_mut_ptr();
        message.msg_iovlen = parts.len() as _;
        // SAFETY: the message points at live buffers that the kernel only reads.
        let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &message, 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Frames the kernel dropped because this socket's buffer was full,
    /// since the last call.
    pub(crate) fn kernel_drops(&self) -> io::Result<u64> {
        // SAFETY: all-zero is a valid `tpacket_stats`.
        let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` is live and its size is passed.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        })?;
        Ok(u64::from(stats.tp_drops))
    }
}

/// Waits until one of `sockets` has something to read (or an error to
/// report), or `timeout` passes: which ones are ready.
pub(crate) fn wait(sockets: &[PacketSocket], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|s| libc::pollfd {
            fd: s.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // ppoll, not poll: poll's milliseconds would round a 20 ms delay.
    // SAFETY: `fds` and `timeout` are live; no signal mask is passed.
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &timeout,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(fds.iter().map(|f| f.revents != 0).collect())
}

/// The frame behind the virtio-net header, its checksum finished if it
/// was left unfinished; or why it cannot be forwarded.
fn unwrap_vnet(bytes: &mut [u8]) -> Result<&[u8], &'static str> {
    if bytes.len() < VNET_HEADER {
        return Err("shorter than its virtio-net header");
    }
    let (header, frame) = bytes.split_at_mut(VNET_HEADER);
    if header[1] != GSO_NONE {
        // The veth would have had to split it; a switch cannot.
        return Err("a segmentation offload super-frame");
    }
    if header[0] & NEEDS_CSUM != 0 {
        let start = usize::from(u16::from_ne_bytes([header[6], header[7]]));
        let offset = usize::from(u16::from_ne_bytes([header[8], header[9]]));
        finish_checksum(frame, start, offset)?;
    }
    Ok(frame)
}

/// Finishes an offloaded Internet checksum: the field at `start + offset`
/// holds the pseudo-header's sum; the checksum covers it and everything
/// from `start` on (RFC 1071), as `skb_checksum_help` does.
fn finish_checksum(frame: &mut [u8], start: usize, offset: usize) -> Result<(), &'static str> {
    let field = start + offset;
    if start > frame.len() || field + 2 > frame.len() {
        return Err("checksum offsets beyond the frame");
    }
    let mut sum: u32 = 0;
    for pair in frame[start..].chunks(2) {
        let word = match pair {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            [hi] => u16::from_be_bytes([*hi, 0]),
            _ => 0,
        };
        sum += u32::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let checksum = !(sum as u16);
    // An all-zero UDP checksum means "none"; the kernel sends 0xffff.
    let checksum = if checksum == 0 { 0xffff } else { checksum };
    frame[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP datagram 10.0.0.1:1000 -> 10.0.0.2:2000 carrying "hi", in
    /// Ethernet, as a veth hands it over: the checksum field holds only the
    /// pseudo-header's sum (0x0a00+0x0001+0x0a00+0x0002+0x0011+0x000a
    /// = 0x141e).
    fn offloaded() -> Vec<u8> {
        let mut f = vec![
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet
            0x45, 0, 0, 30, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4
            0x03, 0xe8, 0x07, 0xd0, 0, 10, 0x14, 0x1e, // UDP, partial sum
            b'h', b'i',
        ];
        let mut header = vec![NEEDS_CSUM, GSO_NONE, 0, 0, 0, 0];
        header.extend_from_slice(&34u16.to_ne_bytes());
        header.extend_from_slice(&6u16.to_ne_bytes());
        header.append(&mut f);
        header
    }

    #[test]
    fn an_offloaded_udp_checksum_is_finished() {
        let mut bytes = offloaded();
        let frame = unwrap_vnet(&mut bytes).unwrap();
        // 0x141e + 0x03e8 + 0x07d0 + 0x000a + 0x6869 = 0x8849; its
        // complement is 0x77b6, the UDP checksum of the whole datagram
        // computed the long way (pseudo-header included) too.
        assert_eq!(&frame[40..42], &[0x77, 0xb6]);
        assert_eq!(frame.len(), 44);
    }

    #[test]
    fn bad_headers_are_refused_not_trusted() {
        let mut short = vec![0; 4];
        assert!(unwrap_vnet(&mut short).is_err());
        let mut gso = offloaded();
        gso[1] = 1;
        assert!(unwrap_vnet(&mut gso).is_err());
        let mut beyond = offloaded();
        beyond[6..8].copy_from_slice(&60u16.to_ne_bytes());
        assert!(unwrap_vnet(&mut beyond).is_err());
        let mut plain = offloaded();
        plain[0] = 0;
        assert_eq!(unwrap_vnet(&mut plain).unwrap()[40..42], [0x14, 0x1e]);
    }
}
