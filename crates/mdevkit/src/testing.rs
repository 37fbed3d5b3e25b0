//! Test-only support: the one proptest configuration every property test uses.
//!
//! Compiled for mdevkit's own tests and, through the `testing` feature that other crates
//! enable only as a dev-dependency, for theirs (mdevctl's integration tests); hidden from
//! the documented API and absent from every normal build.
//!
//! Under `cargo test` (and CI) each property runs a fixed number of cases from a fixed
//! seed, so a run is repeatable and takes well under a second. `MDEVKIT_SOAK=<cases>`
//! turns it into a soak: that many cases per property from a fresh seed, printed so that
//! `PROPTEST_RNG_SEED=<seed>` with the same `MDEVKIT_SOAK` replays a failure (see
//! docs/reliability.md). Failures are not persisted to files: a found case becomes a named
//! unit test instead.

use proptest::test_runner::{Config, RngSeed};

/// The seed of every non-soak run.
const SEED: u64 = 0x6d64_6576_6b69_7421;

/// The configuration for a property that runs `cases` cases in a normal test run.
pub fn proptest_config(cases: u32) -> Config {
    let base = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let Some(soak) = std::env::var("MDEVKIT_SOAK")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return Config {
            cases,
            rng_seed: RngSeed::Fixed(SEED),
            ..base
        };
    };
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(SEED)
        });
    eprintln!("soak: {soak} cases per property, PROPTEST_RNG_SEED={seed}");
    Config {
        cases: soak,
        rng_seed: RngSeed::Fixed(seed),
        ..base
    }
}

/// Whether an error message is exactly one non-empty line.
pub fn is_one_line(text: &str) -> bool {
    !text.is_empty() && !text.contains(['\n', '\r'])
}
