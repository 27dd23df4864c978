//! Bulk payloads: byte arguments and results of exposed methods and creators travel as one
//! byte string each, through a manager in a child process, and come back equal, whatever their
//! size and shape. The untyped `call_method` reaches the same methods with serde's own types.

use procman::prelude::*;
use procman::{ByteBuf, Error};

procman::child_entry_point!();

/// A user's struct with a byte field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
pub struct Chunk {
    pub offset: u64,
    pub data: ByteBuf,
}

#[derive(Shared, Debug, Default)]
pub struct Store {
    /// What the creator was given.
    seed: Vec<u8>,
    key: [u8; 32],
}

#[shared]
impl Store {
    pub fn echo(&self, b: Vec<u8>) -> Vec<u8> {
        b
    }

    pub fn echo_slice(&self, b: &[u8]) -> Vec<u8> {
        b.to_vec()
    }

    pub fn echo_key(&self, k: [u8; 32]) -> Vec<u8> {
        k.to_vec()
    }

    /// An array longer than serde's own arrays (32).
    pub fn sum_block(&self, block: [u8; 100]) -> u64 {
        block.iter().map(|&b| u64::from(b)).sum()
    }

    pub fn echo_opt(&self, b: Option<Vec<u8>>) -> Option<Vec<u8>> {
        b
    }

    pub fn checked(&self, b: Vec<u8>) -> Result<Vec<u8>, String> {
        if b.is_empty() { Err("empty".into()) } else { Ok(b) }
    }

    pub fn flattened(&self, b: Vec<u8>) -> procman::Result<Vec<u8>> {
        if b.first() == Some(&0xff) { Err(Error::usage("starts with 0xff")) } else { Ok(b) }
    }

    pub fn borrowed(&self) -> &[u8] {
        &self.seed
    }

    pub fn key(&self) -> Vec<u8> {
        self.key.to_vec()
    }

    pub fn tagged(&self, tag: u32, b: Vec<u8>, after: String) -> (u32, usize, String) {
        (tag, b.len(), after)
    }

    pub fn chunk(&self, c: Chunk) -> Chunk {
        Chunk { offset: c.offset + 1, data: c.data }
    }
}

#[manager]
pub struct BulkManager;

#[manager]
impl BulkManager {
    fn store(seed: Vec<u8>, key: [u8; 32]) -> Store {
        Store { seed, key }
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

#[test]
fn byte_payloads_of_every_size_and_shape_come_back_equal() {
    every_size_and_shape(BulkManager::new().start().unwrap());
}

/// The same over the Unix socket, where a large frame is written with vectored writes from
/// where its parts lie (the caller's bytes among them) and may be written in pieces.
#[test]
fn byte_payloads_of_every_size_and_shape_come_back_equal_over_the_socket() {
    every_size_and_shape(BulkManager::new().transport(procman::Transport::Socket).start().unwrap());
}

fn every_size_and_shape(m: BulkManager) {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
    let s = m.store(pattern(1000), key).unwrap();
    for len in [0, 1, 8, 127, 128, 1024, 64 * 1024, 1 << 20, 3 << 20] {
        let data = pattern(len);
        assert_eq!(s.echo(data.clone()).unwrap(), data, "echo of {len} bytes");
        assert_eq!(s.echo_slice(&data).unwrap(), data, "slice of {len} bytes");
        assert_eq!(s.echo_opt(Some(data.clone())).unwrap(), Some(data.clone()), "option of {len} bytes");
        assert_eq!(s.flattened(data.clone()).unwrap(), data, "flattened result of {len} bytes");
    }
    assert_eq!(s.echo_opt(None).unwrap(), None);
    assert_eq!(s.echo_key(key).unwrap(), key);
    assert_eq!(s.sum_block([3; 100]).unwrap(), 300);
    assert_eq!(s.checked(pattern(5)).unwrap(), Ok(pattern(5)));
    assert_eq!(s.checked(Vec::new()).unwrap(), Err("empty".to_string()));
    assert!(matches!(s.flattened(vec![0xff]), Err(Error::Remote { .. } | Error::Usage(_))));
    // The creator's arguments, and a borrowed result.
    assert_eq!(s.borrowed().unwrap(), pattern(1000));
    assert_eq!(s.key().unwrap(), key);
    // Byte strings between other arguments.
    assert_eq!(s.tagged(7, pattern(300), "after".into()).unwrap(), (7, 300, "after".to_string()));
    // A struct with a `ByteBuf` field.
    let c = Chunk { offset: 1, data: ByteBuf::from(pattern(1 << 20)) };
    assert_eq!(s.chunk(c.clone()).unwrap(), Chunk { offset: 2, ..c });
    m.shutdown().unwrap();
}

#[test]
fn the_untyped_call_reaches_byte_methods_with_serde_types() {
    let m = BulkManager::new().start().unwrap();
    let s = m.store(Vec::new(), [0; 32]).unwrap();
    let base = s.base();
    let data = pattern(4096);
    // For postcard a `Vec<u8>` and a byte string are the same bytes: both arrive.
    assert_eq!(base.call_method::<_, Vec<u8>>("echo", &(data.clone(),)).unwrap(), data);
    assert_eq!(base.call_method::<_, ByteBuf>("echo", &(ByteBuf::from(data.clone()),)).unwrap().into_vec(), data);
    assert_eq!(base.call_method::<_, Option<Vec<u8>>>("echo_opt", &(Some(data.clone()),)).unwrap(), Some(data));
    // A `[u8; N]` is a byte string (a length, then N bytes), not serde's tuple.
    let key = [5u8; 32];
    assert_eq!(base.call_method::<_, Vec<u8>>("echo_key", &(ByteBuf::from(&key[..]),)).unwrap(), key);
    assert!(matches!(base.call_method::<_, Vec<u8>>("echo_key", &(key,)), Err(Error::Decode { .. })));
    // A byte string of the wrong length for an array is refused.
    let short = ByteBuf::from(&key[..31]);
    assert!(matches!(base.call_method::<_, Vec<u8>>("echo_key", &(short,)), Err(Error::Decode { .. })));
    m.shutdown().unwrap();
}

#[test]
fn large_payloads_cross_sealed_tcp_frames_too() {
    let m = BulkManager::new().address("127.0.0.1:0").start().unwrap();
    let s = m.store(pattern(200 << 10), [1; 32]).unwrap();
    for len in [0, 100, 64 << 10, (64 << 10) + 1, 1 << 20] {
        let data = pattern(len);
        assert_eq!(s.echo(data.clone()).unwrap(), data, "echo of {len} bytes over sealed TCP");
    }
    assert_eq!(s.borrowed().unwrap(), pattern(200 << 10));
    m.shutdown().unwrap();
}

/// Async calls carry the same payloads: their results, too, are sent from the vector the
/// method returned, on the fast path and over the Unix socket.
#[test]
fn async_calls_carry_byte_payloads_of_every_size_on_both_transports() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for transport in [procman::Transport::SharedMemory, procman::Transport::Socket] {
        let m = BulkManager::new().transport(transport).start().unwrap();
        let s = m.store(pattern(300), [2; 32]).unwrap().into_async();
        rt.block_on(async {
            for len in [0, 255, 256, 1024, 64 * 1024, (128 << 10) + 1, 1 << 20] {
                let data = pattern(len);
                assert_eq!(s.echo(data.clone()).await.unwrap(), data, "async echo of {len} bytes ({transport:?})");
                assert_eq!(s.echo_slice(&data).await.unwrap(), data, "async slice of {len} bytes ({transport:?})");
            }
            assert_eq!(s.borrowed().await.unwrap(), pattern(300));
        });
        drop(s);
        m.shutdown().unwrap();
    }
}
