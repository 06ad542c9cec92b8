//! The member handle, its events, and views as owned values.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consort_core::{EndpointId, SendView, Status, View, ViewId};

use crate::bridge::Request;
use crate::error::MemberError;

/// Everything a view says (Maestro's `GrpMemb_ViewData` and Ensemble's `View`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewInfo {
    /// The version of consort that made the view.
    pub version: &'static str,
    /// The group's name.
    pub group: String,
    /// The view's id (`ltime`, coordinator).
    pub id: ViewId,
    /// This member's endpoint id.
    pub my_endpoint: EndpointId,
    /// Members, in rank order.
    pub members: Vec<EndpointId>,
    /// Their addresses, in rank order.
    pub addresses: Vec<SocketAddr>,
    /// Members that were not in this member's previous view.
    pub new_members: Vec<EndpointId>,
    /// Members of the previous view that are not in this one.
    pub departed_members: Vec<EndpointId>,
    /// This member's rank.
    pub my_rank: u16,
    /// This member's rank in its previous view.
    pub my_old_rank: Option<u16>,
    /// The coordinator (rank 0).
    pub coordinator: EndpointId,
    /// The coordinator of the previous view.
    pub old_coordinator: Option<EndpointId>,
    /// The protocol stack.
    pub protocol: String,
    /// The group parameters.
    pub params: String,
    /// Whether the view is primary (with the Primary property).
    pub primary: bool,
    /// Whether the view came from groupd.
    pub groupd: bool,
    /// What the coordinator's application attached to the view.
    pub message: Vec<u8>,
}

impl ViewInfo {
    pub(crate) fn from_view<const M: usize>(view: &View<M>, message: Vec<u8>) -> Self {
        ViewInfo {
            version: view.version(),
            group: view.group_name().into(),
            id: view.id(),
            my_endpoint: view.my_endpoint(),
            members: view.endpoints().collect(),
            addresses: view.addresses().collect(),
            new_members: view.new_members().collect(),
            departed_members: view.departed_members().collect(),
            my_rank: view.my_rank().0,
            my_old_rank: view.my_old_rank().map(|r| r.0),
            coordinator: view.coordinator(),
            old_coordinator: view.old_coordinator(),
            protocol: view.protocol().to_string(),
            params: view.params().into(),
            primary: view.is_primary(),
            groupd: view.uses_groupd(),
            message,
        }
    }

    /// Number of members.
    pub fn nmembers(&self) -> usize {
        self.members.len()
    }

    /// The view's logical time.
    pub fn ltime(&self) -> u32 {
        self.id.ltime
    }
}

/// Something that happened to the member, as an owned value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberEvent {
    /// A new view, with the coordinator's view message (Maestro's `AcceptedView`).
    View(Box<ViewInfo>),
    /// A cast (Maestro's `ReceiveCast`).
    Cast {
        /// The sender.
        from: EndpointId,
        /// The message.
        bytes: Vec<u8>,
    },
    /// A point-to-point message (Maestro's `ReceiveSend`).
    Send {
        /// The sender.
        from: EndpointId,
        /// The message.
        bytes: Vec<u8>,
    },
    /// A view change begins (Maestro's `Block`). With `auto_block_ok` off,
    /// answer with `Member::block_ok`.
    Block,
    /// This member coordinates the next view: answer with `Member::view_message`.
    ViewMessageRequest {
        /// The members of the next view.
        members: Vec<EndpointId>,
    },
    /// The heartbeat period passed (Maestro's `Heartbeat`); time since the member started.
    Heartbeat(Duration),
    /// The member has left: the last event.
    Exit,
}

/// What the member's task and its handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) status: Mutex<Status>,
    pub(crate) view: Mutex<Option<ViewInfo>>,
    pub(crate) auto_block_ok: bool,
}

/// A member of a group: the handle the application keeps.
///
/// Dropping it leaves the group.
#[derive(Debug)]
pub struct Member {
    pub(crate) requests: async_channel::Sender<Request>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) endpoint: EndpointId,
}

/// The member's events, in order. The stream ends after `Exit`.
#[derive(Debug)]
pub struct Events {
    pub(crate) rx: async_channel::Receiver<MemberEvent>,
}

impl Events {
    /// The next event; `None` once the member is gone.
    pub async fn next(&mut self) -> Option<MemberEvent> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<MemberEvent> {
        self.rx.try_recv().ok()
    }
}

impl Member {
    async fn ask<T>(
        &self,
        make: impl FnOnce(async_channel::Sender<T>) -> Request,
    ) -> Result<T, MemberError> {
        let (tx, rx) = async_channel::bounded(1);
        self.requests
            .send(make(tx))
            .await
            .map_err(|_| MemberError::Left)?;
        rx.recv().await.map_err(|_| MemberError::Left)
    }

    /// Casts to the group; waits while flow control says so. Says in which
    /// view the cast goes out (`Next` during a view change after `block_ok`).
    pub async fn cast(&self, bytes: impl Into<Vec<u8>>) -> Result<SendView, MemberError> {
        let bytes = bytes.into();
        self.ask(|reply| Request::Cast { bytes, reply })
            .await?
            .map_err(MemberError::Send)
    }

    /// Sends to one member; waits while flow control says so.
    pub async fn send(
        &self,
        to: EndpointId,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<SendView, MemberError> {
        let bytes = bytes.into();
        self.ask(|reply| Request::Send { to, bytes, reply })
            .await?
            .map_err(MemberError::Send)
    }

    /// Sends the same bytes to each of several members (the seed's
    /// `Send(dests, msg)`); one point-to-point message per destination, each
    /// FIFO with the others from this member. Returns in which view each one
    /// goes out, in the order of `to`.
    ///
    /// ```no_run
    /// # async fn f(member: &consort_member::Member, a: consort_core::EndpointId, b: consort_core::EndpointId) {
    /// let views = member.send_to_many(&[a, b], b"to a and b".to_vec()).await.unwrap();
    /// assert_eq!(views.len(), 2);
    /// # }
    /// ```
    pub async fn send_to_many(
        &self,
        to: &[EndpointId],
        bytes: impl Into<Vec<u8>>,
    ) -> Result<Vec<SendView>, MemberError> {
        let bytes = bytes.into();
        let mut views = Vec::with_capacity(to.len());
        for &dest in to {
            views.push(self.send(dest, bytes.clone()).await?);
        }
        Ok(views)
    }

    /// Queues a cast without waiting (for callbacks, which cannot await).
    pub fn cast_nowait(&self, bytes: impl Into<Vec<u8>>) -> Result<(), MemberError> {
        let (reply, _) = async_channel::bounded(1);
        self.requests
            .try_send(Request::Cast {
                bytes: bytes.into(),
                reply,
            })
            .map_err(|_| MemberError::Left)
    }

    /// Asks to leave without waiting (for callbacks, which cannot await):
    /// `Exit` follows as the last event, as after [`Member::leave`].
    pub fn leave_nowait(&self) -> Result<(), MemberError> {
        self.requests
            .try_send(Request::Leave { reply: None })
            .map_err(|_| MemberError::Left)
    }

    /// Tells the group these members seem to have failed.
    pub async fn suspect(&self, members: &[EndpointId]) -> Result<(), MemberError> {
        let members = members.to_vec();
        self.ask(|reply| Request::Suspect { members, reply })
            .await?
            .map_err(MemberError::Request)
    }

    /// Answers `Block`: later casts go to the next view.
    pub async fn block_ok(&self) -> Result<(), MemberError> {
        self.ask(|reply| Request::BlockOk { reply })
            .await?
            .map_err(MemberError::Request)
    }

    /// Switches the group to another stack at the next view (coordinator only).
    pub async fn change_protocol(&self, stack: &str) -> Result<(), MemberError> {
        let stack = stack.to_string();
        self.ask(|reply| Request::ChangeProtocol { stack, reply })
            .await?
            .map_err(MemberError::Request)
    }

    /// Asks for a new view now (coordinator only).
    pub async fn request_new_view(&self) -> Result<(), MemberError> {
        self.ask(|reply| Request::NewView { reply })
            .await?
            .map_err(MemberError::Request)
    }

    /// Answers `ViewMessageRequest` with the message for the next view.
    pub async fn view_message(&self, bytes: impl Into<Vec<u8>>) -> Result<(), MemberError> {
        let bytes = bytes.into();
        self.ask(|reply| Request::ViewMessage { bytes, reply })
            .await?
            .map_err(MemberError::Request)
    }

    /// Leaves the group; returns once the member has exited.
    pub async fn leave(self) -> Result<(), MemberError> {
        self.ask(|reply| Request::Leave { reply: Some(reply) })
            .await
    }

    /// This member's endpoint id (Maestro's `myEndpID`).
    pub fn my_endpoint(&self) -> EndpointId {
        self.endpoint
    }

    /// Where the member stands.
    pub fn status(&self) -> Status {
        self.shared.status.lock().map_or(Status::Left, |s| *s)
    }

    /// The current view.
    pub fn view(&self) -> Option<ViewInfo> {
        self.shared.view.lock().ok().and_then(|v| v.clone())
    }

    /// A handle for an external failure detector: it can suspect members
    /// and read the view, and it does not keep the member in the group
    /// (dropping it does nothing; dropping the [`Member`] still leaves).
    pub fn suspect_handle(&self) -> SuspectHandle {
        SuspectHandle {
            requests: self.requests.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// What an external failure detector holds: [`Member::suspect`] and
/// [`Member::view`] without owning the member. Made by
/// [`Member::suspect_handle`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct SuspectHandle {
    requests: async_channel::Sender<Request>,
    shared: Arc<Shared>,
}

impl SuspectHandle {
    /// Tells the group these members seem to have failed (see
    /// [`Member::suspect`]).
    pub async fn suspect(&self, members: &[EndpointId]) -> Result<(), MemberError> {
        let (reply, rx) = async_channel::bounded(1);
        let members = members.to_vec();
        self.requests
            .send(Request::Suspect { members, reply })
            .await
            .map_err(|_| MemberError::Left)?;
        rx.recv()
            .await
            .map_err(|_| MemberError::Left)?
            .map_err(MemberError::Request)
    }

    /// The member's current view.
    pub fn view(&self) -> Option<ViewInfo> {
        self.shared.view.lock().ok().and_then(|v| v.clone())
    }

    /// Where the member stands.
    pub fn status(&self) -> Status {
        self.shared.status.lock().map_or(Status::Left, |s| *s)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.status() != Status::Left {
            let _ = self.requests.try_send(Request::Leave { reply: None });
        }
    }
}
