//! Chunked transfers for what does not fit in one datagram: a new view
//! (members, lineage, the application's view message) from a coordinator
//! to every member, and a merging view's member list from its coordinator
//! to the senior one.
//!
//! The sender cuts the blob into chunks of whole postcard records (raw bytes
//! last), keeps them, and sends every chunk to every target that has not
//! acknowledged, one round every `gmp_retry`, until all have or it gives up.
//! The receiver keeps chunks by index until it has them all, then reads the
//! records in order and acknowledges. Rounds stop short of filling the
//! scheduler and transmit queues and continue where they stopped.

use core::net::SocketAddr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{BlobKind, Hdr};
use crate::buffer::{Msg, Pool, PoolError, SlotQueue};
use crate::id::{Rank, RankSet, ViewId};
use crate::stack::{Cx, Down, LayerKind};
use crate::time::Instant;

/// Most chunks one blob may have (and a receiver will keep).
pub(super) const MAX_CHUNKS: u16 = 64;

/// Builds a blob's chunks from records.
pub(super) struct Writer {
    chunks: SlotQueue,
    current: Option<Msg>,
    headroom: usize,
    cap: usize,
    index: u16,
}

impl Writer {
    /// A writer of chunks with `headroom` in front and `cap` bytes each.
    pub(super) fn new(headroom: usize, cap: usize) -> Self {
        Writer {
            chunks: SlotQueue::default(),
            current: None,
            headroom,
            cap,
            index: 0,
        }
    }

    fn seal(&mut self, pool: &mut Pool<'_>) -> Result<(), PoolError> {
        if let Some(m) = self.current.take() {
            if let Err(m) = pool.queue_push_back(&mut self.chunks, m, u32::from(self.index)) {
                pool.free(m);
                return Err(PoolError::NoRoom);
            }
            self.index += 1;
            if self.index > MAX_CHUNKS {
                return Err(PoolError::NoRoom);
            }
        }
        Ok(())
    }

    fn room(&self, pool: &Pool<'_>) -> usize {
        self.current
            .as_ref()
            .map_or(0, |m| self.cap.saturating_sub(pool.len(m)))
    }

    fn open(&mut self, pool: &mut Pool<'_>) -> Result<(), PoolError> {
        self.seal(pool)?;
        self.current = Some(pool.alloc(self.headroom)?);
        Ok(())
    }

    /// Adds one record; records never straddle chunks.
    pub(super) fn record<T: Serialize>(
        &mut self,
        pool: &mut Pool<'_>,
        rec: &T,
    ) -> Result<(), PoolError> {
        let mut tmp = [0u8; 128];
        let bytes = postcard::to_slice(rec, &mut tmp).map_err(|_| PoolError::NoRoom)?;
        if bytes.len() > self.room(pool) {
            self.open(pool)?;
        }
        match self.current.as_mut() {
            Some(m) => pool.append(m, bytes),
            None => Err(PoolError::NoRoom),
        }
    }

    /// Adds raw bytes, across as many chunks as they need.
    pub(super) fn raw(&mut self, pool: &mut Pool<'_>, mut bytes: &[u8]) -> Result<(), PoolError> {
        while !bytes.is_empty() {
            if self.room(pool) == 0 {
                self.open(pool)?;
            }
            let (now, later) = bytes.split_at(self.room(pool).min(bytes.len()));
            if let Some(m) = self.current.as_mut() {
                pool.append(m, now)?;
            }
            bytes = later;
        }
        Ok(())
    }

    /// The chunks, or what went wrong (everything is freed then).
    pub(super) fn finish(mut self, pool: &mut Pool<'_>) -> Result<(SlotQueue, u16), PoolError> {
        let r = self.seal(pool);
        match r {
            Ok(()) => Ok((self.chunks, self.index)),
            Err(e) => {
                pool.queue_clear(&mut self.chunks);
                Err(e)
            }
        }
    }

    /// Frees what was written, after a failed build.
    pub(super) fn discard(mut self, pool: &mut Pool<'_>) {
        if let Some(m) = self.current.take() {
            pool.free(m);
        }
        pool.queue_clear(&mut self.chunks);
    }
}

/// Reads a complete blob's records in order.
pub(super) struct Reader<'p> {
    chunks: crate::buffer::QueueSlices<'p>,
    current: &'p [u8],
    /// Index of the chunk `current` is in, and that chunk's length.
    index: usize,
    len: usize,
}

impl<'p> Reader<'p> {
    pub(super) fn new(pool: &'p Pool<'_>, chunks: &SlotQueue) -> Self {
        let mut chunks = pool.queue_slices(chunks);
        let current = chunks.next().unwrap_or(&[]);
        Reader {
            chunks,
            current,
            index: 0,
            len: current.len(),
        }
    }

    /// The next record, moving to the next chunk when this one is used up.
    pub(super) fn record<T: DeserializeOwned>(&mut self) -> Option<T> {
        if self.current.is_empty() {
            self.current = self.chunks.next()?;
            self.index += 1;
            self.len = self.current.len();
        }
        let (rec, rest) = postcard::take_from_bytes::<T>(self.current).ok()?;
        self.current = rest;
        Some(rec)
    }

    /// Where the records end: chunk index and offset in it.
    pub(super) fn position(&self) -> (usize, usize) {
        (self.index, self.len - self.current.len())
    }
}

/// A blob being sent to a set of addresses.
#[derive(Debug)]
pub(super) struct Outgoing<const M: usize> {
    pub(super) kind: BlobKind,
    pub(super) key: u32,
    chunks: SlotQueue,
    total: u16,
    targets: heapless::Vec<SocketAddr, M>,
    acked: RankSet,
    /// Where the current round stopped: target index, chunk index.
    cursor: Option<(usize, u16)>,
    next_round: Instant,
    give_up: Instant,
    /// The sender's view and rank when the transfer began: every round is
    /// framed with them (see `Down::Foreign::as_of`).
    as_of: (ViewId, Rank),
}

impl<const M: usize> Outgoing<M> {
    pub(super) fn new(
        kind: BlobKind,
        key: u32,
        (chunks, total): (SlotQueue, u16),
        targets: heapless::Vec<SocketAddr, M>,
        (now, give_up): (Instant, Instant),
        as_of: (ViewId, Rank),
    ) -> Self {
        Outgoing {
            kind,
            key,
            chunks,
            total,
            targets,
            acked: RankSet::EMPTY,
            cursor: Some((0, 0)),
            next_round: now,
            give_up,
            as_of,
        }
    }

    /// Whether every target has acknowledged.
    pub(super) fn done(&self) -> bool {
        (0..self.targets.len()).all(|i| self.acked.contains(Rank(i as u16)))
    }

    /// Whether the sender stopped trying.
    pub(super) fn expired(&self, now: Instant) -> bool {
        now >= self.give_up
    }

    /// Records an acknowledgement from `from`.
    pub(super) fn ack(&mut self, from: SocketAddr) {
        if let Some(i) = self.targets.iter().position(|t| *t == from) {
            self.acked.insert(Rank(i as u16));
        }
    }

    /// When the next round is due (`None` while one is under way or all is done).
    pub(super) fn deadline(&self) -> Option<Instant> {
        (self.cursor.is_none() && !self.done()).then_some(self.next_round.min(self.give_up))
    }

    /// Whether a round is under way but waits for queue room.
    pub(super) fn pending(&self) -> bool {
        self.cursor.is_some()
    }

    /// Starts a round if one is due.
    pub(super) fn tick(&mut self, now: Instant) {
        if self.cursor.is_none() && now >= self.next_round && !self.done() {
            self.cursor = Some((0, 0));
        }
    }

    /// Sends what the round still owes, as far as queue room allows.
    pub(super) fn send<const N: usize>(&mut self, cx: &mut Cx<'_, N>) {
        let Some((mut t, mut c)) = self.cursor else {
            return;
        };
        while t < self.targets.len() {
            if self.acked.contains(Rank(t as u16)) || c >= self.total {
                t += 1;
                c = 0;
                continue;
            }
            if !cx.can_release() || !cx.can_transmit() {
                self.cursor = Some((t, c));
                return;
            }
            let hdr = Hdr::Chunk {
                blob: self.kind,
                key: self.key,
                index: c,
                total: self.total,
            };
            if let Some(Ok(mut copy)) =
                cx.pool
                    .queue_copy(&self.chunks, u32::from(c), cx.headroom())
            {
                if cx.pool.push_header(&mut copy, &hdr).is_ok() {
                    cx.down(Down::Foreign {
                        to: self.targets[t],
                        layer: LayerKind::Gmp,
                        msg: copy,
                        as_of: Some(self.as_of),
                    });
                } else {
                    cx.free(copy);
                }
            }
            c += 1;
        }
        self.cursor = None;
        self.next_round = cx.now + cx.params.gmp_retry;
    }

    /// Gives the chunks back to the pool.
    pub(super) fn free(mut self, pool: &mut Pool<'_>) {
        pool.queue_clear(&mut self.chunks);
    }
}

/// A blob arriving.
#[derive(Debug)]
pub(super) struct Incoming {
    pub(super) kind: BlobKind,
    pub(super) key: u32,
    pub(super) from: SocketAddr,
    total: u16,
    pub(super) chunks: SlotQueue,
}

impl Incoming {
    pub(super) fn new(kind: BlobKind, key: u32, from: SocketAddr, total: u16) -> Self {
        Incoming {
            kind,
            key,
            from,
            total,
            chunks: SlotQueue::default(),
        }
    }

    /// Whether a chunk belongs to this blob.
    pub(super) fn matches(&self, kind: BlobKind, key: u32, from: SocketAddr, total: u16) -> bool {
        self.kind == kind && self.key == key && self.from == from && self.total == total
    }

    /// Keeps a chunk; duplicates and indexes out of range are freed.
    pub(super) fn add(&mut self, pool: &mut Pool<'_>, index: u16, msg: Msg) {
        if index >= self.total {
            pool.free(msg);
            return;
        }
        if let Err(dup) = pool.queue_insert_sorted(&mut self.chunks, msg, u32::from(index)) {
            pool.free(dup);
        }
    }

    /// Whether every chunk has arrived.
    pub(super) fn complete(&self) -> bool {
        self.chunks.len() == usize::from(self.total)
    }

    /// Gives the chunks back to the pool.
    pub(super) fn free(mut self, pool: &mut Pool<'_>) {
        pool.queue_clear(&mut self.chunks);
    }
}
