// A crate's own `Result<T>` alias is not procman's: it is not flattened, and the error says what
// to write instead.
use procman::{Shared, shared};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct MyError;

type Result<T> = std::result::Result<T, MyError>;

#[derive(Shared, Default)]
pub struct Parser;

#[shared]
impl Parser {
    pub fn parse(&self, text: String) -> Result<i64> {
        text.parse().map_err(|_| MyError)
    }
}

fn main() {}
