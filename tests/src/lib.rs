//! Helpers for consort's integration tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Membership parameters for tests on one host: failures noticed in well
/// under a second.
pub const FAST: &str = "suspect_sweep=50ms:suspect_max_idle=6:gmp_retry=20ms:gmp_timeout=500ms:heal_sweep=100ms:stable_sweep=100ms";

/// The path of a binary of `consort-examples`, built by `cargo build`.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    target.join(profile).join(name)
}
