// A return value must be able to travel back: the error is at the return type, once.
use procman::{Shared, shared};

// It has a fingerprint and can be sent, but not received.
#[derive(serde::Serialize, procman::Schema)]
pub struct Handle {
    fd: i32,
}

#[derive(Shared)]
pub struct Log;

#[shared]
impl Log {
    pub fn handle(&self) -> Handle {
        Handle { fd: 0 }
    }
}

fn main() {}
