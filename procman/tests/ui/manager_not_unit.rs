// A manager is declared as a unit struct: `#[manager]` gives it its fields.
use procman::manager;

#[manager]
pub struct AppManager {
    name: String,
}

fn main() {}
