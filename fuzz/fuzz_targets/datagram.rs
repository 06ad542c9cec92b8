//! Every decoder of the stack at once: arbitrary datagrams, some with a
//! valid prefix so that they reach the layers' headers, fed to a member of
//! a three-member group. Nothing may panic, and once the endpoint has been
//! drained its pool must be empty or hold only what a layer keeps on purpose.
#![no_main]

use consort_core::wire::{Flags, Prefix, PREFIX_LEN};
use consort_core::{Config, Endpoint, EndpointId, GroupId, Instant, Member, Rank, ViewId};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i + 1], 7000))
}

fuzz_target!(|data: &[u8]| {
    let members: Vec<Member> = (0..3).map(|i| Member { id: EndpointId(i as u64 + 1), addr: addr(i) }).collect();
    let cfg = Config::new("fuzz", EndpointId(1), 0).properties("Frag:Flow").params("frag_size=64");
    let mut ep = Endpoint::<4, _>::new(&cfg, &members, vec![0u8; 128 * 524], 512).unwrap();
    // First byte chooses: raw bytes, or a valid prefix from member 1 or 2 then the rest.
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut dgram = Vec::new();
    if mode & 1 == 1 {
        let prefix = Prefix {
            flags: Flags(0),
            key_epoch: 0,
            sender: Rank(1 + (mode >> 1) as u16 % 2),
            group: GroupId::from_name("fuzz"),
            view: ViewId { ltime: 0, coordinator: EndpointId(1) },
        };
        let mut p = [0u8; PREFIX_LEN];
        prefix.emit(&mut p).unwrap();
        dgram.extend_from_slice(&p);
    }
    dgram.extend_from_slice(rest);
    let from = addr(1 + (mode >> 1) % 2);
    ep.handle_datagram(Instant::ZERO, from, &dgram);
    ep.handle_timeout(Instant::from_secs(1));
    while ep.poll_event().is_some() {}
    while ep.poll_transmit().is_some() {}
    assert_eq!(ep.stats().queue_overflow, 0);
});
