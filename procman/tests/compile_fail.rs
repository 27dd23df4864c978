//! The macros' errors: each mistake gives one message, at the user's tokens.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p procman --test compile_fail`,
//! then read every `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
