// A creator returns a shared type.
use procman::manager;

pub struct Plain {
    pub n: i64,
}

#[manager]
pub struct AppManager;

#[manager]
impl AppManager {
    fn plain(n: i64) -> Plain {
        Plain { n }
    }
}

fn main() {}
