//! Two `membership` processes, driven through their stdin: the second
//! gossips with the first, each monitor sees both member services join,
//! and a `leave` typed at one is seen Left at the other. Settings that
//! cannot work end the process with an error, not a panic.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `membership` process and the lines it prints.
struct Node {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Node {
    fn start(args: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_membership"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Node {
            child,
            stdin,
            lines,
        }
    }

    /// Waits (at most half a minute between lines) for a printed line
    /// containing every one of `texts`.
    fn expect(&self, texts: &[&str]) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if texts.iter().all(|t| line.contains(t)) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {texts:?}: {e}"),
            }
        }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

/// The address after `prefix` in `line`, up to the next space.
fn word_after<'a>(line: &'a str, prefix: &str) -> &'a str {
    let rest = &line[line.find(prefix).unwrap() + prefix.len()..];
    rest.split_whitespace().next().unwrap()
}

#[test]
fn two_nodes_see_each_others_services_join_and_leave() {
    let mut a = Node::start(&["--bind", "127.0.0.1:0"]);
    let mss_a = word_after(&a.expect(&["MSS at"]), "MSS at ").to_string();
    let svc_a = word_after(&a.expect(&["member service"]), "member service ").to_string();
    let mut b = Node::start(&["--bind", "127.0.0.1:0", "--peers", &mss_a]);
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
