// The method that `undo` names takes exactly one argument (the result) besides `&self`, and
// is another method.
use procman::{Shared, shared};

#[derive(Shared, Default)]
pub struct Stack {
    items: Vec<i64>,
}

#[shared]
impl Stack {
    #[shared(undo = insert)]
    pub fn pop(&mut self) -> Option<i64> {
        self.items.pop()
    }
    #[shared(undo = clear)]
    pub fn len(&mut self) -> usize {
        self.items.len()
    }
    #[shared(undo = swap)]
    pub fn swap(&mut self, item: i64) -> i64 {
        std::mem::replace(&mut self.items[0], item)
    }
    pub fn insert(&mut self, index: usize, item: i64) {
        self.items.insert(index, item);
    }
    pub fn clear(&mut self) {
        self.items.clear();
    }
    #[shared(undo = "insert")]
    pub fn last(&self) -> Option<i64> {
        self.items.last().copied()
    }
}

fn main() {}
