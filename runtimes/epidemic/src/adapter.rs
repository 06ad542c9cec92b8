//! The functions every runtime adapter offers, written once.
//!
//! Rust cannot re-export a generic function with its type parameter
//! fixed, so each adapter would otherwise forward every role's function
//! by hand. [`adapter_functions!`](crate::adapter_functions) writes those
//! forwarders, doc comments included, into the adapter's module: its
//! users see plain `start_node`, `register`... documented there.

/// Defines, in the module where it is invoked, the epidemic service's
/// functions on one runtime: `start_node`, `register`, `start_proxy`,
/// `monitor`, `discover`, `link` and `join_group`, each forwarding to the
/// generic function of this crate with the runtime fixed.
///
/// The arguments are the [`Runtime`](crate::Runtime), then what
/// `join_group` uses: the adapter's function that joins a group and runs
/// the member (`async fn(JoinOptions) -> Result<Running, JoinError>`), and
/// its `Running` type (with a public `member` field).
///
/// ```ignore
/// // In consort-tokio's `epidemic` module:
/// consort_epidemic::adapter_functions!(Tokio, crate::spawn, crate::Running);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! adapter_functions {
    ($runtime:ty, $spawn:path, $running:ty) => {
        /// Starts an MSS node (see [`consort_epidemic::start_node`]).
        pub async fn start_node(
            options: $crate::NodeOptions,
        ) -> ::core::result::Result<($crate::Node, $crate::NodeEvents), $crate::EpidemicError> {
            $crate::start_node::<$runtime>(options).await
        }

        /// Registers a member service and answers its probes; returns once an MSS
        /// registered it (see [`consort_epidemic::register`]).
        pub async fn register(
            options: $crate::ServiceOptions,
        ) -> ::core::result::Result<
            ($crate::Registration, $crate::ServiceEvents),
            $crate::EpidemicError,
        > {
            $crate::register::<$runtime>(options).await
        }

        /// Starts a proxy; returns once an MSS registered it (see
        /// [`consort_epidemic::start_proxy`]).
        pub async fn start_proxy(
            options: $crate::ProxyOptions,
        ) -> ::core::result::Result<($crate::Proxy, $crate::ProxyEvents), $crate::EpidemicError> {
            $crate::start_proxy::<$runtime>(options).await
        }

        /// Attaches a monitor (see [`consort_epidemic::monitor`]).
        pub async fn monitor(
            options: $crate::MonitorOptions,
        ) -> ::core::result::Result<$crate::Updates, $crate::EpidemicError> {
            $crate::monitor::<$runtime>(options).await
        }

        /// The member services' addresses in a context: seeds for a group (see
        /// [`consort_epidemic::discover`]).
        pub async fn discover(
            options: &$crate::GroupOptions,
        ) -> ::core::result::Result<::std::vec::Vec<::std::net::SocketAddr>, $crate::EpidemicError>
        {
            $crate::discover::<$runtime>(options).await
        }

        /// Registers a group member as a member service and suspects the members
        /// the epidemic service declares Failed (see [`consort_epidemic::link`]).
        pub async fn link(
            member: &$crate::__private::Member,
            options: &$crate::GroupOptions,
        ) -> ::core::result::Result<$crate::Link, $crate::EpidemicError> {
            $crate::link::<$runtime>(member, options).await
        }

        #[doc = concat!(
                    "Joins a group through the epidemic service: [`discover`] its members\n",
                    "(they become the seeds, replacing any in `join`), join with\n",
                    "[`", stringify!($spawn), "`], then [`link`] the member."
                )]
        pub async fn join_group(
            join: $crate::__private::JoinOptions,
            group: &$crate::GroupOptions,
        ) -> ::core::result::Result<($running, $crate::Link), $crate::EpidemicError> {
            let seeds = discover(group).await?;
            let running = $spawn(join.seeds(seeds.iter().map(::std::string::ToString::to_string)))
                .await
                .map_err($crate::EpidemicError::Join)?;
            let link = link(&running.member, group).await?;
            ::core::result::Result::Ok((running, link))
        }
    };
}
