// `#[shared]` goes on an impl block; the type takes `#[derive(Shared)]`.
use procman::shared;

#[shared]
pub struct Counter {
    n: i64,
}

fn main() {
    let _ = Counter { n: 1 }.n;
}
