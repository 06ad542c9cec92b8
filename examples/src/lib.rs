//! Shared bits of consort's examples.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Membership parameters for demos on one host: failures are noticed in
/// about a second instead of Ensemble's fifteen.
pub const FAST_PARAMS: &str = "suspect_sweep=100ms:suspect_max_idle=8:gmp_retry=30ms:gmp_timeout=800ms:heal_sweep=200ms:stable_sweep=100ms";

/// A short, stable name for an endpoint id in printed output.
pub fn short(id: consort_core::EndpointId) -> String {
    format!("{:04x}", id.0 & 0xffff)
}
