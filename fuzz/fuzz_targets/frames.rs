//! Frames as a manager server reads them from a connection, each decoded as a request and
//! re-encoded (`procman::__private::fuzzing::server_frames`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    procman::__private::fuzzing::server_frames(data);
});
