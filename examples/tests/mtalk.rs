//! Two mtalk processes, driven through their stdin: they find each other,
//! a line typed at one is printed by the other, and `/leave` ends both.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::Process;

/// An mtalk process; at most ten seconds between lines.
fn mtalk(args: &[&str]) -> Process {
    Process::start(env!("CARGO_BIN_EXE_mtalk"), args, Duration::from_secs(10))
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn two_mtalks_chat() {
    let port = free_port().to_string();
    let mut a = mtalk(&["--group", "test-chat", "--port", &port]);
    a.expect(&["mtalk: I am"]);
    let seed = format!("127.0.0.1:{port}");
    let mut b = mtalk(&["--group", "test-chat", "--seeds", &seed]);
    b.expect(&["mtalk: I am"]);
    // Both come to a view of two.
    let view = |line: String| {
        line.split('[')
            .nth(1)
            .map_or(0, |m| m.split_whitespace().count())
    };
    while view(a.expect(&["view "])) != 2 {}
    while view(b.expect(&["view "])) != 2 {}
    b.say("hello from b");
    assert!(a.expect(&["hello from b"]).ends_with(": hello from b"));
    // The sender delivers its own line too.
    b.expect(&["hello from b"]);
    a.say("/leave");
    a.expect(&["mtalk: left"]);
    // b sees a view without a.
    while view(b.expect(&["view "])) != 1 {}
    b.say("/leave");
    b.expect(&["mtalk: left"]);
    assert!(a.child.wait().unwrap().success());
    assert!(b.child.wait().unwrap().success());
}

#[test]
fn bad_flags_are_errors_with_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_mtalk"))
        .args(["--properties", "Gmp:Nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown property \"Nope\""));
    let out = Command::new(env!("CARGO_BIN_EXE_mtalk"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_mtalk"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--seeds"));
}
