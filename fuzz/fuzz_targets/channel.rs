//! The shared-memory channel's reader: the first 16 bytes are the positions a hostile client
//! writes into the channel's header, the rest what it leaves in the ring; the server's reader
//! must fail or yield frames from inside the ring, and those decode or fail like any others
//! (`procman::__private::fuzzing::channel`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    procman::__private::fuzzing::channel(data);
});
