//! The sealed frame reader: the bytes read as a sealed stream (a frame that opens is decoded as a
//! request), then sealed frame by frame and read back, where each whole frame must open as it was
//! (`procman::__private::fuzzing::sealed_frames`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    procman::__private::fuzzing::sealed_frames(data);
});
