// An argument must be able to travel: the error is at the argument's type, once.
use procman::{Shared, shared};

#[derive(Shared)]
pub struct Log;

#[shared]
impl Log {
    pub fn attach(&self, file: std::fs::File) {
        drop(file);
    }
}

fn main() {}
