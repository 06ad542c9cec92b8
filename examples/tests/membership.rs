//! Two `membership` processes, driven through their stdin: the second
//! gossips with the first, each monitor sees both member services join,
//! and a `leave` typed at one is seen Left at the other. Settings that
//! cannot work end the process with an error, not a panic.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::Process;

/// A `membership` process; at most half a minute between lines.
fn node(args: &[&str]) -> Process {
    Process::start(
        env!("CARGO_BIN_EXE_membership"),
        args,
        Duration::from_secs(30),
    )
}

/// The address after `prefix` in `line`, up to the next space.
fn word_after<'a>(line: &'a str, prefix: &str) -> &'a str {
    let rest = &line[line.find(prefix).unwrap() + prefix.len()..];
    rest.split_whitespace().next().unwrap()
}

#[test]
fn two_nodes_see_each_others_services_join_and_leave() {
    let mut a = node(&["--bind", "127.0.0.1:0"]);
    let mss_a = word_after(&a.expect(&["MSS at"]), "MSS at ").to_string();
    let svc_a = word_after(&a.expect(&["member service"]), "member service ").to_string();
    let mut b = node(&["--bind", "127.0.0.1:0", "--peers", &mss_a]);
    let svc_b = word_after(&b.expect(&["member service"]), "member service ").to_string();
    // Each monitor ends up with both services as Members.
    for n in [&a, &b] {
        n.expect(&["Members [", &svc_a, &svc_b]);
    }
    b.say("leave");
    a.expect(&["left:", &svc_b]);
    for n in [&mut a, &mut b] {
        n.say("quit");
        n.expect(&["bye"]);
        assert!(n.child.wait().unwrap().success());
    }
}

#[test]
fn settings_that_cannot_work_are_errors() {
    for args in [
        &["--context", ""][..],
        &["--bind", "0.0.0.0:0"],
        &["--bind", "127.0.0.1:0", "--peers", "not an address"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_membership"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(err.starts_with("membership: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
