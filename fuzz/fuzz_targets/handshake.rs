//! Both sides of the HMAC handshake against a peer that sends these bytes; neither side may
//! accept (`procman::__private::fuzzing::handshake`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    procman::__private::fuzzing::handshake(data);
});
