//! Bad configuration gives a clear error, not a hang or a panic.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use consort_tests::FAST;
use consort_tokio::{JoinError, JoinOptions, join};

#[tokio::test]
async fn an_unknown_property_is_named() {
    let err = join(
        JoinOptions::new("g")
            .properties("Gmp:Sync:Fragg")
            .bind("127.0.0.1:0"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, JoinError::Config(_)));
    assert_eq!(
        err.to_string(),
        "bad configuration: unknown property \"Fragg\""
    );
}

#[tokio::test]
async fn an_unavailable_property_is_named() {
    let err = join(
        JoinOptions::new("g")
            .properties("Gmp:Sync:Scale")
            .bind("127.0.0.1:0"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad configuration: property Scale is not available in this version of consort"
    );
}

#[tokio::test]
async fn a_port_in_use_is_reported_with_the_address() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = join(JoinOptions::new("g").bind(addr.to_string()))
        .await
        .unwrap_err();
    match &err {
        JoinError::Bind { address, error } => {
            assert_eq!(*address, addr);
            assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("cannot bind {addr}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn seed_hosts_that_do_not_answer_give_no_group_found() {
    // A bound socket that never answers stands for an unreachable host.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let opts = JoinOptions::new("g")
        .bind("127.0.0.1:0")
        .params(FAST)
        .seeds([silent.local_addr().unwrap().to_string()])
        .join_timeout(Duration::from_millis(500));
    let err = join(opts).await.unwrap_err();
    assert!(matches!(err, JoinError::NoGroupFound), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no member of the group answered at the seed hosts in time"
    );
}

#[tokio::test]
async fn a_seed_host_that_does_not_resolve_is_named() {
    let err = join(
        JoinOptions::new("g")
            .bind("127.0.0.1:0")
            .seeds(["no-such-host.invalid:7000"]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, JoinError::Resolve { address, .. } if address == "no-such-host.invalid:7000"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_wildcard_bind_needs_an_advertised_address() {
    let err = join(JoinOptions::new("g").bind("0.0.0.0:0"))
        .await
        .unwrap_err();
    assert!(matches!(err, JoinError::NoAdvertisedAddress(_)), "{err:?}");
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let err = join(
        JoinOptions::new("g")
            .bind("127.0.0.1:0")
            .params("suspect_swep=1s"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad configuration: unknown parameter \"suspect_swep\""
    );
}
