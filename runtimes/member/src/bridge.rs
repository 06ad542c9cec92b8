//! The member's task: the core's async driver, with an application that
//! turns channel requests into downcalls and events into owned values.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consort_core::driver::{Application, Clock, Transport, drive};
use consort_core::profile::{Profile, Server, Small, storage_bytes};
use consort_core::{
    Config, Endpoint, EndpointId, Event, Instant, RequestError, SendError, SendView, Status,
};

use crate::error::JoinError;
use crate::member::{Events, Member, MemberEvent, Shared, ViewInfo};
use crate::options::{Capacity, JoinOptions, Protocol};

/// A request from a handle to the member's task.
#[derive(Debug)]
pub(crate) enum Request {
    Cast {
        bytes: Vec<u8>,
        reply: async_channel::Sender<Result<SendView, SendError>>,
    },
    Send {
        to: EndpointId,
        bytes: Vec<u8>,
        reply: async_channel::Sender<Result<SendView, SendError>>,
    },
    Suspect {
        members: Vec<EndpointId>,
        reply: async_channel::Sender<Result<(), RequestError>>,
    },
    BlockOk {
        reply: async_channel::Sender<Result<(), RequestError>>,
    },
    ChangeProtocol {
        stack: String,
        reply: async_channel::Sender<Result<(), RequestError>>,
    },
    NewView {
        reply: async_channel::Sender<Result<(), RequestError>>,
    },
    ViewMessage {
        bytes: Vec<u8>,
        reply: async_channel::Sender<Result<(), RequestError>>,
    },
    Leave {
        reply: Option<async_channel::Sender<()>>,
    },
}

/// Events the task keeps for an application that does not read them, before
/// it stops taking them from the endpoint (which then sheds load upstream).
const EVENT_BACKLOG: usize = 4096;
/// How often a paused task looks again at the application's event queue.
const RECHECK: Duration = Duration::from_millis(10);

/// The task's application side.
struct Bridge<C> {
    clock: C,
    requests: async_channel::Receiver<Request>,
    events: async_channel::Sender<MemberEvent>,
    /// Casts and sends not yet accepted, in order.
    messages: VecDeque<Request>,
    /// Other requests, answered at the next step.
    control: VecDeque<Request>,
    shared: Arc<Shared>,
    joined: Option<async_channel::Sender<Result<(), JoinError>>>,
    /// With `join_timeout`: wait for a view with another member until then.
    join_deadline: Option<Instant>,
    leaving: Vec<async_channel::Sender<()>>,
    started: Instant,
}

impl<C: Clock> Bridge<C> {
    fn forward<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>>(
        &mut self,
        ep: &mut Endpoint<M, B>,
        now: Instant,
    ) -> bool {
        let mut exited = false;
        while self.events.len() < EVENT_BACKLOG {
            let Some(ev) = ep.poll_event() else { break };
            let out = match ev {
                Event::View { view, message } => {
                    let info =
                        ViewInfo::from_view(view, message.chunks().flatten().copied().collect());
                    let others = info.nmembers() > 1;
                    if let Ok(mut v) = self.shared.view.lock() {
                        *v = Some(info.clone());
                    }
                    if self.join_deadline.is_none() || others {
                        if let Some(j) = self.joined.take() {
                            let _ = j.try_send(Ok(()));
                        }
                    }
                    MemberEvent::View(Box::new(info))
                }
                Event::Cast {
                    endpoint, payload, ..
                } => MemberEvent::Cast {
                    from: endpoint,
                    bytes: payload.chunks().flatten().copied().collect(),
                },
                Event::Send {
                    endpoint, payload, ..
                } => MemberEvent::Send {
                    from: endpoint,
                    bytes: payload.chunks().flatten().copied().collect(),
                },
                Event::Block => MemberEvent::Block,
                Event::ViewMessage { members } => MemberEvent::ViewMessageRequest {
                    members: members.iter().map(|m| m.id).collect(),
                },
                Event::Heartbeat { time } => MemberEvent::Heartbeat(Duration::from_micros(
                    (time - self.started).as_micros() as u64,
                )),
                Event::Exit => {
                    exited = true;
                    MemberEvent::Exit
                }
                // Writable: the message queue is retried at every step anyway.
                _ => continue,
            };
            let block = out == MemberEvent::Block;
            let _ = self.events.try_send(out);
            if block && self.shared.auto_block_ok {
                let _ = ep.block_ok(now);
            }
        }
        self.publish_status(ep);
        exited
    }

    fn publish_status<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>>(&self, ep: &Endpoint<M, B>) {
        if let Ok(mut s) = self.shared.status.lock() {
            *s = ep.status();
        }
    }

    fn reply<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>, T>(
        &self,
        ep: &Endpoint<M, B>,
        to: &async_channel::Sender<T>,
        result: T,
    ) {
        self.publish_status(ep);
        let _ = to.try_send(result);
    }

    fn answer<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>>(
        &mut self,
        ep: &mut Endpoint<M, B>,
        now: Instant,
    ) {
        while let Some(req) = self.control.pop_front() {
            // Each answer goes back after the shared status says what the
            // request did, so a caller reading `status()` next sees it.
            match req {
                Request::Suspect { members, reply } => {
                    let r = ep.suspect(now, &members);
                    self.reply(ep, &reply, r);
                }
                Request::BlockOk { reply } => {
                    let r = ep.block_ok(now);
                    self.reply(ep, &reply, r);
                }
                Request::ChangeProtocol { stack, reply } => {
                    let r = ep.change_protocol(now, &stack);
                    self.reply(ep, &reply, r);
                }
                Request::NewView { reply } => {
                    let r = ep.request_new_view(now);
                    self.reply(ep, &reply, r);
                }
                Request::ViewMessage { bytes, reply } => {
                    let r = ep.view_message(now, &bytes);
                    self.reply(ep, &reply, r);
                }
                Request::Leave { reply } => {
                    if let Some(r) = reply {
                        self.leaving.push(r);
                    }
                    let _ = ep.leave(now);
                    self.publish_status(ep);
                }
                other => self.messages.push_back(other),
            }
        }
        // Casts and sends in order; one that must wait holds the rest back.
        while let Some(req) = self.messages.front() {
            let result = match req {
                Request::Cast { bytes, .. } => ep.cast(now, bytes),
                Request::Send { to, bytes, .. } => ep.send_to(now, *to, bytes),
                _ => Ok(SendView::Current),
            };
            if result == Err(SendError::WouldBlock) {
                break;
            }
            if let Some(Request::Cast { reply, .. } | Request::Send { reply, .. }) =
                self.messages.pop_front()
            {
                let _ = reply.try_send(result);
            }
        }
    }
}

impl<C: Clock, const M: usize, B: AsMut<[u8]> + AsRef<[u8]>> Application<Endpoint<M, B>>
    for Bridge<C>
{
    type Output = ();

    fn step(&mut self, ep: &mut Endpoint<M, B>, now: Instant) -> ControlFlow<()> {
        loop {
            let exited = self.forward(ep, now);
            if exited || ep.status() == Status::Left {
                for r in self.leaving.drain(..) {
                    let _ = r.try_send(());
                }
                if let Some(j) = self.joined.take() {
                    let _ = j.try_send(Err(JoinError::Stopped));
                }
                return ControlFlow::Break(());
            }
            if self.join_deadline.is_some_and(|d| now >= d) {
                if let Some(j) = self.joined.take() {
                    let _ = j.try_send(Err(JoinError::NoGroupFound));
                    let _ = ep.leave(now);
                }
                self.join_deadline = None;
            }
            let before = (self.control.len(), self.messages.len());
            self.answer(ep, now);
            // Answering may have produced events (self-deliveries, Exit).
            if (self.control.len(), self.messages.len()) == before
                || self.events.len() >= EVENT_BACKLOG
            {
                return ControlFlow::Continue(());
            }
        }
    }

    async fn wake(&mut self) {
        let paused = self.events.len() >= EVENT_BACKLOG || !self.messages.is_empty();
        let recheck = async {
            if paused {
                self.clock.sleep_until(self.clock.now() + RECHECK).await;
            } else if let Some(d) = self.join_deadline {
                self.clock.sleep_until(d).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let request = async {
            match self.requests.recv().await {
                Ok(r) => Some(r),
                // Every handle is gone: the member leaves.
                Err(_) => {
                    std::future::pending::<()>().await;
                    None
                }
            }
        };
        if let embassy_futures::select::Either::First(Some(r)) =
            embassy_futures::select::select(request, recheck).await
        {
            self.control.push_back(r);
        }
    }
}

/// A member ready to run: its handle, its events, the task to spawn, and
/// a future that completes when it has joined.
pub struct Prepared<S, L> {
    /// The handle.
    pub member: Member,
    /// The events.
    pub events: Events,
    /// The task: spawn the variant present on the runtime.
    pub task: Task<S, L>,
    /// Completes with the first view (or, with `join_timeout`, the first
    /// view with another member).
    pub joined: Joined,
}

/// The member's task, for one of the capacity profiles.
pub enum Task<S, L> {
    /// `Capacity::Small`.
    Small(S),
    /// `Capacity::Server`.
    Server(L),
}

/// Waits for a member to have joined.
pub struct Joined {
    rx: async_channel::Receiver<Result<(), JoinError>>,
}

impl Joined {
    /// Completes once joined, or with why not.
    pub async fn wait(self) -> Result<(), JoinError> {
        self.rx.recv().await.unwrap_or(Err(JoinError::Stopped))
    }
}

/// Builds a member over `transport` (bound at `local`) and `clock`: the
/// runtime adapter then spawns `task` and awaits `joined`.
pub fn prepare<T, C>(
    options: &JoinOptions,
    transport: T,
    clock: C,
    local: SocketAddr,
    seeds: &[SocketAddr],
) -> Result<
    Prepared<impl Future<Output = ()> + use<T, C>, impl Future<Output = ()> + use<T, C>>,
    JoinError,
>
where
    T: Transport,
    C: Clock + Clone,
{
    let address = local;
    let mut id_bytes = [0u8; 16];
    // Identities and seeds come from the operating system's entropy, never from time.
    getrandom::fill(&mut id_bytes).map_err(|e| JoinError::Resolve {
        address: "getrandom".into(),
        error: std::io::Error::other(e.to_string()),
    })?;
    let endpoint = options.endpoint.unwrap_or(EndpointId(u64::from_le_bytes(
        id_bytes[..8].try_into().unwrap_or([1; 8]),
    )));
    let seed = u64::from_le_bytes(id_bytes[8..].try_into().unwrap_or([2; 8]));
    let params = options.params_string();
    let mut config = Config::new(&options.group, endpoint, seed)
        .params(&params)
        .seeds(seeds)
        .view_messages(options.view_messages)
        .founder(options.founder);
    config = match &options.protocol {
        Protocol::Properties(p) => config.properties(p),
        Protocol::Stack(s) => config.stack(s),
    };
    let (req_tx, req_rx) = async_channel::bounded(1024);
    let (ev_tx, ev_rx) = async_channel::unbounded();
    let (join_tx, join_rx) = async_channel::bounded(1);
    let shared = Arc::new(Shared {
        status: Mutex::new(Status::Joining),
        view: Mutex::new(None),
        auto_block_ok: options.auto_block_ok,
    });
    let started = clock.now();
    let bridge = Bridge {
        clock: clock.clone(),
        requests: req_rx,
        events: ev_tx,
        messages: VecDeque::new(),
        control: VecDeque::new(),
        shared: shared.clone(),
        joined: Some(join_tx),
        join_deadline: options
            .join_timeout
            .filter(|_| !seeds.is_empty())
            .map(|t| started + t),
        leaving: Vec::new(),
        started,
    };
    // Each profile is built in a function of its own: an unoptimised build
    // reserves stack for every local of a function, and the server endpoint
    // is a value of more than 100 KB.
    let task = match options.capacity {
        Capacity::Small => Task::Small(run_task(
            build_small(&config, address)?,
            transport,
            clock,
            bridge,
        )),
        Capacity::Server => Task::Server(run_task(
            build_server(&config, address)?,
            transport,
            clock,
            bridge,
        )),
    };
    Ok(Prepared {
        member: Member {
            requests: req_tx,
            shared,
            endpoint,
        },
        events: Events { rx: ev_rx },
        task,
        joined: Joined { rx: join_rx },
    })
}

/// A small-profile endpoint, on the heap.
#[inline(never)]
fn build_small(
    config: &Config<'_>,
    address: SocketAddr,
) -> Result<Box<Endpoint<{ Small::MEMBERS }, Vec<u8>>>, JoinError> {
    let storage = vec![0u8; storage_bytes(Small::MEMBERS, Small::SLOT_SIZE, Small::SLOTS)];
    Ok(Box::new(Endpoint::join(
        config,
        address,
        storage,
        Small::SLOT_SIZE,
    )?))
}

/// A server-profile endpoint, on the heap.
#[inline(never)]
fn build_server(
    config: &Config<'_>,
    address: SocketAddr,
) -> Result<Box<Endpoint<{ Server::MEMBERS }, Vec<u8>>>, JoinError> {
    let storage = vec![0u8; storage_bytes(Server::MEMBERS, Server::SLOT_SIZE, Server::SLOTS)];
    Ok(Box::new(Endpoint::join(
        config,
        address,
        storage,
        Server::SLOT_SIZE,
    )?))
}

async fn run_task<const M: usize, T: Transport, C: Clock>(
    mut ep: Box<Endpoint<M, Vec<u8>>>,
    mut transport: T,
    clock: C,
    mut bridge: Bridge<C>,
) {
    let mut buf = vec![0u8; ep.slot_size()];
    if let Err(e) = drive(&mut *ep, &mut transport, &clock, &mut bridge, &mut buf).await {
        log::error!("member task stopped: {e:?}");
    }
}
