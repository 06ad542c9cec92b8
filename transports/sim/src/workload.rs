//! What the simulated applications do: cast and send at random.
//!
//! During the workload phase each node, at random intervals, decides to
//! cast or to send to a random peer, with a random size from a bare header
//! to the endpoint's `max_message()` (so that Frag cuts many messages into
//! many fragments). A message refused with `WouldBlock` is kept and offered
//! again after the next `Writable` or the node's next action; it is numbered
//! only when accepted, so stream numbers are exactly the acceptance order
//! that FIFO is judged against.
//!
//! With membership, sends go to a member of the current view by endpoint id
//! (`send_to`): one whose destination has left the view by the time it is
//! offered is given up (and recorded so). The application answers `Block`
//! with `block_ok` after a short random delay, and keeps making messages
//! meanwhile, so that casts are accepted both before and after `block_ok`
//! (`SendView::Current` and `Next`); the trace records which.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use consort_core::{Endpoint, Instant, SendError, SendView};

use crate::message::{HEADER_LEN, Kind, MsgId, encode};
use crate::node::{endpoint_id, node_of};
use crate::rng::Rng;
use crate::trace::{Entry, Trace};

/// How the applications behave.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// Length of the phase in which new messages are made.
    pub duration: Duration,
    /// Mean interval between one node's messages.
    pub mean_gap: Duration,
    /// Fraction of messages that are casts (the rest are sends).
    pub cast_share: f64,
    /// Fraction of messages that are large (half to all of `max_message()`);
    /// of the rest, two in nine are a few fragments long and the others fit
    /// in one datagram.
    pub large_share: f64,
    /// Fraction of actions that are a burst of several messages at once,
    /// which is what fills flow-control windows and pools.
    pub burst_share: f64,
    /// Most messages in one burst.
    pub burst_max: u32,
    /// Most messages one node makes (`None`: as many as the phase allows).
    pub max_messages: Option<u32>,
    /// Longest wait between `Block` and the application's `block_ok`.
    pub max_block_delay: Duration,
}

impl Default for WorkloadConfig {
    /// Four seconds of an action every 40 ms on average per node, 60%
    /// casts, one action in twenty a burst of up to 24 messages.
    fn default() -> Self {
        WorkloadConfig {
            duration: Duration::from_secs(4),
            mean_gap: Duration::from_millis(40),
            cast_share: 0.6,
            large_share: 0.1,
            burst_share: 0.05,
            burst_max: 24,
            max_messages: None,
            max_block_delay: Duration::from_millis(15),
        }
    }
}

/// A message the application wants to go, not yet accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Intent {
    kind: Kind,
    dest: Option<usize>,
    len: usize,
}

/// One node's application.
#[derive(Debug)]
pub struct NodeWorkload {
    me: usize,
    rng: Rng,
    config: WorkloadConfig,
    next_action: Option<Instant>,
    /// When to answer the `Block` received, if one waits for `block_ok`.
    block_ok_at: Option<Instant>,
    made: u32,
    pending: VecDeque<Intent>,
    next_cast: u32,
    next_send: BTreeMap<usize, u32>,
    /// Unexpected errors from `cast`/`send` (not `WouldBlock`).
    errors: Vec<String>,
    buf: Vec<u8>,
}

impl NodeWorkload {
    /// The application of process `me`, starting at `start`.
    pub fn new(me: usize, start: Instant, config: WorkloadConfig, mut rng: Rng) -> Self {
        let first = start + Duration::from_micros(rng.below(gap_micros(&config) * 2 + 1));
        let phase_end = Instant::ZERO + config.duration;
        NodeWorkload {
            me,
            rng,
            config,
            next_action: (first < phase_end).then_some(first),
            block_ok_at: None,
            made: 0,
            pending: VecDeque::new(),
            next_cast: 0,
            next_send: BTreeMap::new(),
            errors: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// When this application next wants to act (make messages, or answer
    /// a `Block`).
    pub fn next_time(&self) -> Option<Instant> {
        match (self.next_action, self.block_ok_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The endpoint said `Block`: answer it after a random delay.
    pub fn on_block(&mut self, now: Instant) {
        let max = self.config.max_block_delay.as_micros() as u64;
        self.block_ok_at = Some(now + Duration::from_micros(self.rng.between(0, max)));
    }

    /// A view was installed: a `Block` not answered yet no longer needs to
    /// be (answering it now would block the new view).
    pub fn on_view(&mut self) {
        self.block_ok_at = None;
    }

    /// Whether `block_ok` is due at `now`; if so, it is taken.
    pub fn take_block_ok(&mut self, now: Instant) -> bool {
        if self.block_ok_at.is_some_and(|t| t <= now) {
            self.block_ok_at = None;
            return true;
        }
        false
    }

    /// Whether a `Block` waits for its answer.
    pub fn blocked(&self) -> bool {
        self.block_ok_at.is_some()
    }

    /// Whether the next action (making messages) is due at `now`.
    pub fn action_due(&self, now: Instant) -> bool {
        self.next_action.is_some_and(|t| t <= now)
    }

    /// The application stops for good: after `leave()`, or a crash. What
    /// it had not handed over yet is dropped.
    pub fn stop(&mut self) {
        self.next_action = None;
        self.block_ok_at = None;
        self.pending.clear();
    }

    /// Messages made but not yet accepted.
    pub fn unsent(&self) -> usize {
        self.pending.len()
    }

    /// Errors other than `WouldBlock` that the endpoint returned.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Notes an error the endpoint returned to another downcall.
    pub fn note_error(&mut self, e: String) {
        self.errors.push(e);
    }

    /// Makes a new message (the action due at `now`) and offers every
    /// waiting one to the endpoint; `drain` runs after each accepted one.
    pub fn act<const M: usize, B>(
        &mut self,
        now: Instant,
        ep: &mut Endpoint<M, B>,
        trace: &mut Trace,
        drain: impl FnMut(&mut Endpoint<M, B>, &mut Trace),
    ) where
        B: AsMut<[u8]> + AsRef<[u8]>,
    {
        let phase_end = Instant::ZERO + self.config.duration;
        let count = if self.rng.chance(self.config.burst_share) {
            self.rng.between(2, u64::from(self.config.burst_max.max(2)))
        } else {
            1
        };
        let me = endpoint_id(self.me);
        let others: Vec<usize> = ep
            .view()
            .endpoints()
            .filter(|e| *e != me)
            .filter_map(node_of)
            .collect();
        for _ in 0..count {
            let capped = self.config.max_messages.is_some_and(|m| self.made >= m);
            if now >= phase_end || capped {
                break;
            }
            let intent = self.make(ep.max_message(), &others);
            self.pending.push_back(intent);
            self.made += 1;
        }
        let next = now + Duration::from_micros(self.rng.between(1, gap_micros(&self.config) * 2));
        let more = self.config.max_messages.is_none_or(|m| self.made < m);
        self.next_action = (next < phase_end && more).then_some(next);
        self.offer(now, ep, trace, drain);
    }

    /// A new message: a cast, or a send to one of `others` (the other
    /// members of the view, in rank order).
    fn make(&mut self, max_message: usize, others: &[usize]) -> Intent {
        let kind = if others.is_empty() || self.rng.chance(self.config.cast_share) {
            Kind::Cast
        } else {
            Kind::Send
        };
        let dest =
            (kind == Kind::Send).then(|| others[self.rng.below(others.len() as u64) as usize]);
        let max = max_message.max(HEADER_LEN) as u64;
        let min = HEADER_LEN as u64;
        // Mostly small messages (one fragment), some of a few fragments, and
        // a steady share of large ones up to the limit.
        let len = if self.rng.chance(self.config.large_share) {
            self.rng.between(max / 2, max)
        } else if self.rng.below(9) < 2 {
            self.rng.between(min, 2_000.min(max))
        } else {
            self.rng.between(min, 300.min(max))
        };
        Intent {
            kind,
            dest,
            len: len as usize,
        }
    }

    /// Offers every waiting message to the endpoint, in the order made.
    /// Refused ones stay, to be offered again. `drain` runs after each
    /// accepted message, as a real application's driver would drain the
    /// endpoint after every call.
    pub fn offer<const M: usize, B>(
        &mut self,
        now: Instant,
        ep: &mut Endpoint<M, B>,
        trace: &mut Trace,
        mut drain: impl FnMut(&mut Endpoint<M, B>, &mut Trace),
    ) where
        B: AsMut<[u8]> + AsRef<[u8]>,
    {
        let mut left = VecDeque::new();
        while let Some(mut intent) = self.pending.pop_front() {
            let seq = match intent.dest {
                None => self.next_cast,
                Some(d) => self.next_send.get(&d).copied().unwrap_or(0),
            };
            let id = MsgId {
                origin: self.me,
                kind: intent.kind,
                dest: intent.dest,
                seq,
            };
            encode(&id, intent.len, &mut self.buf);
            let result = match intent.dest {
                None => ep.cast(now, &self.buf),
                Some(d) => ep.send_to(now, endpoint_id(d), &self.buf),
            };
            let len = self.buf.len();
            match result {
                Ok(view) => {
                    let next = view == SendView::Next;
                    let entry = match intent.dest {
                        None => {
                            self.next_cast += 1;
                            Entry::CastAccepted { id, len, next }
                        }
                        Some(d) => {
                            *self.next_send.entry(d).or_insert(0) += 1;
                            Entry::SendAccepted { id, len, next }
                        }
                    };
                    trace.push(now, self.me, entry);
                    drain(ep, trace);
                }
                Err(SendError::NotAMember(_)) => {
                    // The destination left the view since the message was
                    // made: an application gives up such a send.
                    let dest = intent.dest.unwrap_or(usize::MAX);
                    trace.push(now, self.me, Entry::Abandoned { dest, len });
                }
                Err(SendError::TooLarge { max, .. }) if max >= HEADER_LEN && max < len => {
                    // The view grew since the message was made, and with it
                    // the share of the pool each member's window may take:
                    // the application cuts the message to the new limit.
                    intent.len = max;
                    self.pending.push_front(intent);
                }
                Err(SendError::WouldBlock) => {
                    trace.push(
                        now,
                        self.me,
                        Entry::Refused {
                            kind: intent.kind,
                            dest: intent.dest,
                            len,
                        },
                    );
                    left.push_back(intent);
                }
                Err(e) => self.errors.push(format!("{id} ({len} B): {e}")),
            }
        }
        self.pending = left;
    }
}

fn gap_micros(c: &WorkloadConfig) -> u64 {
    (c.mean_gap.as_micros() as u64).max(1)
}
