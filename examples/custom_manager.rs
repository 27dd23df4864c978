//! The specification's "Customized managers" example: `NewManager` with a `Foo` creator.
//!
//! `foo.bar()` and `foo.baz()` run in the manager process, which prints `BAR` and `BAZ`.
//!
//! Run: `cargo run --example custom_manager`

#![allow(clippy::disallowed_names)] // `foo` is the specification's name

use procman::prelude::*;

/// `FooClass` of the specification.
#[derive(Shared, Debug, Default)]
pub struct FooClass;

#[shared]
impl FooClass {
    /// Prints `BAR` in the process that holds the object.
    pub fn bar(&self) {
        println!("BAR");
    }

    /// Prints `BAZ` in the process that holds the object.
    pub fn baz(&self) {
        println!("BAZ");
    }
}

/// `NewManager(BaseManager)` of the specification.
#[manager]
pub struct NewManager;

#[manager]
impl NewManager {
    /// `Foo = CreatorMethod(FooClass)`.
    #[manager(typeid = "Foo")]
    pub fn foo() -> FooClass {
        FooClass
    }
}

fn main() -> procman::Result<()> {
    procman::init();
    let manager = NewManager::new().start()?;
    let foo = manager.foo()?;
    foo.bar()?; // prints 'BAR' (in the manager process)
    foo.baz()?; // prints 'BAZ'
    manager.shutdown()?;
    Ok(())
}
