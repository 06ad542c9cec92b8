//! The micro-protocol layers, one file each, grouped by job as in Ensemble:
//! `app/` (the application's end: Top, Local, Subcast), `trans/`
//! (transport: framing, reliability, stability, fragmentation), `flow/`
//! (flow control), `vsync/` (membership and virtual synchrony), `gossip/`
//! (healing, switching), `order/` (Total, Causal, Agree) and `debug/`
//! (fault injection for tests).
//!
//! # Writing a layer
//! A layer implements [`Layer`]: `up` and `down` handle events, `timeout`
//! runs at the layer's own `deadline`, and `resume` continues work that was
//! cut short for lack of room in the scheduler queue. Handlers get a
//! [`Cx`](crate::stack::Cx) through which they emit events and reach the pool, the view and
//! the shared board.
//!
//! Headers: a layer pushes exactly one header on every cast (and/or every
//! send, as its file documents) that it passes down, and pops exactly one
//! from every cast (send) coming up. It never reads another layer's header.
//! Its own control messages carry their content as the payload of a message
//! the layer allocates, under its own header; its peer recognises them by
//! that header and does not pass them up.
//!
//! Dispatch is static: the stack holds every layer type once, in [`Layers`],
//! and a `match` on [`LayerKind`] picks the one at a position. No trait
//! objects, no heap; a layer absent from the stack costs its (small) idle
//! state and nothing else.

mod app;
mod debug;
mod flow;
mod gossip;
mod order;
mod trans;
mod vsync;

pub(crate) use app::{Local, Subcast, Top};
pub(crate) use debug::DropLayer;
pub(crate) use flow::Flow;
pub(crate) use gossip::{Heal, Switch};
pub(crate) use order::{Agree, Causal, Total};
pub(crate) use trans::{Bottom, Frag, Mnak, Pt2pt, Stable};
pub(crate) use vsync::{Gmp, HELD_MAX, Primary, Slander, Suspect, Sync, flush_ok_extra};

use crate::buffer::Pool;
use crate::stack::{Cx, Down, LayerKind, Up};
use crate::time::Instant;

/// What every layer can do. Defaults pass events through unchanged.
pub(crate) trait Layer<const M: usize> {
    /// Handles an event coming from below.
    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        cx.up(ev);
    }

    /// Handles an event coming from above.
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        cx.down(ev);
    }

    /// When the layer next wants [`Layer::timeout`].
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Runs the layer's timers; called when `deadline` has passed.
    fn timeout(&mut self, _cx: &mut Cx<'_, M>) {}

    /// Whether the layer has work it stopped for lack of queue room.
    fn pending(&self) -> bool {
        false
    }

    /// Continues pending work.
    fn resume(&mut self, _cx: &mut Cx<'_, M>) {}

    /// Gives every buffered message back to the pool (when a stack is torn
    /// down at a view change).
    fn clear(&mut self, _pool: &mut Pool<'_>) {}

    /// Starts the view now in `cx.view`: per-view state back to its initial
    /// value (after `clear`). Layers that carry something across views (Sync's
    /// held casts, Heal's former members) keep it and may act on it here.
    fn install(&mut self, _cx: &mut Cx<'_, M>) {}

    /// The view is about to end: the flush is over and the next view is
    /// about to be installed. A layer that holds messages back (Total,
    /// Causal, Agree) delivers now what it still may, in an order every
    /// survivor of the view computes alike, and frees the rest.
    ///
    /// The scheduler calls it bottom-up, once every event caused by the
    /// layers below has been handled, and calls it again as long as it
    /// emits events (a layer emits only what the queue has room for and
    /// continues at the next call). A call that emits nothing means done.
    fn finish_view(&mut self, _cx: &mut Cx<'_, M>) {}

    /// The largest header the layer pushes on one message.
    fn max_header() -> usize
    where
        Self: Sized;
}

/// One of each layer type. The stack's [`LayerKind`] list says which are in
/// use and in what order.
pub(crate) struct Layers<const M: usize> {
    pub(crate) top: Top,
    pub(crate) primary: Primary,
    pub(crate) switch: Switch,
    pub(crate) heal: Heal<M>,
    pub(crate) gmp: Gmp<M>,
    pub(crate) slander: Slander,
    pub(crate) sync: Sync,
    pub(crate) subcast: Subcast,
    pub(crate) total: Total<M>,
    pub(crate) causal: Causal<M>,
    pub(crate) agree: Agree<M>,
    pub(crate) suspect: Suspect<M>,
    pub(crate) local: Local,
    pub(crate) frag: Frag<M>,
    pub(crate) flow: Flow,
    pub(crate) pt2pt: Pt2pt<M>,
    pub(crate) stable: Stable<M>,
    pub(crate) mnak: Mnak<M>,
    pub(crate) drop: DropLayer,
    pub(crate) bottom: Bottom,
}

/// Runs `$body` with `$l` bound to the layer of kind `$kind` in `$layers`:
/// `on_layer!(kind, mut layers, l => ...)` borrows it mutably,
/// `on_layer!(kind, ref layers, l => ...)` shares it.
macro_rules! on_layer {
    ($kind:expr, mut $layers:expr, $l:ident => $body:expr) => {
        $crate::layers::on_layer!(@arms $kind, (&mut), $layers, $l => $body)
    };
    ($kind:expr, ref $layers:expr, $l:ident => $body:expr) => {
        $crate::layers::on_layer!(@arms $kind, (&), $layers, $l => $body)
    };
    (@arms $kind:expr, ($($b:tt)*), $layers:expr, $l:ident => $body:expr) => {{
        use $crate::stack::LayerKind as K;
        match $kind {
            K::Top => { let $l = $($b)* $layers.top; $body }
            K::Primary => { let $l = $($b)* $layers.primary; $body }
            K::Switch => { let $l = $($b)* $layers.switch; $body }
            K::Heal => { let $l = $($b)* $layers.heal; $body }
            K::Gmp => { let $l = $($b)* $layers.gmp; $body }
            K::Slander => { let $l = $($b)* $layers.slander; $body }
            K::Sync => { let $l = $($b)* $layers.sync; $body }
            K::Subcast => { let $l = $($b)* $layers.subcast; $body }
            K::Total => { let $l = $($b)* $layers.total; $body }
            K::Causal => { let $l = $($b)* $layers.causal; $body }
            K::Agree => { let $l = $($b)* $layers.agree; $body }
            K::Suspect => { let $l = $($b)* $layers.suspect; $body }
            K::Local => { let $l = $($b)* $layers.local; $body }
            K::Frag => { let $l = $($b)* $layers.frag; $body }
            K::Flow => { let $l = $($b)* $layers.flow; $body }
            K::Pt2pt => { let $l = $($b)* $layers.pt2pt; $body }
            K::Stable => { let $l = $($b)* $layers.stable; $body }
            K::Mnak => { let $l = $($b)* $layers.mnak; $body }
            K::Drop => { let $l = $($b)* $layers.drop; $body }
            K::Bottom => { let $l = $($b)* $layers.bottom; $body }
        }
    }};
}
pub(crate) use on_layer;

/// The largest header a layer of this kind pushes on one message.
pub(crate) fn max_header<const M: usize>(kind: LayerKind) -> usize {
    match kind {
        LayerKind::Top => <Top as Layer<M>>::max_header(),
        LayerKind::Primary => <Primary as Layer<M>>::max_header(),
        LayerKind::Switch => <Switch as Layer<M>>::max_header(),
        LayerKind::Heal => <Heal<M> as Layer<M>>::max_header(),
        LayerKind::Gmp => <Gmp<M> as Layer<M>>::max_header(),
        LayerKind::Slander => <Slander as Layer<M>>::max_header(),
        LayerKind::Sync => <Sync as Layer<M>>::max_header(),
        LayerKind::Subcast => <Subcast as Layer<M>>::max_header(),
        LayerKind::Total => <Total<M> as Layer<M>>::max_header(),
        LayerKind::Causal => <Causal<M> as Layer<M>>::max_header(),
        LayerKind::Agree => <Agree<M> as Layer<M>>::max_header(),
        LayerKind::Suspect => <Suspect<M> as Layer<M>>::max_header(),
        LayerKind::Local => <Local as Layer<M>>::max_header(),
        LayerKind::Frag => <Frag<M> as Layer<M>>::max_header(),
        LayerKind::Flow => <Flow as Layer<M>>::max_header(),
        LayerKind::Pt2pt => <Pt2pt<M> as Layer<M>>::max_header(),
        LayerKind::Stable => <Stable<M> as Layer<M>>::max_header(),
        LayerKind::Mnak => <Mnak<M> as Layer<M>>::max_header(),
        LayerKind::Drop => <DropLayer as Layer<M>>::max_header(),
        LayerKind::Bottom => <Bottom as Layer<M>>::max_header(),
    }
}

/// What the layers need to know beyond the parameters.
pub(crate) struct Setup<'a> {
    pub(crate) group: crate::id::GroupId,
    pub(crate) seeds: &'a [core::net::SocketAddr],
    pub(crate) view_msg: bool,
    /// The stack has Sync, so Gmp's views are virtually synchronous.
    pub(crate) sync: bool,
    /// The endpoint may count towards the first primary view.
    pub(crate) founder: bool,
}

impl<const M: usize> Layers<M> {
    pub(crate) fn new(params: &crate::config::Params, setup: &Setup<'_>) -> Self {
        let group = setup.group;
        Layers {
            top: Top::new(setup.view_msg),
            primary: Primary,
            switch: Switch::default(),
            heal: Heal::new(setup.seeds),
            gmp: Gmp::new(setup.sync, setup.founder),
            slander: Slander::default(),
            sync: Sync::default(),
            subcast: Subcast,
            total: Total::new(),
            causal: Causal::new(),
            agree: Agree::new(),
            suspect: Suspect::new(),
            local: Local,
            frag: Frag::new(params),
            flow: Flow::new(params),
            pt2pt: Pt2pt::new(),
            stable: Stable::new(),
            mnak: Mnak::new(),
            drop: DropLayer::new(params),
            bottom: Bottom::new(group),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing;
