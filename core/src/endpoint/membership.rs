//! The membership downcalls and what an application can ask of the
//! endpoint about its state.

use super::{AppItem, Endpoint};
use crate::error::ConfigError;
use crate::id::{EndpointId, RankSet};
use crate::stack::{Down, LayerKind, StackSpec};
use crate::time::Instant;

/// Where a member stands (the Ensemble client API's member state diagram).
///
/// ```text
/// Pre --join--> Joining --view--> Normal --block_ok--> Blocked --view--> Normal
///                                   |                                    
///                                 leave --> Leaving --exit--> Left
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status {
    /// Not joined yet (the std Member API before `join`; an endpoint never is).
    Pre,
    /// Built by [`Endpoint::join`]; its first view not yet delivered.
    Joining,
    /// In a view.
    Normal,
    /// After `block_ok`, until the next view: casts go to the next view.
    Blocked,
    /// After `leave`, until `Exit`.
    Leaving,
    /// After `Exit`: nothing more happens.
    Left,
}

/// Which view a cast or send goes out in (Maestro's `sendView`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendView {
    /// The current view: delivered in it.
    Current,
    /// The group is blocked for a view change: held, and delivered in the next view.
    Next,
}

/// Why a membership request was refused.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RequestError {
    /// Only the coordinator may ask this (Maestro: non-coordinators are ignored;
    /// consort says so).
    NotCoordinator,
    /// The stack has no layer that does this.
    NotInStack(LayerKind),
    /// The stack asked for does not validate.
    Stack(ConfigError),
    /// There is no pending request for a view message.
    NotAsked,
    /// The member has left.
    Exited,
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RequestError::NotCoordinator => write!(f, "only the coordinator may do this"),
            RequestError::NotInStack(k) => write!(f, "the stack has no {k:?} layer"),
            RequestError::Stack(e) => write!(f, "{e}"),
            RequestError::NotAsked => write!(f, "no view message was asked for"),
            RequestError::Exited => write!(f, "this member has left the group"),
        }
    }
}

impl core::error::Error for RequestError {}

impl<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>> Endpoint<M, B> {
    /// Where this member stands.
    pub fn status(&self) -> Status {
        self.status
    }

    fn live(&self) -> Result<(), RequestError> {
        if self.status == Status::Left {
            Err(RequestError::Exited)
        } else {
            Ok(())
        }
    }

    fn needs(&self, kind: LayerKind) -> Result<(), RequestError> {
        if self.spec.contains(kind) {
            Ok(())
        } else {
            Err(RequestError::NotInStack(kind))
        }
    }

    /// Answers [`Event::Block`](crate::Event::Block): from now until the
    /// next view, casts and sends are held and go out in it. The view change
    /// waits for this answer.
    pub fn block_ok(&mut self, now: Instant) -> Result<(), RequestError> {
        self.reclaim();
        self.live()?;
        self.needs(LayerKind::Sync)?;
        if self.status == Status::Normal {
            self.status = Status::Blocked;
        }
        self.enter(now, Down::BlockOk);
        Ok(())
    }

    /// Leaves the group: the others get a view without this member, and this
    /// member's last event is [`Event::Exit`](crate::Event::Exit). Its
    /// casts so far still reach every member that stays.
    pub fn leave(&mut self, now: Instant) -> Result<(), RequestError> {
        self.reclaim();
        self.live()?;
        if self.status == Status::Leaving {
            return Ok(());
        }
        self.status = Status::Leaving;
        if !self.spec.contains(LayerKind::Gmp) {
            // Without membership there is no one to tell: exit at once.
            let _ = self.app.push_back(AppItem::Exit);
            self.status = Status::Left;
            return Ok(());
        }
        self.enter(now, Down::Leave);
        Ok(())
    }

    /// Tells the group these members seem to have failed (Maestro's
    /// external failure detector, `suspect`): the coordinator removes them.
    pub fn suspect(&mut self, now: Instant, members: &[EndpointId]) -> Result<(), RequestError> {
        self.reclaim();
        self.live()?;
        self.needs(LayerKind::Gmp)?;
        let mut set = RankSet::EMPTY;
        for id in members {
            if let Some(r) = self.view.rank_of(*id) {
                set.insert(r);
            }
        }
        set.remove(self.view.my_rank());
        if !set.is_empty() {
            self.enter(now, Down::Suspect(set));
        }
        Ok(())
    }

    /// Asks for a new view now (Maestro's `requestNewView`): coordinator only.
    pub fn request_new_view(&mut self, now: Instant) -> Result<(), RequestError> {
        self.reclaim();
        self.live()?;
        self.needs(LayerKind::Gmp)?;
        if self.view.my_rank() != crate::id::Rank::COORDINATOR {
            return Err(RequestError::NotCoordinator);
        }
        self.enter(now, Down::RequestView);
        Ok(())
    }

    /// Switches the whole group to another stack at the next view
    /// (Maestro's `changeProtocol`): coordinator only, with Switch.
    pub fn change_protocol(&mut self, now: Instant, stack: &str) -> Result<(), RequestError> {
        self.reclaim();
        self.live()?;
        self.needs(LayerKind::Switch)?;
        if self.view.my_rank() != crate::id::Rank::COORDINATOR {
            return Err(RequestError::NotCoordinator);
        }
        let spec = StackSpec::from_layers(stack).map_err(RequestError::Stack)?;
        // The group must still be able to change views with it.
        if !spec.contains(LayerKind::Gmp) {
            return Err(RequestError::Stack(ConfigError::NeedsBelow {
                layer: LayerKind::Switch,
                needs: LayerKind::Gmp,
            }));
        }
        Self::geometry(
            &spec,
            &self.params,
            self.pool.slot_size(),
            self.pool.capacity(),
        )
        .map_err(RequestError::Stack)?;
        self.layers.switch.request(spec);
        self.enter(now, Down::RequestView);
        Ok(())
    }

    /// Answers [`Event::ViewMessage`](crate::Event::ViewMessage): the bytes
    /// every member of the next view receives with it (Maestro's
    /// `grpMemb_ViewMsg_Callback`; how a group hands its state to joiners).
    pub fn view_message(&mut self, now: Instant, message: &[u8]) -> Result<(), RequestError> {
        self.reclaim();
        self.live()?;
        if self.shared.proposal.is_none() {
            return Err(RequestError::NotAsked);
        }
        let msg = if message.is_empty() {
            None
        } else {
            let per_slot = self.geometry.frag_payload;
            let mut pool = crate::buffer::Pool::new(
                &mut self.storage.as_mut()[..self.tables_at],
                &mut self.pool,
            );
            Some(pool.alloc_with(0, per_slot, message).map_err(|_| {
                RequestError::Stack(ConfigError::PoolTooSmall {
                    needed: message.len().div_ceil(per_slot),
                    available: self.pool.free(),
                })
            })?)
        };
        self.enter(now, Down::Ready { msg });
        Ok(())
    }
}
