//! Typed across the wire: a client program whose types differ from the manager's gets
//! `Error::TypeMismatch` when its proxy is bound — before any value is exchanged — and the
//! manager's objects are unchanged. The manager and the client are separately declared
//! `#[manager]` types talking over TCP, as two programs built apart would.

use procman::prelude::*;
use procman::sync::{Dict, DictProxy, Queue, QueueProxy};
use procman::{BaseProxy, Error, ManagerBuilder};

procman::child_entry_point!();

const KEY: &str = "typed wire test key";

/// The manager's `Job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
pub struct Job {
    pub id: u64,
    pub name: String,
}

/// The client program's idea of `Job`, in three wrong versions (a module path is not part of a
/// type's shape, so each is called `Job` as it would be in another program).
pub mod reordered {
    use procman::prelude::*;
    #[derive(Debug, Serialize, Deserialize, Schema)]
    pub struct Job {
        pub name: String,
        pub id: u64,
    }
}

pub mod added_field {
    use procman::prelude::*;
    #[derive(Debug, Serialize, Deserialize, Schema)]
    pub struct Job {
        pub id: u64,
        pub name: String,
        pub priority: u8,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
pub enum Level {
    Low,
    High,
}

pub mod added_variant {
    use procman::prelude::*;
    #[derive(Debug, Serialize, Deserialize, Schema)]
    pub enum Level {
        Low,
        High,
        Urgent,
    }
}

/// A user's generic shared type.
#[derive(Shared, Debug, Default)]
pub struct Stack<T> {
    items: Vec<T>,
}

#[shared]
impl<T: Send + Sync + 'static> Stack<T> {
    pub fn push(&mut self, item: T) {
        self.items.push(item);
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[manager(sync)]
pub struct Server;

#[manager]
impl Server {
    #[manager(typeid = "numbers", singleton)]
    fn numbers() -> Queue<u64> {
        Queue::new(0)
    }
    #[manager(typeid = "words", singleton)]
    fn words() -> Queue<String> {
        Queue::new(0)
    }
    #[manager(typeid = "jobs", singleton)]
    fn jobs() -> Queue<Job> {
        Queue::new(0)
    }
    #[manager(typeid = "levels", singleton)]
    fn levels() -> Queue<Level> {
        Queue::new(0)
    }
    #[manager(typeid = "stack", singleton)]
    fn stack() -> Stack<u32> {
        Stack::default()
    }
    #[manager(typeid = "stack_of")]
    fn stack_of(first: u32) -> Stack<u32> {
        Stack { items: vec![first] }
    }
}

/// The client program declares the typeids it uses, with the types it believes in.
#[manager]
pub struct Client;

#[manager]
impl Client {
    #[manager(typeid = "numbers")]
    fn numbers_as_strings() -> Queue<String>;
    #[manager(typeid = "words")]
    fn words_as_numbers() -> Queue<u64>;
    #[manager(typeid = "jobs")]
    fn reordered_jobs() -> Queue<reordered::Job>;
    #[manager(typeid = "levels")]
    fn levels_with_urgent() -> Queue<added_variant::Level>;
    #[manager(typeid = "stack")]
    fn stack_of_i64() -> Stack<i64>;
}

/// More wrong declarations (a manager declares each typeid once).
#[manager]
pub struct OtherClient;

#[manager]
impl OtherClient {
    #[manager(typeid = "numbers")]
    fn numbers_as_dict() -> Dict<String, u64>;
    #[manager(typeid = "jobs")]
    fn jobs_with_priority() -> Queue<added_field::Job>;
    #[manager(typeid = "stack_of")]
    fn stack_of_text(first: String) -> Stack<u32>;
}

/// The same program's correct declarations, to read the manager's objects afterwards.
#[manager]
pub struct Reader;

#[manager]
impl Reader {
    #[manager(typeid = "numbers")]
    fn numbers() -> Queue<u64>;
    #[manager(typeid = "words")]
    fn words() -> Queue<String>;
    #[manager(typeid = "jobs")]
    fn jobs() -> Queue<Job>;
    #[manager(typeid = "levels")]
    fn levels() -> Queue<Level>;
    #[manager(typeid = "stack")]
    fn stack() -> Stack<u32>;
}

fn serve() -> Server {
    Server::new().address("127.0.0.1:0").authkey(KEY).serve_in_background().expect("the manager serves")
}

fn connect<M: Manager>(server: &Server) -> M {
    ManagerBuilder::<M>::new().address(server.address().clone()).authkey(KEY).connect().expect("connects")
}

/// The mismatch error, with what it names.
#[track_caller]
fn mismatch<T: std::fmt::Debug>(r: procman::Result<T>) -> (String, String, String, String) {
    match r {
        Err(Error::TypeMismatch { typeid, what, manager, client }) => (typeid, what, manager, client),
        other => panic!("expected a type mismatch, got {other:?}"),
    }
}

#[test]
fn a_queue_of_another_element_type_is_refused_at_bind_and_the_queue_is_unchanged() {
    let server = serve();
    let reader: Reader = connect(&server);
    reader.numbers().unwrap().put(0).unwrap();
    reader.words().unwrap().put("hello".into()).unwrap();
    let client: Client = connect(&server);

    // `Queue<String>` for the manager's `Queue<u64>` holding 0: no `Ok("")`, no item taken.
    let (typeid, what, manager, mine) = mismatch(client.numbers_as_strings());
    assert_eq!((typeid.as_str(), what.as_str()), ("numbers", "element type `T`"));
    assert_eq!((manager.as_str(), mine.as_str()), ("u64", "String"));
    // `Queue<u64>` for the manager's `Queue<String>` holding "hello": no `Ok(5)`, and no put.
    let (_, _, manager, mine) = mismatch(client.words_as_numbers());
    assert_eq!((manager.as_str(), mine.as_str()), ("String", "u64"));

    let numbers = reader.numbers().unwrap();
    assert_eq!((numbers.qsize().unwrap(), numbers.get().unwrap()), (1, 0));
    let words = reader.words().unwrap();
    assert_eq!((words.qsize().unwrap(), words.get().unwrap()), (1, "hello".to_string()));
    server.shutdown().unwrap();
}

#[test]
fn a_dict_for_a_queue_is_refused_naming_a_method_the_user_knows() {
    let server = serve();
    let reader: Reader = connect(&server);
    reader.numbers().unwrap().put(3).unwrap();
    let client: OtherClient = connect(&server);
    let (typeid, what, _, _) = mismatch(client.numbers_as_dict());
    assert_eq!(typeid, "numbers");
    assert!(what.starts_with("method `"), "names a method of the user's type: {what}");
    assert!(!what.contains("_raw"), "{what}");
    let numbers = reader.numbers().unwrap();
    assert_eq!((numbers.qsize().unwrap(), numbers.get().unwrap()), (1, 3), "the queue is unchanged");
    server.shutdown().unwrap();
}

#[test]
fn structs_with_reordered_or_added_fields_and_enums_with_added_variants_are_refused() {
    let server = serve();
    let reader: Reader = connect(&server);
    let job = Job { id: 7, name: "build".into() };
    reader.jobs().unwrap().put(job.clone()).unwrap();
    reader.levels().unwrap().put(Level::High).unwrap();
    let client: Client = connect(&server);

    let (_, what, manager, mine) = mismatch(client.reordered_jobs());
    assert_eq!(what, "element type `T`");
    assert!(manager.contains("Job") && mine.contains("Job"), "both type names: {manager} / {mine}");
    mismatch(connect::<OtherClient>(&server).jobs_with_priority());
    mismatch(client.levels_with_urgent());

    let jobs = reader.jobs().unwrap();
    assert_eq!((jobs.qsize().unwrap(), jobs.get().unwrap()), (1, job));
    assert_eq!(reader.levels().unwrap().get().unwrap(), Level::High);
    server.shutdown().unwrap();
}

#[test]
fn a_generic_shared_type_bound_with_another_parameter_is_refused_naming_both() {
    let server = serve();
    let reader: Reader = connect(&server);
    reader.stack().unwrap().push(5).unwrap();
    let client: Client = connect(&server);
    let (typeid, _, manager, mine) = mismatch(client.stack_of_i64());
    assert_eq!((typeid.as_str(), manager.as_str(), mine.as_str()), ("stack", "u32", "i64"));
    assert_eq!(reader.stack().unwrap().len().unwrap(), 1);
    server.shutdown().unwrap();
}

#[test]
fn a_creator_declared_with_other_argument_types_is_refused_before_anything_is_created() {
    let server = serve();
    let before = server.number_of_objects().unwrap();
    let client: OtherClient = connect(&server);
    let (typeid, what, manager, mine) = mismatch(client.stack_of_text("one".into()));
    assert_eq!((typeid.as_str(), what.as_str()), ("stack_of", "the creator's arguments"));
    assert_eq!((manager.as_str(), mine.as_str()), ("`(u32)`", "`(String)`"));
    assert_eq!(server.number_of_objects().unwrap(), before, "nothing was created");
    server.shutdown().unwrap();
}

#[test]
fn a_created_container_records_its_element_type() {
    let server = serve();
    let q = server.queue::<u64>(0).unwrap();
    q.put(1).unwrap();
    // A proxy that comes back from the manager as a `QueueProxy<String>` (as another program
    // would receive it): refused at its first call.
    let carrier = server.queue::<BaseProxy>(0).unwrap();
    let pass = |p: BaseProxy| {
        carrier.put(p).unwrap();
        carrier.get().unwrap()
    };
    let wrong: QueueProxy<String> = procman::Proxy::from_base(pass(BaseProxy::clone(&q)));
    let (typeid, what, manager, mine) = mismatch(wrong.get_nowait());
    assert_eq!((typeid.as_str(), what.as_str()), ("Queue", "element type `T`"));
    assert_eq!((manager.as_str(), mine.as_str()), ("u64", "String"));
    assert_eq!(q.qsize().unwrap(), 1, "nothing was taken");
    // A dict records both.
    let d: DictProxy<String, u64> = server.dict().unwrap();
    d.insert("a".into(), 1).unwrap();
    let wrong: DictProxy<String, String> = procman::Proxy::from_base(pass(BaseProxy::clone(&d)));
    let (_, what, _, _) = mismatch(wrong.len());
    assert_eq!(what, "element type `V`");
    server.shutdown().unwrap();
}

fn receive_as_strings(carrier: QueueProxy<BaseProxy>) -> String {
    let proxy: QueueProxy<String> = procman::Proxy::from_base(carrier.get().unwrap());
    match proxy.get() {
        Err(e) => e.to_string(),
        Ok(item) => format!("received {item:?}"),
    }
}

#[test]
fn a_proxy_sent_to_a_child_process_through_a_queue_is_checked_there() {
    let server = procman::sync::SyncManager::new().start().expect("the manager starts");
    let numbers = server.queue::<u64>(0).unwrap();
    numbers.put(42).unwrap();
    let carrier = server.queue::<BaseProxy>(0).unwrap();
    carrier.put(BaseProxy::clone(&numbers)).unwrap();
    let child = Process::spawn(receive_as_strings, carrier).unwrap();
    let message = child.join().unwrap();
    assert!(message.contains("type mismatch") && message.contains("u64"), "{message}");
    assert_eq!(numbers.get().unwrap(), 42, "the child took nothing");
}

#[derive(Debug, Serialize, Deserialize, Schema)]
#[serde(untagged)]
pub enum Loose {
    Number(u64),
    Text(String),
}

#[test]
fn a_value_postcard_cannot_read_back_is_refused_at_put() {
    let server = serve();
    let q = server.queue::<Loose>(0).unwrap();
    match q.put(Loose::Number(1)) {
        Err(Error::Encode { what, message }) => {
            assert!(what.contains("Loose"), "names the type: {what}");
            assert!(message.contains("untagged"), "says why: {message}");
        }
        other => panic!("expected an encoding error, got {other:?}"),
    }
    assert_eq!(q.qsize().unwrap(), 0);
    server.shutdown().unwrap();
}

#[test]
fn namespace_attributes_keep_their_type_unless_replaced() {
    let server = serve();
    let ns = server.namespace().unwrap();
    ns.set("x", &10u32).unwrap();
    let (typeid, what, manager, mine) = mismatch(ns.get::<String>("x"));
    assert_eq!(
        (typeid.as_str(), what.as_str(), manager.as_str(), mine.as_str()),
        ("Namespace", "attribute `x`", "`u32`", "`String`")
    );
    mismatch(ns.set("x", &"ten"));
    assert_eq!(ns.get::<u32>("x").unwrap(), 10, "unchanged");
    ns.replace("x", &"ten").unwrap();
    assert_eq!(ns.get::<String>("x").unwrap(), "ten");
    server.shutdown().unwrap();
}

#[test]
fn a_decoded_value_must_use_every_byte() {
    // u64 0 and "" have the same encoding: only the fingerprint tells them apart; but a value
    // with bytes left over is never taken for a shorter one.
    let two = procman::Encoded::encode(&(1u8, 2u8)).unwrap();
    let one: procman::Encoded<u8> = two.cast();
    assert!(matches!(one.decode(), Err(Error::Decode { .. })));
}

/// Common foreign types have fingerprints: chrono's and uuid's with procman's features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
pub struct Event {
    pub id: uuid::Uuid,
    pub at: chrono::NaiveDateTime,
    pub tags: std::collections::BTreeMap<String, Vec<u8>>,
}

#[test]
fn foreign_types_travel_and_have_fingerprints() {
    use procman::schema::Fingerprint;
    assert_ne!(Fingerprint::of::<uuid::Uuid>(), Fingerprint::of::<Vec<u8>>());
    assert_ne!(Fingerprint::of::<chrono::NaiveDate>(), Fingerprint::of::<chrono::NaiveTime>());
    let server = serve();
    let q = server.queue::<Event>(0).unwrap();
    let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap().and_hms_opt(6, 0, 0).unwrap();
    let event = Event { id: uuid::Uuid::from_u128(7), at, tags: [("k".to_string(), vec![1, 2])].into() };
    q.put(event.clone()).unwrap();
    assert_eq!(q.get().unwrap(), event);
    server.shutdown().unwrap();
}

/// A queue item that does not decode as the proxy's type (written by a program that bypassed
/// the typed proxy) comes back whole inside the error: nothing is lost.
#[test]
fn an_item_that_cannot_be_decoded_comes_back_inside_the_error() {
    let server = serve();
    let q = server.queue::<u8>(0).unwrap();
    let raw = procman::Encoded::encode(&300u16).unwrap();
    q.call_method::<_, ()>("put", &(raw.clone(), true, None::<std::time::Duration>)).unwrap();
    match q.get() {
        Err(Error::Undecodable { value, .. }) => assert_eq!(value, raw.as_bytes()),
        other => panic!("expected the value back in the error, got {other:?}"),
    }
    server.shutdown().unwrap();
}

/// A manager's snapshot names each object's Rust type with the element types it recorded, and
/// the containers' states.
#[test]
fn the_snapshot_shows_element_types_and_container_states() {
    use procman::inspect::ObjectState;
    let server = serve();
    let d: DictProxy<String, u64> = server.dict().unwrap();
    d.insert("a".into(), 1).unwrap();
    let ns = server.namespace().unwrap();
    ns.set("x", &1u8).unwrap();
    let snapshot = server.debug_info().unwrap();
    let dict = snapshot.objects.iter().find(|o| o.id == d.token().id()).unwrap();
    assert_eq!(dict.type_name, "Dict<String, u64>");
    assert_eq!(dict.state, Some(ObjectState::Items { len: 1 }));
    let names = snapshot.objects.iter().find(|o| o.id == ns.token().id()).unwrap();
    assert_eq!(names.state, Some(ObjectState::Namespace { names: vec!["x".into()] }));
    server.shutdown().unwrap();
}
