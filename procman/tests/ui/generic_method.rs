// The manager decodes arguments into concrete types: exposed methods are not generic.
use procman::{Shared, shared};

#[derive(Shared)]
pub struct Store;

#[shared]
impl Store {
    pub fn put<T: serde::Serialize>(&self, value: T) {
        drop(value);
    }
    pub fn show(&self, value: impl std::fmt::Display) -> String {
        value.to_string()
    }
}

fn main() {}
