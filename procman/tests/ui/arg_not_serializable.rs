// An argument must be able to travel: the error is at the argument's type, once.
use procman::{Shared, shared};

// It has a fingerprint, but no way to be encoded.
#[derive(procman::Schema)]
pub struct Handle {
    fd: i32,
}

#[derive(Shared)]
pub struct Log;

#[shared]
impl Log {
    pub fn attach(&self, handle: Handle) {
        drop(handle.fd);
    }
}

fn main() {}
