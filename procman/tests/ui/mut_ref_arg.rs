// Arguments are copied to the manager: `&mut` arguments could not write back.
use procman::{Shared, shared};

#[derive(Shared)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    pub fn fill(&self, out: &mut Vec<i64>) {
        out.push(self.n);
    }
    pub fn names(&self, names: Vec<&str>) -> usize {
        names.len()
    }
}

fn main() {}
