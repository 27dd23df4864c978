//! procman's own measurements, one file a group of rows (`--only <group>`):
//!
//! - `call.rs`: `call`, a proxy call (fast path on and off) beside a raw ping-pong of the same
//!   sizes, beside a spin-then-futex ping-pong and beside Python;
//! - `manager.rs`: `manager`, `queue` and `clients`, the objects of a running manager and many
//!   clients (calls per second and CPU time per call, fast path on and off);
//! - `server.rs`: `start` and `memory`, the server's start-up and its memory per object;
//! - `shm.rs`: `shm`, LocalManager's shared-memory objects beside raw atomics and `memcpy`;
//! - `bulk.rs`: `bulk`, a `Vec<u8>` echo of 8 B to 8 MiB beside `memcpy` of the same size;
//! - `asynchronous.rs`: `async`, an async proxy call beside the blocking one, and 1,000 async
//!   callers beside 64 blocking threads;
//! - `bench_manager.rs`: the manager they measure and the `Counter` it serves.

pub(crate) mod asynchronous;
mod bench_manager;
pub(crate) mod bulk;
pub(crate) mod call;
pub(crate) mod manager;
pub(crate) mod server;
pub(crate) mod shm;
