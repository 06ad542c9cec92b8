//! A process driven through its stdin, whose printed lines a test waits
//! for: the harness every example's test uses.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running example and the lines it prints.
pub(crate) struct Process {
    /// The process, to wait for its exit.
    pub(crate) child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// How long [`Process::expect`] waits between two lines.
    patience: Duration,
}

impl Process {
    /// Starts `program` (a `CARGO_BIN_EXE_*` path) with `args`; `expect`
    /// gives up after `patience` without a printed line.
    pub(crate) fn start(program: &str, args: &[&str], patience: Duration) -> Process {
        let mut child = Command::new(program)
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
        Process {
            child,
            stdin,
            lines,
            patience,
        }
    }

    /// Waits for a printed line containing every one of `texts`.
    pub(crate) fn expect(&self, texts: &[&str]) -> String {
        loop {
            match self.lines.recv_timeout(self.patience) {
                Ok(line) if texts.iter().all(|t| line.contains(t)) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {texts:?}: {e}"),
            }
        }
    }

    /// Types `line` at the process.
    pub(crate) fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}
