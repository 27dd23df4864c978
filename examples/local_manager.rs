//! The specification's "Shared memory managers" examples: a `'256p'` string, an `'hh'` struct
//! and an `'i'` array in shared memory, then the same objects used by a child process.
//!
//! Run: `cargo run --example local_manager`

use procman::shm::{FixedStr, SharedArray, SharedStruct, SharedValue};
use procman::{LocalManager, Process};

/// The specification's `'hh'`: two short integers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Pair {
    a: i16,
    b: i16,
}

type Shared = (SharedValue<FixedStr<256>>, SharedStruct<Pair>, SharedArray<i32>);

/// A child process writes through the same handles; the parent sees the writes.
fn in_child((string, pair, arr): Shared) {
    string.set_str("written by a child").unwrap();
    pair.set(Pair { a: -1, b: -2 });
    arr.set(9, 42).unwrap();
}

fn main() -> procman::Result<()> {
    procman::init();
    let manager = LocalManager::new()?;

    // >>> string = manager.SharedValue('256p', 'hello')
    let string = manager.shared_string::<256>("hello")?;
    println!("{string:?}");
    string.set_str("goodbye")?;
    println!("{string:?}");

    // >>> struct = manager.SharedStruct('hh', (0, 0))
    let pair = manager.shared_struct(Pair { a: 0, b: 0 })?;
    println!("{pair:?}");
    pair.set(Pair { a: 1, b: 2 });
    println!("{pair:?}");

    // >>> arr = manager.SharedArray('i', [0]*10)
    let arr = manager.shared_array(&[0i32; 10])?;
    println!("{arr:?}");
    arr.set_range(0, &[1, 2, 3, 4, 5])?; // arr[:5] = [1, 2, 3, 4, 5]
    println!("{arr:?}");
    println!("{:?}", arr.get_range(..)?); // arr[:]
    println!("{:?}", arr.to_vec()); // arr.tolist()
    println!("{:?}", &arr.bytes()[..16]); // arr.tostring()

    Process::spawn(in_child, (string.clone(), pair.clone(), arr.clone()))?.join()?;
    println!("after the child: {:?} {:?} {:?}", string.get_string(), pair.get(), arr.get(9)?);
    manager.shutdown()
}
