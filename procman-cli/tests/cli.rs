//! The built `procman` binary against real processes: `serve` on port 0 with a key file, a
//! client program that knows the built-in types by their typeids only, `inspect --json` while a
//! child process holds a lock and after it was killed, `ping` against a server, a wrong key,
//! nothing listening and a peer that is no manager.

use procman::prelude::*;
use procman::sync::{LockProxy, QueueProxy};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

procman::child_entry_point!();

const PROCMAN: &str = env!("CARGO_BIN_EXE_procman");

/// A client program of `procman serve`: it declares the typeids it uses, nothing more.
#[manager]
pub struct Client;

#[manager]
impl Client {
    #[manager(typeid = "Queue")]
    pub fn queue<T>(maxsize: usize) -> procman::sync::Queue<T>;
    #[manager(typeid = "Lock")]
    pub fn lock() -> procman::sync::Lock;
}

/// A scratch directory with a key file, removed when dropped.
struct Scratch {
    dir: PathBuf,
    key: String,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = format!("key of {name} {:?}", Instant::now());
        let scratch = Scratch { dir, key };
        scratch.write_key("key", &scratch.key);
        scratch
    }

    /// Writes `key` and a newline to a file only its owner can read; returns its path.
    fn write_key(&self, name: &str, key: &str) -> PathBuf {
        let path = self.dir.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "{key}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn key_file(&self) -> String {
        self.dir.join("key").display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `procman serve` running in a child process; killed when dropped.
struct Serve {
    child: Child,
    address: String,
    scratch: Scratch,
}

impl Serve {
    fn start(name: &str, address: &str) -> Serve {
        let scratch = Scratch::new(name);
        let mut child = Command::new(PROCMAN)
            .args(["serve", address, "--authkey-file", &scratch.key_file()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("procman serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address = line.trim().to_string();
        assert!(!address.is_empty() && !address.ends_with(":0"), "serve prints the bound address: {address:?}");
        Serve { child, address, scratch }
    }

    fn connect(&self) -> Client {
        Client::new().address(self.address.as_str()).authkey(self.scratch.key.as_str()).connect().unwrap()
    }

    /// Runs `procman ARGS ADDRESS`, the key in the environment.
    fn procman(&self, args: &[&str]) -> Output {
        run(Command::new(PROCMAN).args(args).arg(&self.address).env("PROCMAN_AUTHKEY", &self.scratch.key))
    }

    fn inspect(&self) -> Value {
        let out = self.procman(&["inspect", "--json"]);
        assert!(out.status.success(), "inspect failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
    }

    /// Sends SIGTERM and waits for the server to exit; returns its status and standard error.
    fn terminate(self) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
        self.exited()
    }

    /// Waits for the server to exit; returns its status and standard error.
    fn exited(mut self) -> (std::process::ExitStatus, String) {
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < end, "serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut err).unwrap();
        (status, err)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("procman runs")
}

fn stderr_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "one line on standard error: {err:?}");
    err
}

fn object(snapshot: &Value, id: u64) -> Option<&Value> {
    snapshot["objects"].as_array().unwrap().iter().find(|o| o["id"] == id)
}

fn client_with_pid(snapshot: &Value, pid: u32) -> Option<&Value> {
    snapshot["clients"].as_array().unwrap().iter().find(|c| c["pid"] == pid)
}

#[test]
fn a_client_with_typeid_declarations_puts_and_gets_through_serve() {
    let server = Serve::start("put-get", "127.0.0.1:0");
    let client = server.connect();
    let queue = client.queue::<String>(0).unwrap();
    queue.put("hello".to_string()).unwrap();
    queue.put("world".to_string()).unwrap();

    fn get_one(queue: QueueProxy<String>) -> String {
        queue.get().unwrap()
    }
    // Another process gets the first item through the same manager.
    assert_eq!(Process::spawn(get_one, queue.clone()).unwrap().join().unwrap(), "hello");
    assert_eq!(queue.get().unwrap(), "world");
    assert!(matches!(queue.get_nowait(), Err(procman::Error::Empty)));
}

/// Holds `lock`, says so on `signal`, and waits to be killed.
fn hold((lock, signal): (LockProxy, QueueProxy<String>)) {
    assert!(lock.acquire(true, None).unwrap());
    signal.put("held".to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn inspect_json_shows_the_queue_and_the_holder_of_a_lock_until_the_holder_is_killed() {
    let server = Serve::start("inspect", "127.0.0.1:0");
    let client = server.connect();
    let queue = client.queue::<u32>(0).unwrap();
    for i in 0..3 {
        queue.put(i).unwrap();
    }
    let lock = client.lock().unwrap();
    let signal = client.queue::<String>(0).unwrap();
    let mut child = Process::spawn(hold, (lock.clone(), signal.clone())).unwrap();
    assert_eq!(signal.get_with(true, Some(Duration::from_secs(30))).unwrap(), "held");

    let snapshot = server.inspect();
    let q = object(&snapshot, queue.token().id()).expect("the queue is listed");
    assert_eq!(q["typeid"], "Queue");
    assert_eq!(q["type_name"], "Queue<u32>", "the element type the queue recorded when created");
    assert_eq!(q["state"]["Queue"]["len"], 3);
    let me = client_with_pid(&snapshot, std::process::id()).expect("this test is a client");
    assert!(me["objects"].as_array().unwrap().contains(&Value::from(queue.token().id())));

    let l = object(&snapshot, lock.token().id()).expect("the lock is listed");
    assert_eq!(l["typeid"], "Lock");
    let holder = &l["state"]["Lock"]["holder"];
    assert_eq!(holder["pid"], child.pid(), "the child holds the lock: {l}");
    let holding = client_with_pid(&snapshot, child.pid()).expect("the child is a client");
    assert_eq!(holder["client"], holding["id"]);
    assert!(holding["objects"].as_array().unwrap().contains(&Value::from(lock.token().id())));
    assert!(holder["elapsed"].as_f64().unwrap() >= 0.0);

    child.kill().unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let snapshot = server.inspect();
        let free = object(&snapshot, lock.token().id()).unwrap()["state"]["Lock"]["holder"].is_null();
        if free && client_with_pid(&snapshot, child.pid()).is_none() {
            break snapshot;
        }
        assert!(Instant::now() < end, "the dead child still holds the lock: {snapshot}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(object(&after, queue.token().id()).unwrap()["state"]["Queue"]["len"], 3);
    // The next acquirer is told that the holder died.
    assert!(matches!(lock.acquire(true, None), Err(procman::Error::Abandoned)));
}

#[test]
fn inspect_prints_tables_with_holders_and_waiters() {
    let server = Serve::start("table", "127.0.0.1:0");
    let client = server.connect();
    let queue = client.queue::<u32>(0).unwrap();
    queue.put(1).unwrap();
    let lock = client.lock().unwrap();
    let _held = lock.guard().unwrap();
    let waiting = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.acquire(true, Some(Duration::from_secs(30))))
    };
    let end = Instant::now() + Duration::from_secs(20);
    while object(&server.inspect(), lock.token().id()).unwrap()["state"]["Lock"]["waiting"] == Value::Array(vec![]) {
        assert!(Instant::now() < end, "the second acquire never waited");
        std::thread::sleep(Duration::from_millis(20));
    }

    let out = server.procman(&["inspect"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let pid = std::process::id().to_string();
    assert!(table.starts_with(&format!("manager {}", server.address)), "{table}");
    assert!(table.contains("OBJECTS") && table.contains("CLIENTS") && table.contains("WAITING"), "{table}");
    assert!(table.lines().any(|l| l.contains("Queue") && l.contains("1 item")), "{table}");
    let lock_line = table.lines().find(|l| l.contains("Lock") && l.contains("held by")).expect(&table);
    assert!(lock_line.contains(&format!("(pid {pid})")) && lock_line.contains("1 waiting in acquire"), "{table}");
    assert!(table.lines().any(|l| l.contains("acquire") && l.contains(&pid)), "{table}");
    drop(_held);
    assert!(waiting.join().unwrap().unwrap());
}

#[test]
fn inspect_watch_refreshes_with_one_json_document_per_line() {
    let server = Serve::start("watch", "127.0.0.1:0");
    let client = server.connect();
    let queue = client.queue::<u32>(0).unwrap();
    let mut watch = Command::new(PROCMAN)
        .args(["inspect", "--watch", "--json", "--interval", "100ms", &server.address])
        .env("PROCMAN_AUTHKEY", &server.scratch.key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut lengths = Vec::new();
    for i in 0..3 {
        let snapshot: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        lengths.push(object(&snapshot, queue.token().id()).unwrap()["state"]["Queue"]["len"].clone());
        queue.put(i).unwrap();
    }
    drop(lines); // the reader goes away: watch ends quietly
    let status = watch.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(lengths[0], 0);
    assert!(lengths.windows(2).all(|w| w[0].as_u64() <= w[1].as_u64()), "{lengths:?}");
}

#[test]
fn ping_exits_zero_and_one_clear_line_with_its_own_status_otherwise() {
    let server = Serve::start("ping", "127.0.0.1:0");
    let ok = server.procman(&["ping"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let line = String::from_utf8(ok.stdout).unwrap();
    assert!(line.starts_with(&format!("{}: round trip", server.address)), "{line}");

    let wrong_key = server.scratch.write_key("wrong", "not the key");
    let wrong = run(Command::new(PROCMAN).args(["ping", server.address.as_str(), "--authkey-file"]).arg(&wrong_key));
    assert_eq!(wrong.status.code(), Some(4));
    assert!(stderr_line(&wrong).contains("authentication with"), "{}", stderr_line(&wrong));

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let nobody = run(Command::new(PROCMAN).args(["ping", free.as_str()]).env("PROCMAN_AUTHKEY", "k"));
    assert_eq!(nobody.status.code(), Some(3));
    assert!(stderr_line(&nobody).starts_with(&format!("procman: no manager at {free}")), "{}", stderr_line(&nobody));

    let no_key = run(Command::new(PROCMAN).args(["ping", server.address.as_str()]).env_remove("PROCMAN_AUTHKEY"));
    assert_eq!(no_key.status.code(), Some(2));
    assert!(stderr_line(&no_key).contains("no authentication key"));
    // A key is never an argument.
    let as_argument = run(Command::new(PROCMAN).args(["ping", server.address.as_str(), "--authkey", "k"]));
    assert_eq!(as_argument.status.code(), Some(2));
    // A manager that could run no call at all is a usage mistake, said before anything listens.
    let none_in_flight = run(Command::new(PROCMAN)
        .args(["serve", "127.0.0.1:0", "--max-calls-in-flight", "0"])
        .env("PROCMAN_AUTHKEY", "k"));
    assert_eq!(none_in_flight.status.code(), Some(2));
    let said = String::from_utf8_lossy(&none_in_flight.stderr);
    assert!(said.contains("--max-calls-in-flight"), "{said}");
}

#[test]
fn a_peer_that_is_no_manager_gets_one_clear_line() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        // An HTTP server's answer, then one that hangs up at once.
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        drop(s);
        drop(listener.accept().unwrap());
    });
    for _ in 0..2 {
        let out = run(Command::new(PROCMAN).args(["ping", address.as_str()]).env("PROCMAN_AUTHKEY", "k"));
        assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stderr_line(&out).contains("not a procman manager"), "{}", stderr_line(&out));
    }
    peer.join().unwrap();
}

#[test]
fn sigterm_stops_serve_cleanly_and_tells_its_clients_it_shut_down() {
    let server = Serve::start("sigterm", "127.0.0.1:0");
    let address = server.address.clone();
    let client = server.connect();
    let queue = client.queue::<u32>(0).unwrap();
    let blocked = {
        let queue = queue.clone();
        std::thread::spawn(move || queue.get())
    };
    std::thread::sleep(Duration::from_millis(200));
    let (status, err) = server.terminate();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    // The call in progress, and the next call of an idle connection, learn why.
    for e in [blocked.join().unwrap().unwrap_err(), queue.qsize().unwrap_err()] {
        assert!(matches!(&e, procman::Error::Shutdown { address: a } if *a == address), "{e:?}");
    }
}

#[test]
fn serve_stops_when_a_client_asks_it_to() {
    let server = Serve::start("asked", "127.0.0.1:0");
    server.connect().request_shutdown().unwrap();
    let (status, err) = server.exited();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("a client asked the manager to shut down"), "{err}");
}

#[test]
fn serve_listens_on_a_unix_socket_and_removes_it_when_stopped() {
    let scratch = Scratch::new("unix-path");
    let path = scratch.dir.join("manager.sock");
    let server = Serve::start("unix", &format!("unix:{}", path.display()));
    assert_eq!(server.address, format!("unix:{}", path.display()));
    assert!(server.procman(&["ping"]).status.success());
    let client = server.connect();
    let queue = client.queue::<u32>(0).unwrap();
    let (status, _) = server.terminate();
    assert!(status.success());
    assert!(!path.exists(), "the socket file is removed");
    // An idle client on a Unix socket is told why too, not just that the connection broke.
    let e = queue.qsize().unwrap_err();
    assert!(matches!(e, procman::Error::Shutdown { .. }), "{e:?}");
}

#[test]
fn every_subcommand_has_help_and_shells_get_completions() {
    for args in
        [&["--help"][..], &["serve", "--help"], &["inspect", "--help"], &["ping", "--help"], &["completions", "--help"]]
    {
        let out = run(Command::new(PROCMAN).args(args));
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8(out.stdout).unwrap().contains("Usage: procman"), "{args:?}");
    }
    let bash = run(Command::new(PROCMAN).args(["completions", "bash"]));
    assert!(bash.status.success());
    assert!(String::from_utf8(bash.stdout).unwrap().contains("_procman"));
}
