//! One message body decoded as request, reply, byte string, error and call arguments
//! (`procman::__private::fuzzing::messages`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    procman::__private::fuzzing::messages(data);
});
