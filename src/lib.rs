//! The examples (`examples/`) and the multi-process integration tests (`tests/`) of procman.
//!
//! Nothing to use here: run `cargo run --release --example tour` or `cargo test --workspace`.
