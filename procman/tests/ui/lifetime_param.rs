// Shared types live in a manager for as long as any proxy does: no lifetime parameters.
use procman::Shared;

#[derive(Shared)]
pub struct Borrowed<'a> {
    name: &'a str,
}

fn main() {}
