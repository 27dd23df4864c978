use procman::prelude::*;

#[manager]
pub struct AppManager;

#[manager]
impl AppManager {}

fn main() {
    let m = AppManager::new().start().unwrap();
    // A started manager has no `start`: starting twice does not compile.
    let _ = m.start();
}
