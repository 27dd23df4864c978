// A return value must be able to travel back: the error is at the return type, once.
use procman::{Shared, shared};

#[derive(Shared)]
pub struct Log;

#[shared]
impl Log {
    pub fn file(&self) -> std::fs::File {
        unimplemented!()
    }
}

fn main() {}
