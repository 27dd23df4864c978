// An argument that can be sent but not received by the server: the error is at its type.
use procman::{Shared, shared};

#[derive(serde::Serialize, procman::Schema)]
pub struct Entry {
    line: String,
}

#[derive(Shared)]
pub struct Log;

#[shared]
impl Log {
    pub fn append(&self, entry: Entry) {
        drop(entry.line);
    }
}

fn main() {}
