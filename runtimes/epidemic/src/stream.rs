//! A role's events, as an async stream.

/// Events of a role, in order. Ends (`None`) once the role's task has
/// stopped and every event was read.
#[derive(Debug)]
pub struct EventStream<E> {
    rx: async_channel::Receiver<E>,
}

impl<E> EventStream<E> {
    pub(crate) fn new(rx: async_channel::Receiver<E>) -> Self {
        EventStream { rx }
    }

    /// The next event; `None` once the role has stopped.
    pub async fn next(&mut self) -> Option<E> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<E> {
        self.rx.try_recv().ok()
    }
}
