//! The prefix decoder: any bytes either parse into a prefix that emits the
//! same bytes back, or give an error. Never a panic.
#![no_main]

use consort_core::wire::{Prefix, PrefixPacket, PREFIX_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = PrefixPacket::new_checked(data) {
        let repr = Prefix::parse(&p);
        let mut out = [0u8; PREFIX_LEN];
        repr.emit(&mut out).unwrap();
        assert_eq!(&out[..], &data[..PREFIX_LEN]);
    }
});
