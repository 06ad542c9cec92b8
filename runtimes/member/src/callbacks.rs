//! Maestro-style callbacks, for code ported from Maestro's `GroupMember`.

use std::time::Duration;

use consort_core::EndpointId;

use crate::member::{Events, Member, MemberEvent, ViewInfo};

/// Callbacks named after Maestro's (`grpMemb_*_Callback`), all no-ops by
/// default. Driven by [`run`]; a callback cannot await, so it sends with
/// [`Member::cast_nowait`].
pub trait GroupMember {
    /// `grpMemb_ReceiveCast_Callback`.
    fn receive_cast(&mut self, _member: &Member, _from: EndpointId, _msg: &[u8]) {}
    /// `grpMemb_ReceiveSend_Callback`.
    fn receive_send(&mut self, _member: &Member, _from: EndpointId, _msg: &[u8]) {}
    /// `grpMemb_ViewMsg_Callback`: at the coordinator, the message for the
    /// next view (requires `JoinOptions::view_messages`).
    fn view_msg(&mut self, _member: &Member, _members: &[EndpointId]) -> Vec<u8> {
        Vec::new()
    }
    /// `grpMemb_AcceptedView_Callback`.
    fn accepted_view(&mut self, _member: &Member, _view: &ViewInfo) {}
    /// `grpMemb_Block_Callback`: casts made here still go in the current
    /// view; returning is the `block_ok` (with `auto_block_ok(false)`).
    fn block(&mut self, _member: &Member) {}
    /// `grpMemb_Exit_Callback`: the last callback.
    fn exit(&mut self) {}
    /// `grpMemb_Heartbeat_Callback`, with the time since the member started.
    fn heartbeat(&mut self, _member: &Member, _time: Duration) {}
}

/// Drives the callbacks until the member exits.
pub async fn run<G: GroupMember>(member: &Member, events: &mut Events, callbacks: &mut G) {
    while let Some(ev) = events.next().await {
        match ev {
            MemberEvent::View(v) => callbacks.accepted_view(member, &v),
            MemberEvent::Cast { from, bytes } => callbacks.receive_cast(member, from, &bytes),
            MemberEvent::Send { from, bytes } => callbacks.receive_send(member, from, &bytes),
            MemberEvent::Block => {
                callbacks.block(member);
                if !member.shared.auto_block_ok {
                    let _ = member.block_ok().await;
                }
            }
            MemberEvent::ViewMessageRequest { members } => {
                let msg = callbacks.view_msg(member, &members);
                let _ = member.view_message(msg).await;
            }
            MemberEvent::Heartbeat(t) => callbacks.heartbeat(member, t),
            MemberEvent::Exit => {
                callbacks.exit();
                return;
            }
        }
    }
}
