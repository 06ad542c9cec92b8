//! netns_ping: ICMP echo round trips to one address, for the multi-host
//! test (`tests/tests/multi_host.rs`), which runs it in a member's
//! namespace to see the links' delay from outside whatever makes it.
//! It is `ping` without iputils, which the test machines need not have.
//!
//! ```text
//! netns_ping --to 10.77.0.2 --count 10 --timeout-ms 500
//! ```
//!
//! Prints one line a probe, `reply <seq> <microseconds>`, `lost <seq>` (no
//! reply within the timeout) or `unsent <seq> <why>` (the kernel refused
//! it: an nftables drop rule does that), then `done`. Other errors end it,
//! on standard error. It needs root (a raw socket); the other kernel
//! answers, no process there.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const USAGE: &str = "usage: netns_ping --to IPV4 [--count N] [--timeout-ms MS]";
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

/// The Internet checksum (RFC 1071) of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = match pair {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            [hi] => u16::from_be_bytes([*hi, 0]),
            _ => 0,
        };
        sum += u32::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![ECHO_REQUEST, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"consort!");
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// Whether `packet` (IPv4 header, then ICMP, as a raw socket reads it) is
/// the reply to probe `seq` of `id`.
fn is_reply(packet: &[u8], id: u16, seq: u16) -> bool {
    let Some(&first) = packet.first() else {
        return false;
    };
    let icmp = packet.get(usize::from(first & 0x0f) * 4..).unwrap_or(&[]);
    icmp.len() >= 8
        && icmp[0] == ECHO_REPLY
        && icmp[4..6] == id.to_be_bytes()
        && icmp[6..8] == seq.to_be_bytes()
}

fn run(to: Ipv4Addr, count: u16, timeout: Duration) -> std::io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
    let address = SockAddr::from(SocketAddrV4::new(to, 0));
    // Other pings in other namespaces cannot be seen here, but a fixed
    // id would still confuse two runs in one namespace.
    let id = std::process::id() as u16;
    let mut out = std::io::stdout().lock();
    let mut buffer = [0u8; 1500];
    for seq in 0..count {
        let sent = Instant::now();
        if let Err(e) = socket.send_to(&echo_request(id, seq), &address) {
            writeln!(out, "unsent {seq} {e}")?;
            continue;
        }
        let replied = loop {
            let left = timeout.saturating_sub(sent.elapsed());
            if left.is_zero() {
                break None;
            }
            socket.set_read_timeout(Some(left))?;
            match (&socket).read(&mut buffer) {
                Ok(n) if is_reply(&buffer[..n], id, seq) => break Some(sent.elapsed()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        };
        match replied {
            Some(rtt) => writeln!(out, "reply {seq} {}", rtt.as_micros())?,
            None => writeln!(out, "lost {seq}")?,
        }
    }
    writeln!(out, "done")
}

fn main() -> ExitCode {
    let mut to = None;
    let mut count = 10;
    let mut timeout = Duration::from_millis(500);
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let value = words.next().unwrap_or_default();
        let ok = match flag.as_str() {
            "--to" => value.parse().map(|a| to = Some(a)).is_ok(),
            "--count" => value.parse().map(|n| count = n).is_ok(),
            "--timeout-ms" => value
                .parse()
                .map(|ms| timeout = Duration::from_millis(ms))
                .is_ok(),
            _ => false,
        };
        if !ok {
            eprintln!("netns_ping: bad argument {flag} {value:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let Some(to) = to else {
        eprintln!("netns_ping: --to is required\n{USAGE}");
        return ExitCode::from(2);
    };
    match run(to, count, timeout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netns_ping: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_sums_to_zero_and_its_reply_is_recognised() {
        let request = echo_request(0x1234, 7);
        assert_eq!(checksum(&request), 0);
        let mut reply = vec![0x45; 20];
        reply.extend_from_slice(&request);
        reply[20] = ECHO_REPLY;
        assert!(is_reply(&reply, 0x1234, 7));
        assert!(!is_reply(&reply, 0x1234, 8));
        assert!(!is_reply(&reply[..25], 0x1234, 7));
        assert!(!is_reply(&[], 0, 0));
    }
}
