//! The switch without its sockets: frames go in with `receive`, come out
//! with `poll_transmit`, and `poll_timeout` says when the next one is due.
//! Time is an argument, so the unit tests below run in virtual time.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// An Ethernet header: destination, source, type.
const ETHERNET_HEADER: usize = 14;

/// How every link behaves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    /// The share of frames each link loses, in parts per million.
    pub(crate) loss_ppm: u32,
    /// How long each link holds a frame before the switch forwards it.
    pub(crate) delay: Duration,
    /// Frames a link may hold at once; past that it drops, as a full
    /// netem queue would (its `limit`, 1000 by default).
    pub(crate) queue_frames: usize,
    /// Seeds the loss of every link (each link draws from its own stream).
    pub(crate) seed: u64,
}

/// What happened at one port, counted since the switch started. "In" is
/// what the member sent into its link; "sent" is what the switch sent out
/// of the port, to the member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Frames the member sent.
    pub(crate) frames_in: u64,
    /// Of those, lost on purpose: the link's loss.
    pub(crate) lost: u64,
    /// Of those, dropped because the link's queue was full.
    pub(crate) overflow: u64,
    /// Of those, dropped because they were not frames the switch can forward
    /// (too short, truncated, a segmentation offload it cannot split).
    pub(crate) malformed: u64,
    /// Of those, through the delay and forwarded (flooded ones once).
    pub(crate) forwarded: u64,
    /// Frames sent to the member, from any other port.
    pub(crate) sent: u64,
    /// Frames for the member that its port refused (down, gone, too big).
    pub(crate) send_errors: u64,
    /// Total time the forwarded frames spent queued, for the mean.
    pub(crate) queued_total: Duration,
    /// The longest any forwarded frame spent queued.
    pub(crate) queued_max: Duration,
}

impl Counts {
    /// The mean time a forwarded frame spent in the link.
    pub(crate) fn queued_mean(&self) -> Duration {
        match u32::try_from(self.forwarded) {
            Ok(n) if n > 0 => self.queued_total / n,
            _ => Duration::ZERO,
        }
    }
}

/// A frame leaving the switch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Transmit {
    /// The ports to send it out of; never the one it came in on.
    pub(crate) to: Vec<usize>,
    /// The whole Ethernet frame.
    pub(crate) frame: Vec<u8>,
}

/// splitmix64: enough randomness for loss, and no dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A frame in a link: when it arrived and when it is due out.
#[derive(Debug)]
struct Queued {
    arrived: Instant,
    due: Instant,
    frame: Vec<u8>,
}

#[derive(Debug)]
struct Port {
    /// Due times only grow (one delay for all, and `now` only grows), so
    /// the queue is in order and frames leave a link in the order they
    /// entered it, as on a wire.
    queue: VecDeque<Queued>,
    rng: Rng,
    counts: Counts,
}

/// A learning switch whose every port is the far end of a lossy, slow link.
#[derive(Debug)]
pub(crate) struct Switch {
    config: Config,
    ports: Vec<Port>,
    /// Which port each source address was last seen on.
    learned: HashMap<[u8; 6], usize>,
}

impl Switch {
    pub(crate) fn new(ports: usize, config: Config) -> Switch {
        let ports = (0..ports)
            .map(|i| {
                // Distinct streams per link: loss is each link's own.
                let mut rng = Rng(config.seed ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
                rng.next();
                Port {
                    queue: VecDeque::new(),
                    rng,
                    counts: Counts::default(),
                }
            })
            .collect();
        Switch {
            config,
            ports,
            learned: HashMap::new(),
        }
    }

    pub(crate) fn counts(&self, port: usize) -> Counts {
        self.ports[port].counts
    }

    /// A frame that arrived from the member at `port` but cannot be
    /// forwarded: counted, then forgotten.
    pub(crate) fn receive_malformed(&mut self, port: usize) {
        let c = &mut self.ports[port].counts;
        c.frames_in += 1;
        c.malformed += 1;
    }

    /// A frame the member at `port` sent: lost, or queued for the delay.
    pub(crate) fn receive(&mut self, now: Instant, port: usize, frame: Vec<u8>) {
        let p = &mut self.ports[port];
        p.counts.frames_in += 1;
        if frame.len() < ETHERNET_HEADER {
            p.counts.malformed += 1;
        } else if p.rng.next() % 1_000_000 < u64::from(self.config.loss_ppm) {
            p.counts.lost += 1;
        } else if p.queue.len() >= self.config.queue_frames {
            p.counts.overflow += 1;
        } else {
            p.queue.push_back(Queued {
                arrived: now,
                due: now + self.config.delay,
                frame,
            });
        }
    }

    /// When the next frame is due out, if any is queued.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.ports
            .iter()
            .filter_map(|p| p.queue.front().map(|q| q.due))
            .min()
    }

    /// The next frame due out by `now`, the earliest first, with where it
    /// goes; `None` once nothing more is due.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let (from, _) = self
            .ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.queue.front().map(|q| (i, q.due)))
            .filter(|(_, due)| *due <= now)
            .min_by_key(|(_, due)| *due)?;
        let q = self.ports[from].queue.pop_front()?;
        let queued = now.saturating_duration_since(q.arrived);
        let c = &mut self.ports[from].counts;
        c.forwarded += 1;
        c.queued_total += queued;
        c.queued_max = c.queued_max.max(queued);
        // The frame reaches the switch only now, at the end of its link:
        // that is when the switch learns where its sender is.
        let mut source = [0; 6];
        source.copy_from_slice(&q.frame[6..12]);
        if source[0] & 1 == 0 {
            self.learned.insert(source, from);
        }
        let mut destination = [0; 6];
        destination.copy_from_slice(&q.frame[..6]);
        let to = match self.learned.get(&destination) {
            // Broadcast and multicast have the group bit set, and are
            // never learned: they flood, as unknown destinations do.
            Some(&port) if destination[0] & 1 == 0 => {
                if port == from {
                    Vec::new()
                } else {
                    vec![port]
                }
            }
            _ => (0..self.ports.len()).filter(|&p| p != from).collect(),
        };
        Some(Transmit { to, frame: q.frame })
    }

    /// The port took a frame for its member.
    pub(crate) fn sent(&mut self, port: usize) {
        self.ports[port].counts.sent += 1;
    }

    /// The port refused a frame for its member.
    pub(crate) fn send_failed(&mut self, port: usize) {
        self.ports[port].counts.send_errors += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const BROADCAST: [u8; 6] = [0xff; 6];

    fn frame(to: [u8; 6], from: [u8; 6], n: u8) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&to);
        f.extend_from_slice(&from);
        f.extend_from_slice(&[0x08, 0x00, n]);
        f
    }

    fn config(loss_ppm: u32) -> Config {
        Config {
            loss_ppm,
            delay: Duration::from_millis(20),
            queue_frames: 4,
            seed: 7,
        }
    }

    #[test]
    fn frames_wait_the_delay_then_flood_until_learned() {
        let t0 = Instant::now();
        let mut s = Switch::new(3, config(0));
        s.receive(t0, 0, frame(BROADCAST, A, 1));
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(20)));
        assert_eq!(s.poll_transmit(t0 + Duration::from_millis(19)), None);
        let t1 = t0 + Duration::from_millis(20);
        let out = s.poll_transmit(t1).unwrap();
        assert_eq!(out.to, vec![1, 2]);
        // A is learned on port 0; B is not known yet.
        s.receive(t1, 1, frame(A, B, 2));
        s.receive(t1, 1, frame(B, B, 3));
        let t2 = t1 + Duration::from_millis(20);
        assert_eq!(s.poll_transmit(t2).unwrap().to, vec![0]);
        // To itself: nowhere.
        assert_eq!(s.poll_transmit(t2).unwrap().to, Vec::<usize>::new());
        s.receive(t2, 0, frame(B, A, 4));
        assert_eq!(
            s.poll_transmit(t2 + Duration::from_millis(20)).unwrap().to,
            vec![1]
        );
        assert_eq!(s.counts(0).forwarded, 2);
        assert_eq!(s.counts(0).queued_mean(), Duration::from_millis(20));
    }

    #[test]
    fn a_link_keeps_its_order_and_bounds_its_queue() {
        let t0 = Instant::now();
        let mut s = Switch::new(2, config(0));
        for n in 0..6 {
            s.receive(t0 + Duration::from_millis(u64::from(n)), 0, frame(B, A, n));
        }
        assert_eq!(s.counts(0).overflow, 2);
        let late = t0 + Duration::from_secs(1);
        let order: Vec<u8> = std::iter::from_fn(|| s.poll_transmit(late))
            .map(|t| t.frame[14])
            .collect();
        assert_eq!(order, vec![0, 1, 2, 3]);
    }

    #[test]
    fn runts_are_counted_not_forwarded() {
        let t0 = Instant::now();
        let mut s = Switch::new(2, config(0));
        s.receive(t0, 0, vec![1, 2, 3]);
        s.receive_malformed(1);
        assert_eq!(s.poll_timeout(), None);
        assert_eq!((s.counts(0).malformed, s.counts(1).malformed), (1, 1));
        assert_eq!((s.counts(0).frames_in, s.counts(1).frames_in), (1, 1));
    }

    #[test]
    fn loss_is_near_its_rate_and_set_by_the_seed() {
        let t0 = Instant::now();
        let run = || {
            let mut s = Switch::new(2, config(100_000));
            for n in 0..10_000u32 {
                s.receive(t0, n as usize % 2, frame(B, A, 0));
                while s.poll_transmit(t0 + Duration::from_secs(1)).is_some() {}
            }
            (s.counts(0).lost, s.counts(1).lost)
        };
        let (a, b) = run();
        assert_eq!(run(), (a, b), "same seed, same losses");
        assert_ne!(a, b, "each link draws its own losses");
        for lost in [a, b] {
            assert!((400..600).contains(&lost), "{lost} of 5000 lost at 10%");
        }
    }
}
