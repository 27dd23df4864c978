// `undo` names an exposed method of the same impl block: an unknown name, a private method or
// a client helper are errors at the attribute; so is `undo` on a method that is not exposed.
use procman::{Shared, shared};

#[derive(Shared, Default)]
pub struct Stack {
    items: Vec<i64>,
}

#[shared]
impl Stack {
    #[shared(undo = push_back)]
    pub fn pop(&mut self) -> Option<i64> {
        self.items.pop()
    }
    #[shared(undo = restore)]
    pub fn take(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.items)
    }
    #[shared(undo = push_twice)]
    pub fn first(&mut self) -> Option<i64> {
        self.items.first().copied()
    }
    pub fn push(&mut self, item: i64) {
        self.items.push(item);
    }
    fn restore(&mut self, items: Vec<i64>) {
        self.items = items;
    }
    #[shared(undo = push)]
    fn pop_front(&mut self) -> Option<i64> {
        (!self.items.is_empty()).then(|| self.items.remove(0))
    }
    #[shared(client)]
    pub fn push_twice(&self, item: i64) -> procman::Result<()> {
        self.push(item)?;
        self.push(item)
    }
}

fn main() {}
