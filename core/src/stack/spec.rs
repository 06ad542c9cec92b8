//! Which layers make a stack: from properties or from an explicit string.
//!
//! Two ways in, as in Ensemble and Maestro:
//! - properties (`"Frag:Flow"`): what the application wants; [`StackSpec::from_properties`]
//!   chooses the layers and their order;
//! - an explicit stack (`"Top:Local:Frag:Pt2pt:Stable:Mnak:Bottom"`): the layers
//!   themselves, top first, checked by [`StackSpec::from_layers`].
//!
//! Either way the result is validated: each layer states what it needs
//! above and below it, and a missing need is an error naming both layers.

use crate::error::{ConfigError, name};

/// The most layers one stack may have.
pub const MAX_LAYERS: usize = 24;

/// One layer of a stack (Ensemble's layer names, in Rust casing).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LayerKind {
    /// The application's end of the stack.
    Top,
    /// Marks views primary (majority of the last primary view).
    Primary,
    /// Carries a protocol change into the next view.
    Switch,
    /// Announces views so that joiners and partitions merge.
    Heal,
    /// Group membership: elections, view changes, leaves, merges.
    Gmp,
    /// Shares failure suspicions with the coordinator.
    Slander,
    /// Virtual synchrony: blocks, holds next-view casts, delivers the cut.
    Sync,
    /// Sends to a subset of the view, carried as casts (`send_to_many`).
    Subcast,
    /// Total order: a sequencer (the coordinator) orders every cast.
    Total,
    /// Causal order: vector timestamps, delivery once causally ready.
    Causal,
    /// Agreed (safe) delivery: a cast is delivered once every member has it.
    Agree,
    /// Failure detection by pings.
    Suspect,
    /// Delivers a member's own casts back to it.
    Local,
    /// Fragments large messages and reassembles them.
    Frag,
    /// Window-based flow control on casts and sends.
    Flow,
    /// Reliable FIFO point-to-point sends.
    Pt2pt,
    /// Stability detection: the acknowledgement matrix, gossiped.
    Stable,
    /// Reliable FIFO multicast with negative acknowledgements.
    Mnak,
    /// Test layer: drops received messages at a seeded random rate.
    Drop,
    /// The network's end of the stack: framing, view and group filtering.
    Bottom,
}

impl LayerKind {
    /// Every layer this version provides.
    pub const ALL: [LayerKind; 20] = [
        LayerKind::Top,
        LayerKind::Primary,
        LayerKind::Switch,
        LayerKind::Heal,
        LayerKind::Gmp,
        LayerKind::Slander,
        LayerKind::Sync,
        LayerKind::Suspect,
        LayerKind::Local,
        LayerKind::Frag,
        LayerKind::Flow,
        LayerKind::Pt2pt,
        LayerKind::Stable,
        LayerKind::Mnak,
        LayerKind::Drop,
        LayerKind::Bottom,
        // Later additions go last: a layer's code is its index here.
        LayerKind::Subcast,
        LayerKind::Total,
        LayerKind::Causal,
        LayerKind::Agree,
    ];

    /// The layer's name in stack strings.
    pub const fn name(self) -> &'static str {
        match self {
            LayerKind::Top => "Top",
            LayerKind::Primary => "Primary",
            LayerKind::Switch => "Switch",
            LayerKind::Heal => "Heal",
            LayerKind::Gmp => "Gmp",
            LayerKind::Slander => "Slander",
            LayerKind::Sync => "Sync",
            LayerKind::Suspect => "Suspect",
            LayerKind::Local => "Local",
            LayerKind::Frag => "Frag",
            LayerKind::Flow => "Flow",
            LayerKind::Pt2pt => "Pt2pt",
            LayerKind::Stable => "Stable",
            LayerKind::Mnak => "Mnak",
            LayerKind::Drop => "Drop",
            LayerKind::Bottom => "Bottom",
            LayerKind::Subcast => "Subcast",
            LayerKind::Total => "Total",
            LayerKind::Causal => "Causal",
            LayerKind::Agree => "Agree",
        }
    }

    /// The layer's code on the wire (a view's stack, a foreign message's
    /// addressee): its index in [`LayerKind::ALL`].
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0) as u8
    }

    /// The layer with this wire code.
    pub fn from_code(code: u8) -> Option<LayerKind> {
        Self::ALL.get(code as usize).copied()
    }

    /// Parses a layer name (ASCII case-insensitive, as Ensemble's were).
    pub fn parse(s: &str) -> Result<LayerKind, ConfigError> {
        let s = s.trim();
        if let Some(k) = Self::ALL.iter().find(|k| k.name().eq_ignore_ascii_case(s)) {
            return Ok(*k);
        }
        if ENSEMBLE_LAYERS.iter().any(|l| l.eq_ignore_ascii_case(s)) {
            return Err(ConfigError::LayerNotAvailable(name(s)));
        }
        Err(ConfigError::UnknownLayer(name(s)))
    }

    /// Layers that must sit somewhere below this one, and why.
    const fn needs_below(self) -> &'static [LayerKind] {
        match self {
            // Reassembly relies on fragments arriving reliably and in order.
            LayerKind::Frag => &[LayerKind::Pt2pt, LayerKind::Mnak],
            // The cast window is measured against stability, the send window against Pt2pt acks.
            LayerKind::Flow => &[LayerKind::Pt2pt, LayerKind::Stable],
            // Local stands in for Mnak's missing loopback.
            LayerKind::Local => &[LayerKind::Mnak],
            // Stable acknowledges what Mnak has received.
            LayerKind::Stable => &[LayerKind::Mnak],
            // A view change reports and agrees on what Mnak delivered.
            LayerKind::Gmp => &[LayerKind::Mnak],
            // The flush waits for Pt2pt's acknowledgements and Mnak's cut.
            LayerKind::Sync => &[LayerKind::Pt2pt, LayerKind::Mnak],
            // Slander shares what Suspect suspects.
            LayerKind::Slander => &[LayerKind::Suspect],
            // These work on the views Gmp makes.
            LayerKind::Heal | LayerKind::Primary | LayerKind::Switch => &[LayerKind::Gmp],
            // Ordering sees a member's own casts only through Local's
            // loopback, in the order they went down.
            LayerKind::Total | LayerKind::Causal => &[LayerKind::Local],
            // Safe delivery waits for Stable's stability vector.
            LayerKind::Agree => &[LayerKind::Local, LayerKind::Stable],
            // A subcast is a cast that non-destinations drop.
            LayerKind::Subcast => &[LayerKind::Mnak],
            _ => &[],
        }
    }

    /// Layers that must sit somewhere above this one, and why.
    const fn needs_above(self) -> &'static [LayerKind] {
        match self {
            // Mnak frees its retransmission buffers only on stability.
            LayerKind::Mnak => &[LayerKind::Stable],
            // Drop tests the reliability layers, so it must sit under them.
            LayerKind::Drop => &[LayerKind::Mnak, LayerKind::Pt2pt],
            // Sync's and Suspect's and Slander's findings go to Gmp.
            LayerKind::Sync | LayerKind::Suspect | LayerKind::Slander => &[LayerKind::Gmp],
            _ => &[],
        }
    }
}

/// Ensemble layers that consort recognises by name but does not provide yet:
/// naming one gives [`ConfigError::LayerNotAvailable`] rather than
/// [`ConfigError::UnknownLayer`].
const ENSEMBLE_LAYERS: &[&str] = &[
    "Leave",
    "Inter",
    "Intra",
    "Elect",
    "Merge",
    "Top_appl",
    "Present",
    "Vsync",
    "Sequencer",
    "Seqbb",
    "Tops",
    "Collect",
    "Mflow",
    "Pt2ptw",
    "Window",
    "Credit",
    "Exchange",
    "Encrypt",
    "Rekey",
    "Migrate",
    "Xfer",
    "Pbcast",
    "Gcast",
    "Chk_fifo",
    "Chk_total",
    "Chk_causal",
    "Chk_sync",
];

/// A group property (Maestro's list, plus Ensemble's `Local`, `Slander` and `Drop`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Property {
    /// Agreed (safe) delivery.
    Agree,
    /// Group-membership properties.
    Gmp,
    /// View synchronization.
    Sync,
    /// Totally ordered messages.
    Total,
    /// Partition healing.
    Heal,
    /// Protocol switching.
    Switch,
    /// Authentication.
    Auth,
    /// Causally ordered broadcasts.
    Causal,
    /// Subcast point-to-point messages.
    Subcast,
    /// Fragmentation and reassembly.
    Frag,
    /// Scalability.
    Scale,
    /// Failure detection.
    Suspect,
    /// Flow control.
    Flow,
    /// Process migration.
    Migrate,
    /// Encryption of application data.
    Privacy,
    /// Rekeying the group.
    Rekey,
    /// Primary partition detection.
    Primary,
    /// Local delivery of a member's own casts (always on in consort, see below).
    Local,
    /// Members share failure suspicions.
    Slander,
    /// Randomized message dropping, for tests.
    Drop,
}

impl Property {
    const ALL: [(Property, &'static str); 20] = [
        (Property::Agree, "Agree"),
        (Property::Gmp, "Gmp"),
        (Property::Sync, "Sync"),
        (Property::Total, "Total"),
        (Property::Heal, "Heal"),
        (Property::Switch, "Switch"),
        (Property::Auth, "Auth"),
        (Property::Causal, "Causal"),
        (Property::Subcast, "Subcast"),
        (Property::Frag, "Frag"),
        (Property::Scale, "Scale"),
        (Property::Suspect, "Suspect"),
        (Property::Flow, "Flow"),
        (Property::Migrate, "Migrate"),
        (Property::Privacy, "Privacy"),
        (Property::Rekey, "Rekey"),
        (Property::Primary, "Primary"),
        (Property::Local, "Local"),
        (Property::Slander, "Slander"),
        (Property::Drop, "Drop"),
    ];

    /// The property's name in property strings.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("?", |(_, n)| n)
    }

    /// Parses a property name (ASCII case-insensitive).
    pub fn parse(s: &str) -> Result<Property, ConfigError> {
        let s = s.trim();
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s))
            .map(|(p, _)| *p)
            .ok_or_else(|| ConfigError::UnknownProperty(name(s)))
    }
}

/// A validated stack: layers from top (index 0) to bottom.
///
/// ```
/// use consort_core::stack::{LayerKind, StackSpec};
/// let s = StackSpec::from_properties("Frag:Flow").unwrap();
/// assert_eq!(s.to_string(), "Top:Local:Frag:Flow:Pt2pt:Stable:Mnak:Bottom");
/// assert_eq!(StackSpec::from_layers(&s.to_string()).unwrap(), s);
/// assert!(StackSpec::from_layers("Top:Mnak:Bottom").is_err()); // Mnak needs Stable above
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StackSpec {
    layers: heapless::Vec<LayerKind, MAX_LAYERS>,
}

impl StackSpec {
    /// Chooses the stack that provides `properties` (colon-separated).
    ///
    /// Reliable FIFO casts and sends with self-delivery (`Local`) are always
    /// provided: unlike Ensemble, consort delivers a member's own casts to
    /// it unless an explicit stack leaves `Local` out.
    pub fn from_properties(properties: &str) -> Result<StackSpec, ConfigError> {
        let mut want = heapless::Vec::<Property, 32>::new();
        for p in properties.split(':').filter(|p| !p.trim().is_empty()) {
            let p = Property::parse(p)?;
            if !Self::AVAILABLE.contains(&p) {
                return Err(ConfigError::PropertyNotAvailable(p));
            }
            let _ = want.push(p);
        }
        let has = |p| want.contains(&p);
        // Ensemble's order (type/property.ml), with consort's layer names.
        let order = [
            (LayerKind::Top, true),
            (LayerKind::Primary, has(Property::Primary)),
            (LayerKind::Switch, has(Property::Switch)),
            (LayerKind::Heal, has(Property::Heal)),
            (LayerKind::Gmp, has(Property::Gmp)),
            (LayerKind::Slander, has(Property::Slander)),
            (LayerKind::Sync, has(Property::Sync)),
            // Below Sync (casts it holds enter them in the next view),
            // above Local (a member's own casts come back up through them)
            // and above Frag (they order whole messages). Subcast is above
            // the ordering layers, so subcasts are ordered like casts;
            // Agree is below Total, so Total orders only safe casts (and
            // its order messages are safe too); Suspect below them all
            // sees arrivals at once.
            (LayerKind::Subcast, has(Property::Subcast)),
            (LayerKind::Total, has(Property::Total)),
            (LayerKind::Causal, has(Property::Causal)),
            (LayerKind::Agree, has(Property::Agree)),
            (LayerKind::Suspect, has(Property::Suspect)),
            (LayerKind::Local, true),
            (LayerKind::Frag, has(Property::Frag)),
            (LayerKind::Flow, has(Property::Flow)),
            (LayerKind::Pt2pt, true),
            (LayerKind::Stable, true),
            (LayerKind::Mnak, true),
            (LayerKind::Drop, has(Property::Drop)),
            (LayerKind::Bottom, true),
        ];
        let mut layers = heapless::Vec::new();
        for (kind, wanted) in order {
            if wanted {
                // Cannot overflow: `order` is shorter than MAX_LAYERS.
                let _ = layers.push(kind);
            }
        }
        let spec = StackSpec { layers };
        spec.validate().map_err(|e| match e {
            // Name the property the user asked for, not the layer.
            ConfigError::NeedsBelow { layer, needs } | ConfigError::NeedsAbove { layer, needs } => {
                ConfigError::PropertyNeeds {
                    property: layer_property(layer),
                    needs: layer_property(needs),
                }
            }
            other => other,
        })?;
        Ok(spec)
    }

    /// Properties this version provides.
    pub const AVAILABLE: [Property; 15] = [
        Property::Gmp,
        Property::Sync,
        Property::Total,
        Property::Causal,
        Property::Agree,
        Property::Subcast,
        Property::Heal,
        Property::Switch,
        Property::Suspect,
        Property::Slander,
        Property::Primary,
        Property::Frag,
        Property::Flow,
        Property::Local,
        Property::Drop,
    ];

    /// Parses and validates an explicit stack string, top layer first.
    pub fn from_layers(stack: &str) -> Result<StackSpec, ConfigError> {
        let names = || stack.split(':').filter(|l| !l.trim().is_empty());
        let mut layers = heapless::Vec::new();
        for l in names() {
            let kind = LayerKind::parse(l)?;
            if layers.push(kind).is_err() {
                return Err(ConfigError::TooManyLayers(names().count()));
            }
        }
        let spec = StackSpec { layers };
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.layers;
        if l.first() != Some(&LayerKind::Top) {
            return Err(ConfigError::MissingEnd(LayerKind::Top));
        }
        if l.last() != Some(&LayerKind::Bottom) {
            return Err(ConfigError::MissingEnd(LayerKind::Bottom));
        }
        for (i, kind) in l.iter().enumerate() {
            if l[..i].contains(kind) {
                return Err(ConfigError::DuplicateLayer(*kind));
            }
            if (*kind == LayerKind::Top && i != 0)
                || (*kind == LayerKind::Bottom && i + 1 != l.len())
            {
                return Err(ConfigError::MissingEnd(*kind));
            }
            if let Some(needs) = kind.needs_below().iter().find(|n| !l[i + 1..].contains(n)) {
                return Err(ConfigError::NeedsBelow {
                    layer: *kind,
                    needs: *needs,
                });
            }
            // Self-delivery must come after Sync holds a cast for the next
            // view, or a member would deliver it to itself a view early.
            if *kind == LayerKind::Local && l[i + 1..].contains(&LayerKind::Sync) {
                return Err(ConfigError::NeedsAbove {
                    layer: LayerKind::Local,
                    needs: LayerKind::Sync,
                });
            }
            // With membership, what the ordering layers hold at the end of
            // a view is only the same at every survivor after Sync's flush;
            // and a subcast held for the next view must be held above the
            // layer that writes its destinations in that view's ranks.
            let orders = matches!(
                kind,
                LayerKind::Total | LayerKind::Causal | LayerKind::Agree | LayerKind::Subcast
            );
            if orders && l.contains(&LayerKind::Gmp) && !l[..i].contains(&LayerKind::Sync) {
                return Err(ConfigError::NeedsAbove {
                    layer: *kind,
                    needs: LayerKind::Sync,
                });
            }
            if let Some(needs) = kind.needs_above().iter().find(|n| !l[..i].contains(n)) {
                return Err(ConfigError::NeedsAbove {
                    layer: *kind,
                    needs: *needs,
                });
            }
        }
        Ok(())
    }

    /// A stack of these layers, top first, validated.
    pub fn from_kinds(kinds: &[LayerKind]) -> Result<StackSpec, ConfigError> {
        let mut layers = heapless::Vec::new();
        for k in kinds {
            layers
                .push(*k)
                .map_err(|_| ConfigError::TooManyLayers(kinds.len()))?;
        }
        let spec = StackSpec { layers };
        spec.validate()?;
        Ok(spec)
    }

    /// The layers, top first.
    pub fn layers(&self) -> &[LayerKind] {
        &self.layers
    }

    /// Whether the stack has this layer.
    pub fn contains(&self, kind: LayerKind) -> bool {
        self.layers.contains(&kind)
    }
}

/// The property that brings a layer, for error messages.
fn layer_property(kind: LayerKind) -> Property {
    match kind {
        LayerKind::Primary => Property::Primary,
        LayerKind::Switch => Property::Switch,
        LayerKind::Heal => Property::Heal,
        LayerKind::Gmp => Property::Gmp,
        LayerKind::Slander => Property::Slander,
        LayerKind::Sync => Property::Sync,
        LayerKind::Suspect => Property::Suspect,
        LayerKind::Frag => Property::Frag,
        LayerKind::Flow => Property::Flow,
        LayerKind::Drop => Property::Drop,
        LayerKind::Subcast => Property::Subcast,
        LayerKind::Total => Property::Total,
        LayerKind::Causal => Property::Causal,
        LayerKind::Agree => Property::Agree,
        _ => Property::Local,
    }
}

impl core::fmt::Display for StackSpec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            f.write_str(l.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn properties_choose_the_fifo_stack() {
        let s = StackSpec::from_properties("Frag:Flow").unwrap();
        assert_eq!(
            s.to_string(),
            "Top:Local:Frag:Flow:Pt2pt:Stable:Mnak:Bottom"
        );
        let s = StackSpec::from_properties("").unwrap();
        assert_eq!(s.to_string(), "Top:Local:Pt2pt:Stable:Mnak:Bottom");
        let s = StackSpec::from_properties("flow:FRAG:Drop").unwrap();
        assert_eq!(
            s.to_string(),
            "Top:Local:Frag:Flow:Pt2pt:Stable:Mnak:Drop:Bottom"
        );
    }

    #[test]
    fn unknown_and_unavailable_properties_are_named() {
        assert_eq!(
            StackSpec::from_properties("Frag:Fragg"),
            Err(ConfigError::UnknownProperty(name("Fragg")))
        );
        assert_eq!(
            StackSpec::from_properties("Gmp:Scale"),
            Err(ConfigError::PropertyNotAvailable(Property::Scale))
        );
        assert_eq!(
            StackSpec::from_properties("Sync:Frag"),
            Err(ConfigError::PropertyNeeds {
                property: Property::Sync,
                needs: Property::Gmp
            })
        );
        assert_eq!(
            StackSpec::from_properties("Gmp:Slander"),
            Err(ConfigError::PropertyNeeds {
                property: Property::Slander,
                needs: Property::Suspect
            })
        );
    }

    #[test]
    fn ensembles_default_properties_give_the_virtually_synchronous_stack() {
        let s = StackSpec::from_properties("Gmp:Sync:Heal:Frag:Suspect:Flow:Slander").unwrap();
        assert_eq!(
            s.to_string(),
            "Top:Heal:Gmp:Slander:Sync:Suspect:Local:Frag:Flow:Pt2pt:Stable:Mnak:Bottom"
        );
        let s =
            StackSpec::from_properties("Gmp:Sync:Heal:Frag:Suspect:Flow:Slander:Primary:Switch")
                .unwrap();
        assert_eq!(
            s.to_string(),
            "Top:Primary:Switch:Heal:Gmp:Slander:Sync:Suspect:Local:Frag:Flow:Pt2pt:Stable:Mnak:Bottom"
        );
        assert_eq!(StackSpec::from_layers(&s.to_string()), Ok(s));
        // Local above Sync would deliver a held cast to its sender a view early.
        assert_eq!(
            StackSpec::from_layers("Top:Gmp:Local:Sync:Pt2pt:Stable:Mnak:Bottom"),
            Err(ConfigError::NeedsAbove {
                layer: LayerKind::Local,
                needs: LayerKind::Sync
            })
        );
    }

    #[test]
    fn ordering_properties_sit_between_sync_and_local() {
        let s = StackSpec::from_properties("Gmp:Sync:Heal:Frag:Suspect:Flow:Total").unwrap();
        assert_eq!(
            s.to_string(),
            "Top:Heal:Gmp:Sync:Total:Suspect:Local:Frag:Flow:Pt2pt:Stable:Mnak:Bottom"
        );
        let s = StackSpec::from_properties("Gmp:Sync:Frag:Suspect:Flow:Agree:Total:Causal:Subcast")
            .unwrap();
        assert_eq!(
            s.to_string(),
            "Top:Gmp:Sync:Subcast:Total:Causal:Agree:Suspect:Local:Frag:Flow:Pt2pt:Stable:Mnak:Bottom"
        );
        assert_eq!(StackSpec::from_layers(&s.to_string()), Ok(s));
        // A static group orders without membership.
        let s = StackSpec::from_properties("Frag:Total").unwrap();
        assert_eq!(
            s.to_string(),
            "Top:Total:Local:Frag:Pt2pt:Stable:Mnak:Bottom"
        );
        // With membership, the flush must come first.
        assert_eq!(
            StackSpec::from_properties("Gmp:Total"),
            Err(ConfigError::PropertyNeeds {
                property: Property::Total,
                needs: Property::Sync
            })
        );
        assert_eq!(
            StackSpec::from_layers("Top:Gmp:Total:Sync:Local:Pt2pt:Stable:Mnak:Bottom"),
            Err(ConfigError::NeedsAbove {
                layer: LayerKind::Total,
                needs: LayerKind::Sync
            })
        );
        // Ordering needs the member's own casts looped back by Local.
        assert_eq!(
            StackSpec::from_layers("Top:Local:Total:Pt2pt:Stable:Mnak:Bottom"),
            Err(ConfigError::NeedsBelow {
                layer: LayerKind::Total,
                needs: LayerKind::Local
            })
        );
        assert!(StackSpec::from_layers("Top:Agree:Causal:Local:Pt2pt:Stable:Mnak:Bottom").is_ok());
    }

    #[test]
    fn layer_codes_round_trip() {
        for k in LayerKind::ALL {
            assert_eq!(LayerKind::from_code(k.code()), Some(k));
        }
        assert_eq!(LayerKind::from_code(200), None);
    }

    #[test]
    fn explicit_stacks_are_checked() {
        let e = |s: &str| StackSpec::from_layers(s).unwrap_err();
        assert_eq!(
            e("Top:Frag:Pt2pt:Mnakk:Bottom"),
            ConfigError::UnknownLayer(name("Mnakk"))
        );
        assert_eq!(
            e("Top:Sequencer:Bottom"),
            ConfigError::LayerNotAvailable(name("Sequencer"))
        );
        assert_eq!(
            e("Top:Frag:Pt2pt:Mnak:Bottom"),
            ConfigError::NeedsAbove {
                layer: LayerKind::Mnak,
                needs: LayerKind::Stable
            }
        );
        assert_eq!(
            e("Top:Pt2pt:Frag:Stable:Mnak:Bottom"),
            ConfigError::NeedsBelow {
                layer: LayerKind::Frag,
                needs: LayerKind::Pt2pt
            }
        );
        assert_eq!(
            e("Local:Top:Bottom"),
            ConfigError::MissingEnd(LayerKind::Top)
        );
        assert_eq!(e("Top:Pt2pt"), ConfigError::MissingEnd(LayerKind::Bottom));
        assert_eq!(
            e("Top:Pt2pt:Pt2pt:Bottom"),
            ConfigError::DuplicateLayer(LayerKind::Pt2pt)
        );
        assert_eq!(
            e("Top:Drop:Pt2pt:Stable:Mnak:Bottom"),
            ConfigError::NeedsAbove {
                layer: LayerKind::Drop,
                needs: LayerKind::Mnak
            }
        );
        let long = "Top:".repeat(30);
        assert_eq!(e(&long), ConfigError::TooManyLayers(30));
    }

    #[test]
    fn minimal_stacks_are_accepted() {
        assert!(StackSpec::from_layers("Top:Bottom").is_ok());
        assert!(StackSpec::from_layers("Top:Pt2pt:Bottom").is_ok());
        assert!(StackSpec::from_layers("top:local:frag:pt2pt:stable:mnak:drop:bottom").is_ok());
    }
}
