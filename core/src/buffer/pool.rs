//! The slot pool. See the module documentation of [`crate::buffer`].
//!
//! Layout of the caller's byte arena: `slots` slots one after the other, each
//! made of a 12-byte header (`start`, `end`, `next`, `flags` as little-endian
//! `u16`s, then a `u32` tag) followed by `slot_size` bytes of data. A message's bytes in a slot
//! are `data[start..end]`; the room before `start` is headroom where layers
//! push their headers on the way down. Slots chain through `next`, which
//! also threads the free list.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes of bookkeeping per pool slot, beside its data: a pool of `n` slots
/// of `s` bytes takes `n * (s + SLOT_OVERHEAD)` bytes of storage.
pub const SLOT_OVERHEAD: usize = 12;
const NONE: u16 = u16::MAX;
const IN_USE: u16 = 1;
/// Marks the first slot of each message queued in a [`MsgQueue`].
const MSG_HEAD: u16 = 2;
/// Largest header a layer may push (checked per header type at compile time).
pub(crate) const MAX_HEADER: usize = 48;

/// An owned message: a chain of one or more slots.
///
/// A `Msg` is neither `Copy` nor `Clone`: whoever holds it must hand it on or
/// give it back with [`Pool::free`]. Tests check that the pool is empty once
/// a run has gone quiet, which catches a `Msg` dropped on the floor.
#[must_use = "a Msg holds pool slots: pass it on or free it"]
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Msg {
    head: u16,
}

impl Msg {
    /// Gives up the handle once its slot has been linked into another chain.
    fn into_raw(self) -> u16 {
        self.head
    }
}

/// The pool's counters; the bytes live in the caller's storage.
#[derive(Debug, Clone)]
pub(crate) struct PoolState {
    slot_size: u16,
    slots: u16,
    free_head: u16,
    free: u16,
    /// Fewest free slots ever seen (a high-water mark of use).
    min_free: u16,
}

/// Why a message could not be built or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolError {
    /// No free slot.
    Exhausted,
    /// The bytes do not fit in the slot's headroom or tailroom.
    NoRoom,
}

impl PoolState {
    /// Lays out `arena` as slots of `slot_size` data bytes and threads the free list.
    pub(crate) fn format(arena: &mut [u8], slot_size: u16) -> PoolState {
        let stride = SLOT_OVERHEAD + slot_size as usize;
        let slots = (arena.len() / stride).min(NONE as usize) as u16;
        let mut st = PoolState {
            slot_size,
            slots,
            free_head: NONE,
            free: 0,
            min_free: 0,
        };
        let mut pool = Pool { arena, st: &mut st };
        for i in (0..slots).rev() {
            pool.set_meta(
                i,
                Meta {
                    start: 0,
                    end: 0,
                    next: pool.st.free_head,
                    flags: 0,
                    tag: 0,
                },
            );
            pool.st.free_head = i;
            pool.st.free += 1;
        }
        st.min_free = st.free;
        st
    }

    /// Data bytes per slot.
    pub(crate) fn slot_size(&self) -> usize {
        self.slot_size as usize
    }

    /// Number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.slots as usize
    }

    /// Slots not in use.
    pub(crate) fn free(&self) -> usize {
        self.free as usize
    }

    /// Slots in use.
    pub(crate) fn in_use(&self) -> usize {
        (self.slots - self.free) as usize
    }

    /// Most slots ever in use at once.
    pub(crate) fn peak_in_use(&self) -> usize {
        (self.slots - self.min_free) as usize
    }
}

#[derive(Clone, Copy)]
struct Meta {
    start: u16,
    end: u16,
    next: u16,
    flags: u16,
    /// Free for the layer holding the slot in a [`SlotQueue`] (a sequence number).
    tag: u32,
}

/// The pool: the caller's arena and its counters, borrowed together.
pub(crate) struct Pool<'a> {
    arena: &'a mut [u8],
    st: &'a mut PoolState,
}

impl<'a> Pool<'a> {
    /// Borrows an arena formatted by [`PoolState::format`].
    pub(crate) fn new(arena: &'a mut [u8], st: &'a mut PoolState) -> Self {
        Pool { arena, st }
    }

    fn stride(&self) -> usize {
        SLOT_OVERHEAD + self.st.slot_size as usize
    }

    fn meta(&self, slot: u16) -> Meta {
        let base = slot as usize * self.stride();
        let m = &self.arena[base..base + SLOT_OVERHEAD];
        let f = |i: usize| u16::from_le_bytes([m[i], m[i + 1]]);
        let tag = u32::from_le_bytes([m[8], m[9], m[10], m[11]]);
        Meta {
            start: f(0),
            end: f(2),
            next: f(4),
            flags: f(6),
            tag,
        }
    }

    fn set_meta(&mut self, slot: u16, m: Meta) {
        let base = slot as usize * self.stride();
        let out = &mut self.arena[base..base + SLOT_OVERHEAD];
        out[0..2].copy_from_slice(&m.start.to_le_bytes());
        out[2..4].copy_from_slice(&m.end.to_le_bytes());
        out[4..6].copy_from_slice(&m.next.to_le_bytes());
        out[6..8].copy_from_slice(&m.flags.to_le_bytes());
        out[8..12].copy_from_slice(&m.tag.to_le_bytes());
    }

    fn data(&self, slot: u16) -> &[u8] {
        let base = slot as usize * self.stride() + SLOT_OVERHEAD;
        &self.arena[base..base + self.st.slot_size as usize]
    }

    fn data_mut(&mut self, slot: u16) -> &mut [u8] {
        let base = slot as usize * self.stride() + SLOT_OVERHEAD;
        let size = self.st.slot_size as usize;
        &mut self.arena[base..base + size]
    }

    /// Data bytes per slot.
    pub(crate) fn slot_size(&self) -> usize {
        self.st.slot_size as usize
    }

    /// Slots in all.
    pub(crate) fn capacity(&self) -> usize {
        self.st.slots as usize
    }

    /// Slots not in use.
    pub(crate) fn free_slots(&self) -> usize {
        self.st.free as usize
    }

    /// Takes one slot, empty, with `headroom` bytes before its start.
    pub(crate) fn alloc(&mut self, headroom: usize) -> Result<Msg, PoolError> {
        if headroom > self.slot_size() {
            return Err(PoolError::NoRoom);
        }
        let slot = self.st.free_head;
        if slot == NONE {
            return Err(PoolError::Exhausted);
        }
        let m = self.meta(slot);
        self.st.free_head = m.next;
        self.st.free -= 1;
        self.st.min_free = self.st.min_free.min(self.st.free);
        let at = headroom as u16;
        self.set_meta(
            slot,
            Meta {
                start: at,
                end: at,
                next: NONE,
                flags: IN_USE,
                tag: 0,
            },
        );
        Ok(Msg { head: slot })
    }

    /// Gives every slot of the message back to the pool.
    pub(crate) fn free(&mut self, msg: Msg) {
        let mut slot = msg.head;
        while slot != NONE {
            let m = self.meta(slot);
            debug_assert!(m.flags & IN_USE != 0, "slot {slot} freed twice");
            self.set_meta(
                slot,
                Meta {
                    start: 0,
                    end: 0,
                    next: self.st.free_head,
                    flags: 0,
                    tag: 0,
                },
            );
            self.st.free_head = slot;
            self.st.free += 1;
            slot = m.next;
        }
    }

    /// Builds a message holding `bytes`, in slots of at most `per_slot` data
    /// bytes, each with `headroom` bytes before its data.
    ///
    /// On failure nothing is left allocated.
    pub(crate) fn alloc_with(
        &mut self,
        headroom: usize,
        per_slot: usize,
        bytes: &[u8],
    ) -> Result<Msg, PoolError> {
        if per_slot == 0 || headroom + per_slot > self.slot_size() {
            return Err(PoolError::NoRoom);
        }
        let mut chunks = bytes.chunks(per_slot);
        let mut msg = self.alloc(headroom)?;
        if let Some(first) = chunks.next() {
            self.append(&mut msg, first)?;
        }
        let mut tail = msg.head;
        for chunk in chunks {
            let next = match self.alloc(headroom) {
                Ok(m) => m,
                Err(e) => {
                    self.free(msg);
                    return Err(e);
                }
            };
            let mut next = next;
            // Cannot fail: the chunk fits by construction of `per_slot`.
            let _ = self.append(&mut next, chunk);
            let slot = next.into_raw();
            let mut m = self.meta(tail);
            m.next = slot;
            self.set_meta(tail, m);
            tail = slot;
        }
        Ok(msg)
    }

    /// Total payload bytes across the chain.
    pub(crate) fn len(&self, msg: &Msg) -> usize {
        self.segment_ids(msg).map(|s| self.segment_len(s)).sum()
    }

    /// Number of slots in the chain.
    pub(crate) fn chain_len(&self, msg: &Msg) -> usize {
        self.segment_ids(msg).count()
    }

    fn segment_len(&self, slot: u16) -> usize {
        let m = self.meta(slot);
        (m.end - m.start) as usize
    }

    fn segment_ids(&self, msg: &Msg) -> impl Iterator<Item = u16> + '_ {
        let mut slot = msg.head;
        core::iter::from_fn(move || {
            if slot == NONE {
                return None;
            }
            let s = slot;
            slot = self.meta(s).next;
            Some(s)
        })
    }

    /// The message's bytes, one slice per slot.
    #[cfg(test)]
    pub(crate) fn segments<'p>(&'p self, msg: &Msg) -> impl Iterator<Item = &'p [u8]> + 'p {
        Segments::new(self.arena, self.st.slot_size as usize, msg)
    }

    /// Copies the message's bytes from `offset` into `out`; returns how many.
    pub(crate) fn read_at(&self, msg: &Msg, mut offset: usize, out: &mut [u8]) -> usize {
        let mut n = 0;
        for seg in Segments::new(self.arena, self.st.slot_size as usize, msg) {
            if offset >= seg.len() {
                offset -= seg.len();
                continue;
            }
            let take = (seg.len() - offset).min(out.len() - n);
            out[n..n + take].copy_from_slice(&seg[offset..offset + take]);
            n += take;
            offset = 0;
            if n == out.len() {
                break;
            }
        }
        n
    }

    /// The bytes of the message's first slot (all of it for a one-slot message).
    pub(crate) fn head_bytes(&self, msg: &Msg) -> &[u8] {
        let m = self.meta(msg.head);
        &self.data(msg.head)[m.start as usize..m.end as usize]
    }

    /// Bytes free before the data of the first slot.
    #[cfg(test)]
    pub(crate) fn headroom(&self, msg: &Msg) -> usize {
        self.meta(msg.head).start as usize
    }

    /// Appends bytes at the end of the message's last slot.
    pub(crate) fn append(&mut self, msg: &mut Msg, bytes: &[u8]) -> Result<(), PoolError> {
        let tail = self.segment_ids(msg).last().unwrap_or(msg.head);
        let mut m = self.meta(tail);
        let end = m.end as usize + bytes.len();
        if end > self.slot_size() {
            return Err(PoolError::NoRoom);
        }
        let from = m.end as usize;
        self.data_mut(tail)[from..end].copy_from_slice(bytes);
        m.end = end as u16;
        self.set_meta(tail, m);
        Ok(())
    }

    /// Lets `write` fill the free room at the end of the message's last slot
    /// and keeps what it says it wrote: how a body is encoded in place.
    pub(crate) fn write_tail(
        &mut self,
        msg: &mut Msg,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), PoolError> {
        let tail = self.segment_ids(msg).last().unwrap_or(msg.head);
        let mut m = self.meta(tail);
        let end = m.end as usize;
        let room = &mut self.data_mut(tail)[end..];
        let used = write(room).ok_or(PoolError::NoRoom)?;
        m.end = (end + used) as u16;
        self.set_meta(tail, m);
        Ok(())
    }

    /// The bytes of each message in a queue, in order (the queue's
    /// one-slot messages are linked like the slots of a chain).
    pub(crate) fn queue_slices<'p>(&'p self, q: &SlotQueue) -> QueueSlices<'p> {
        Segments {
            arena: self.arena,
            slot_size: self.st.slot_size as usize,
            slot: q.head,
        }
    }

    /// Puts bytes in front of the message (in its first slot's headroom).
    pub(crate) fn push_front(&mut self, msg: &mut Msg, bytes: &[u8]) -> Result<(), PoolError> {
        let mut m = self.meta(msg.head);
        let start = (m.start as usize)
            .checked_sub(bytes.len())
            .ok_or(PoolError::NoRoom)?;
        self.data_mut(msg.head)[start..m.start as usize].copy_from_slice(bytes);
        m.start = start as u16;
        self.set_meta(msg.head, m);
        Ok(())
    }

    /// Removes `n` bytes from the front of the first slot.
    pub(crate) fn pop_front(&mut self, msg: &mut Msg, n: usize) -> Result<(), PoolError> {
        let mut m = self.meta(msg.head);
        if ((m.end - m.start) as usize) < n {
            return Err(PoolError::NoRoom);
        }
        m.start += n as u16;
        self.set_meta(msg.head, m);
        Ok(())
    }

    /// Encodes a layer header with postcard and pushes it in front.
    pub(crate) fn push_header<H: Serialize>(
        &mut self,
        msg: &mut Msg,
        hdr: &H,
    ) -> Result<(), PoolError> {
        let mut tmp = [0u8; MAX_HEADER];
        let used = postcard::to_slice(hdr, &mut tmp).map_err(|_| PoolError::NoRoom)?;
        let n = used.len();
        self.push_front(msg, &tmp[..n])
    }

    /// Decodes a layer header from the front and removes it.
    ///
    /// `None` when the bytes are not a valid header: the caller counts the
    /// message as malformed and frees it.
    pub(crate) fn pop_header<H: DeserializeOwned>(&mut self, msg: &mut Msg) -> Option<H> {
        let bytes = self.head_bytes(msg);
        let before = bytes.len();
        let (hdr, rest) = postcard::take_from_bytes::<H>(bytes).ok()?;
        let used = before - rest.len();
        self.pop_front(msg, used).ok()?;
        Some(hdr)
    }

    /// Copies the message into new slots, each with `headroom` bytes in front.
    pub(crate) fn copy(&mut self, msg: &Msg, headroom: usize) -> Result<Msg, PoolError> {
        let first = msg.head;
        let copy = self.copy_slot(first, headroom)?;
        let mut tail = copy.head;
        let mut src = self.meta(first).next;
        while src != NONE {
            let next = match self.copy_slot(src, headroom) {
                Ok(m) => m,
                Err(e) => {
                    self.free(copy);
                    return Err(e);
                }
            };
            let slot = next.into_raw();
            let mut m = self.meta(tail);
            m.next = slot;
            self.set_meta(tail, m);
            tail = slot;
            src = self.meta(src).next;
        }
        Ok(copy)
    }

    fn copy_slot(&mut self, slot: u16, headroom: usize) -> Result<Msg, PoolError> {
        let m = self.meta(slot);
        let len = (m.end - m.start) as usize;
        if headroom + len > self.slot_size() {
            return Err(PoolError::NoRoom);
        }
        let out = self.alloc(headroom)?;
        let stride = self.stride();
        let src = slot as usize * stride + SLOT_OVERHEAD + m.start as usize;
        let dst = out.head as usize * stride + SLOT_OVERHEAD + headroom;
        self.arena.copy_within(src..src + len, dst);
        let mut om = self.meta(out.head);
        om.end = (headroom + len) as u16;
        self.set_meta(out.head, om);
        Ok(out)
    }

    /// Detaches everything after the first slot and returns it.
    pub(crate) fn split_first(&mut self, msg: &mut Msg) -> Option<Msg> {
        let mut m = self.meta(msg.head);
        if m.next == NONE {
            return None;
        }
        let rest = Msg { head: m.next };
        m.next = NONE;
        self.set_meta(msg.head, m);
        Some(rest)
    }

    /// Appends the chain `tail` after the last slot of `msg`.
    pub(crate) fn concat(&mut self, msg: &mut Msg, tail: Msg) {
        let last = self.segment_ids(msg).last().unwrap_or(msg.head);
        let mut m = self.meta(last);
        m.next = tail.into_raw();
        self.set_meta(last, m);
    }
}

/// Walks a message's slots over a read-only arena: what an application
/// event's payload uses once the endpoint has lent out its bytes.
#[derive(Clone, Debug)]
pub(crate) struct Segments<'a> {
    arena: &'a [u8],
    slot_size: usize,
    slot: u16,
}

impl<'a> Segments<'a> {
    pub(crate) fn new(arena: &'a [u8], slot_size: usize, msg: &Msg) -> Self {
        Segments {
            arena,
            slot_size,
            slot: msg.head,
        }
    }

    /// No segments at all.
    pub(crate) fn empty() -> Self {
        Segments {
            arena: &[],
            slot_size: 0,
            slot: NONE,
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.slot == NONE {
            return None;
        }
        let base = self.slot as usize * (SLOT_OVERHEAD + self.slot_size);
        let m = self.arena.get(base..base + SLOT_OVERHEAD)?;
        let f = |i: usize| u16::from_le_bytes([m[i], m[i + 1]]) as usize;
        let (start, end, next) = (f(0), f(2), f(4));
        let data = base + SLOT_OVERHEAD;
        self.slot = next as u16;
        self.arena.get(data + start..data + end)
    }
}

/// The bytes of a queue's messages, in order.
pub(crate) type QueueSlices<'a> = Segments<'a>;

/// An ordered queue of one-slot messages, each with a `u32` tag, threaded
/// through the pool's own links (no storage of its own beyond three numbers).
///
/// Layers use it for what they keep by sequence number: Mnak's and Pt2pt's
/// retransmission buffers and their out-of-order arrivals.
#[derive(Debug)]
pub(crate) struct SlotQueue {
    head: u16,
    tail: u16,
    len: u16,
    /// Payload bytes queued, kept up to date so that flow control can read
    /// a backlog without walking the queue.
    bytes: u32,
}

impl Default for SlotQueue {
    fn default() -> Self {
        SlotQueue {
            head: NONE,
            tail: NONE,
            len: 0,
            bytes: 0,
        }
    }
}

impl SlotQueue {
    /// Number of messages queued.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Pool<'_> {
    /// Appends a one-slot message with its tag. A chain is given back.
    pub(crate) fn queue_push_back(
        &mut self,
        q: &mut SlotQueue,
        msg: Msg,
        tag: u32,
    ) -> Result<(), Msg> {
        let mut m = self.meta(msg.head);
        if m.next != NONE {
            return Err(msg);
        }
        m.tag = tag;
        let slot = msg.into_raw();
        self.set_meta(slot, m);
        if q.tail == NONE {
            q.head = slot;
        } else {
            let mut t = self.meta(q.tail);
            t.next = slot;
            self.set_meta(q.tail, t);
        }
        q.tail = slot;
        q.len += 1;
        q.bytes += (m.end - m.start) as u32;
        Ok(())
    }

    /// Inserts a one-slot message keeping tags increasing. A chain, or a tag
    /// already present, is given back.
    pub(crate) fn queue_insert_sorted(
        &mut self,
        q: &mut SlotQueue,
        msg: Msg,
        tag: u32,
    ) -> Result<(), Msg> {
        let mut prev = NONE;
        let mut cur = q.head;
        while cur != NONE {
            let m = self.meta(cur);
            if m.tag == tag {
                return Err(msg);
            }
            if m.tag > tag {
                break;
            }
            prev = cur;
            cur = m.next;
        }
        if cur == NONE {
            return self.queue_push_back(q, msg, tag);
        }
        let mut m = self.meta(msg.head);
        if m.next != NONE {
            return Err(msg);
        }
        m.tag = tag;
        m.next = cur;
        let slot = msg.into_raw();
        self.set_meta(slot, m);
        if prev == NONE {
            q.head = slot;
        } else {
            let mut p = self.meta(prev);
            p.next = slot;
            self.set_meta(prev, p);
        }
        q.len += 1;
        q.bytes += (m.end - m.start) as u32;
        Ok(())
    }

    /// The tag of the first message.
    pub(crate) fn queue_front_tag(&self, q: &SlotQueue) -> Option<u32> {
        (q.head != NONE).then(|| self.meta(q.head).tag)
    }

    /// The tag of the last message.
    #[cfg(test)]
    pub(crate) fn queue_back_tag(&self, q: &SlotQueue) -> Option<u32> {
        (q.tail != NONE).then(|| self.meta(q.tail).tag)
    }

    /// Removes the first message.
    pub(crate) fn queue_pop_front(&mut self, q: &mut SlotQueue) -> Option<(u32, Msg)> {
        if q.head == NONE {
            return None;
        }
        let slot = q.head;
        let mut m = self.meta(slot);
        q.head = m.next;
        if q.head == NONE {
            q.tail = NONE;
        }
        q.len -= 1;
        q.bytes -= (m.end - m.start) as u32;
        let tag = m.tag;
        m.next = NONE;
        self.set_meta(slot, m);
        Some((tag, Msg { head: slot }))
    }

    /// Removes the last message (the one with the highest tag).
    pub(crate) fn queue_pop_back(&mut self, q: &mut SlotQueue) -> Option<(u32, Msg)> {
        if q.head == NONE {
            return None;
        }
        if q.head == q.tail {
            return self.queue_pop_front(q);
        }
        // Singly linked: walk to the one before the tail. Eviction is rare.
        let mut prev = q.head;
        while self.meta(prev).next != q.tail {
            prev = self.meta(prev).next;
        }
        let last = q.tail;
        let mut p = self.meta(prev);
        p.next = NONE;
        self.set_meta(prev, p);
        q.tail = prev;
        q.len -= 1;
        let m = self.meta(last);
        q.bytes -= (m.end - m.start) as u32;
        Some((m.tag, Msg { head: last }))
    }

    /// Copies the message tagged `tag`, if queued, with `headroom` in front.
    pub(crate) fn queue_copy(
        &mut self,
        q: &SlotQueue,
        tag: u32,
        headroom: usize,
    ) -> Option<Result<Msg, PoolError>> {
        let mut cur = q.head;
        while cur != NONE {
            let m = self.meta(cur);
            if m.tag == tag {
                return Some(self.copy_slot(cur, headroom));
            }
            if m.tag > tag {
                return None;
            }
            cur = m.next;
        }
        None
    }

    /// The tags queued, in order.
    pub(crate) fn queue_tags<'p>(&'p self, q: &SlotQueue) -> impl Iterator<Item = u32> + 'p {
        let mut cur = q.head;
        core::iter::from_fn(move || {
            if cur == NONE {
                return None;
            }
            let m = self.meta(cur);
            cur = m.next;
            Some(m.tag)
        })
    }

    /// Bytes of payload summed over the queue.
    pub(crate) fn queue_bytes(&self, q: &SlotQueue) -> usize {
        q.bytes as usize
    }

    /// Frees every message in the queue.
    pub(crate) fn queue_clear(&mut self, q: &mut SlotQueue) {
        while let Some((_, m)) = self.queue_pop_front(q) {
            self.free(m);
        }
    }
}

/// A FIFO of whole messages (chains of any length), each with a `u32`
/// tag, threaded through the pool's own links like [`SlotQueue`].
///
/// The messages are linked one after the other as one long chain; the first
/// slot of each is flagged, which is how `pop_front` finds where the next
/// one begins. The layers above Frag keep reassembled messages in it
/// (Total, Causal and Agree hold casts until they may be delivered), so
/// what they hold is bounded by the pool and costs no storage of its own.
#[derive(Debug)]
pub(crate) struct MsgQueue {
    head: u16,
    /// The last slot of the last message.
    tail: u16,
    len: u32,
}

impl Default for MsgQueue {
    fn default() -> Self {
        MsgQueue {
            head: NONE,
            tail: NONE,
            len: 0,
        }
    }
}

impl MsgQueue {
    /// Number of messages queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Pool<'_> {
    /// Appends a message (any number of slots) with its tag.
    pub(crate) fn msgq_push_back(&mut self, q: &mut MsgQueue, msg: Msg, tag: u32) {
        let head = msg.into_raw();
        let mut m = self.meta(head);
        m.flags |= MSG_HEAD;
        m.tag = tag;
        self.set_meta(head, m);
        let mut last = head;
        loop {
            let next = self.meta(last).next;
            if next == NONE {
                break;
            }
            last = next;
        }
        if q.tail == NONE {
            q.head = head;
        } else {
            let mut t = self.meta(q.tail);
            t.next = head;
            self.set_meta(q.tail, t);
        }
        q.tail = last;
        q.len += 1;
    }

    /// Removes the first message and its tag.
    pub(crate) fn msgq_pop_front(&mut self, q: &mut MsgQueue) -> Option<(u32, Msg)> {
        if q.head == NONE {
            return None;
        }
        let head = q.head;
        let mut hm = self.meta(head);
        let tag = hm.tag;
        hm.flags &= !MSG_HEAD;
        self.set_meta(head, hm);
        // Walk to the message's last slot: the one whose successor starts
        // the next message (or ends the queue).
        let mut last = head;
        loop {
            let next = self.meta(last).next;
            if next == NONE || self.meta(next).flags & MSG_HEAD != 0 {
                break;
            }
            last = next;
        }
        let mut lm = self.meta(last);
        q.head = lm.next;
        if q.head == NONE {
            q.tail = NONE;
        }
        lm.next = NONE;
        self.set_meta(last, lm);
        q.len -= 1;
        Some((tag, Msg { head }))
    }

    /// The tag of the first message.
    pub(crate) fn msgq_front_tag(&self, q: &MsgQueue) -> Option<u32> {
        (q.head != NONE).then(|| self.meta(q.head).tag)
    }

    /// The bytes of the first slot of the first message (where its
    /// headers are), to read a header without taking the message out.
    pub(crate) fn msgq_front_bytes(&self, q: &MsgQueue) -> Option<&[u8]> {
        if q.head == NONE {
            return None;
        }
        let m = self.meta(q.head);
        Some(&self.data(q.head)[m.start as usize..m.end as usize])
    }

    /// Rewrites the tag of every queued message for which `f` returns one.
    pub(crate) fn msgq_retag(&mut self, q: &MsgQueue, mut f: impl FnMut(u32) -> Option<u32>) {
        let mut cur = q.head;
        while cur != NONE {
            let mut m = self.meta(cur);
            if m.flags & MSG_HEAD != 0 {
                if let Some(t) = f(m.tag) {
                    m.tag = t;
                    self.set_meta(cur, m);
                }
            }
            cur = m.next;
        }
    }

    /// Frees every message in the queue.
    pub(crate) fn msgq_clear(&mut self, q: &mut MsgQueue) {
        while let Some((_, m)) = self.msgq_pop_front(q) {
            self.free(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_with(arena: &mut [u8], slot: u16) -> PoolState {
        PoolState::format(arena, slot)
    }

    #[test]
    fn alloc_until_exhausted_then_free_everything() {
        let mut arena = [0u8; 4 * (SLOT_OVERHEAD + 32)];
        let mut st = pool_with(&mut arena, 32);
        let mut pool = Pool::new(&mut arena, &mut st);
        let msgs: std::vec::Vec<Msg> = (0..4).map(|_| pool.alloc(8).unwrap()).collect();
        assert_eq!(pool.alloc(8), Err(PoolError::Exhausted));
        for m in msgs {
            pool.free(m);
        }
        assert_eq!(st.free(), 4);
        assert_eq!(st.peak_in_use(), 4);
    }

    #[test]
    fn headers_push_and_pop_in_reverse_order() {
        let mut arena = [0u8; 2 * (SLOT_OVERHEAD + 64)];
        let mut st = pool_with(&mut arena, 64);
        let mut pool = Pool::new(&mut arena, &mut st);
        let mut m = pool.alloc(16).unwrap();
        pool.append(&mut m, b"payload").unwrap();
        pool.push_header(&mut m, &7u32).unwrap();
        pool.push_header(&mut m, &(1u8, 300u16)).unwrap();
        assert_eq!(pool.pop_header::<(u8, u16)>(&mut m), Some((1, 300)));
        assert_eq!(pool.pop_header::<u32>(&mut m), Some(7));
        assert_eq!(pool.head_bytes(&m), b"payload");
        pool.free(m);
    }

    #[test]
    fn headroom_overflow_is_an_error_not_a_panic() {
        let mut arena = [0u8; SLOT_OVERHEAD + 16];
        let mut st = pool_with(&mut arena, 16);
        let mut pool = Pool::new(&mut arena, &mut st);
        let mut m = pool.alloc(2).unwrap();
        assert_eq!(pool.push_front(&mut m, b"abc"), Err(PoolError::NoRoom));
        assert_eq!(pool.append(&mut m, &[0; 15]), Err(PoolError::NoRoom));
        assert_eq!(pool.pop_header::<u64>(&mut m), None);
        pool.free(m);
    }

    #[test]
    fn chains_split_concat_and_copy() {
        let mut arena = [0u8; 8 * (SLOT_OVERHEAD + 16)];
        let mut st = pool_with(&mut arena, 16);
        let mut pool = Pool::new(&mut arena, &mut st);
        let data: std::vec::Vec<u8> = (0..30).collect();
        let mut m = pool.alloc_with(4, 12, &data).unwrap();
        assert_eq!(pool.chain_len(&m), 3);
        assert_eq!(pool.len(&m), 30);
        let copy = pool.copy(&m, 2).unwrap();
        let flat: std::vec::Vec<u8> = pool.segments(&copy).flatten().copied().collect();
        assert_eq!(flat, data);
        let rest = pool.split_first(&mut m).unwrap();
        assert_eq!(pool.len(&m), 12);
        pool.concat(&mut m, rest);
        assert_eq!(pool.len(&m), 30);
        pool.free(m);
        pool.free(copy);
        assert_eq!(st.in_use(), 0);
    }

    #[test]
    fn slot_queue_keeps_tags_sorted_and_rejects_duplicates() {
        let mut arena = [0u8; 6 * (SLOT_OVERHEAD + 16)];
        let mut st = pool_with(&mut arena, 16);
        let mut pool = Pool::new(&mut arena, &mut st);
        let mut q = SlotQueue::default();
        for tag in [5, 2, 9, 7] {
            let mut m = pool.alloc(0).unwrap();
            pool.append(&mut m, &[tag as u8]).unwrap();
            pool.queue_insert_sorted(&mut q, m, tag).unwrap();
        }
        let dup = pool.alloc(0).unwrap();
        let dup = pool.queue_insert_sorted(&mut q, dup, 7).unwrap_err();
        pool.free(dup);
        assert_eq!(
            pool.queue_tags(&q).collect::<std::vec::Vec<_>>(),
            [2, 5, 7, 9]
        );
        assert_eq!(pool.queue_back_tag(&q), Some(9));
        let c = pool.queue_copy(&q, 7, 3).unwrap().unwrap();
        assert_eq!(pool.head_bytes(&c), &[7]);
        assert_eq!(pool.headroom(&c), 3);
        pool.free(c);
        assert!(pool.queue_copy(&q, 6, 0).is_none());
        let (tag, m) = pool.queue_pop_front(&mut q).unwrap();
        assert_eq!((tag, pool.head_bytes(&m)), (2, &[2u8][..]));
        pool.free(m);
        let (tag, m) = pool.queue_pop_back(&mut q).unwrap();
        assert_eq!((tag, pool.head_bytes(&m)), (9, &[9u8][..]));
        pool.free(m);
        assert_eq!(pool.queue_back_tag(&q), Some(7));
        assert_eq!(pool.queue_bytes(&q), 2);
        pool.queue_clear(&mut q);
        assert!(q.is_empty());
        assert_eq!(st.in_use(), 0);
    }

    #[test]
    fn msg_queue_keeps_whole_chains_in_order() {
        let mut arena = [0u8; 12 * (SLOT_OVERHEAD + 16)];
        let mut st = pool_with(&mut arena, 16);
        let mut pool = Pool::new(&mut arena, &mut st);
        let mut q = MsgQueue::default();
        let a: std::vec::Vec<u8> = (0..30).collect();
        let b = [7u8; 5];
        let c: std::vec::Vec<u8> = (100..140).collect();
        for (i, bytes) in [&a[..], &b[..], &c[..]].iter().enumerate() {
            let m = pool.alloc_with(2, 12, bytes).unwrap();
            pool.msgq_push_back(&mut q, m, 10 + i as u32);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(pool.msgq_front_tag(&q), Some(10));
        assert_eq!(pool.msgq_front_bytes(&q).unwrap(), &a[..12]);
        pool.msgq_retag(&q, |t| (t == 11).then_some(99));
        let (tag, m) = pool.msgq_pop_front(&mut q).unwrap();
        assert_eq!(tag, 10);
        let flat: std::vec::Vec<u8> = pool.segments(&m).flatten().copied().collect();
        assert_eq!(flat, a);
        pool.free(m);
        let (tag, m) = pool.msgq_pop_front(&mut q).unwrap();
        assert_eq!((tag, pool.len(&m)), (99, 5));
        pool.free(m);
        // A message pushed behind one already queued stays whole.
        let m = pool.alloc_with(2, 12, &b).unwrap();
        pool.msgq_push_back(&mut q, m, 3);
        let (tag, m) = pool.msgq_pop_front(&mut q).unwrap();
        let flat: std::vec::Vec<u8> = pool.segments(&m).flatten().copied().collect();
        assert_eq!((tag, flat), (12, c));
        pool.free(m);
        pool.msgq_clear(&mut q);
        assert!(q.is_empty());
        assert_eq!(st.in_use(), 0);
    }

    #[test]
    fn failed_chain_build_leaks_nothing() {
        let mut arena = [0u8; 2 * (SLOT_OVERHEAD + 16)];
        let mut st = pool_with(&mut arena, 16);
        let mut pool = Pool::new(&mut arena, &mut st);
        assert_eq!(
            pool.alloc_with(0, 16, &[1; 40]).err(),
            Some(PoolError::Exhausted)
        );
        assert_eq!(st.in_use(), 0);
    }
}
