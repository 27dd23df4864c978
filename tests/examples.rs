//! The examples, run as a user runs them: each is a real multi-process program.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/<name>`: cargo builds the examples before running integration tests.
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

fn run(name: &str) -> String {
    let out = Command::new(example(name)).output().unwrap_or_else(|e| panic!("cannot run example {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name} failed: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn custom_manager_prints_bar_and_baz_from_the_manager_process() {
    assert_eq!(run("custom_manager"), "BAR\nBAZ\n");
}

#[test]
fn remote_manager_passes_hello_between_two_clients_over_tcp() {
    assert_eq!(run("remote_manager"), "hello\n");
}

#[test]
fn sync_manager_runs_the_namespace_example_and_a_pipeline() {
    let out = run("sync_manager");
    assert!(out.starts_with("Namespace(x=10, y=\"hello\")\n"), "{out}");
    assert!(out.contains("sum of squares 1..=20 = 2870"), "{out}");
}

#[test]
fn local_manager_prints_the_specification_values() {
    let out = run("local_manager");
    let expected = [
        r#"SharedValue<FixedStr<256>>("hello")"#,
        r#"SharedValue<FixedStr<256>>("goodbye")"#,
        "SharedStruct<Pair>(Pair { a: 0, b: 0 })",
        "SharedStruct<Pair>(Pair { a: 1, b: 2 })",
        "SharedArray<i32>([0, 0, 0, 0, 0, 0, 0, 0, 0, 0])",
        "SharedArray<i32>([1, 2, 3, 4, 5, 0, 0, 0, 0, 0])",
        "[1, 2, 3, 4, 5, 0, 0, 0, 0, 0]",
        "[1, 2, 3, 4, 5, 0, 0, 0, 0, 0]",
        "[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]",
        r#"after the child: "written by a child" Pair { a: -1, b: -2 } 42"#,
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn the_tour_runs() {
    let out = run("tour");
    assert!(out.contains("4 processes counted 66 words"), "{out}");
    assert!(out.contains("longest word: \"processes\""), "{out}");
    assert!(out.contains("word lengths (shared memory): SharedArray<u32>(["), "{out}");
}

/// Two programs built apart: a manager and a client that declares the typeid with its own `Job`.
/// The same declaration has the same fingerprint in both binaries and works; a changed one has
/// another fingerprint and is refused at the first contact.
#[test]
fn two_programs_agree_on_a_type_by_fingerprint_and_a_changed_type_is_refused() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut server = Command::new(example("typed_server"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("typed_server starts");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let address = lines.next().unwrap().unwrap().trim_start_matches("listening on ").to_string();
    let server_fingerprint = lines.next().unwrap().unwrap();

    let same = run_with("typed_client", &[&address]);
    let mut same = same.lines();
    assert_eq!(same.next(), Some(server_fingerprint.as_str()), "the same type, compiled twice");
    assert_eq!(same.next(), Some("got job 1 \"build\""));

    let changed = run_with("typed_client", &[&address, "--changed"]);
    let mut changed = changed.lines();
    assert_ne!(changed.next(), Some(server_fingerprint.as_str()), "a changed type");
    let refused = changed.next().unwrap();
    assert!(refused.starts_with("refused: type mismatch for `jobs`"), "{refused}");
    assert!(refused.contains("Job"), "{refused}");

    drop(server.stdin.take()); // the server stops when its stdin closes
    assert!(server.wait().unwrap().success());
}

fn run_with(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name)).args(args).output().unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name} failed: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn async_tour_shares_a_counter_a_queue_and_a_lock_among_tokio_tasks() {
    let out = run("async_tour");
    assert!(out.contains("1,000 tasks incremented the counter to 1000"), "{out}");
    assert!(out.contains("the consumers got all 300 items, each once"), "{out}");
    assert!(out.contains("a get on an empty queue timed out: true"), "{out}");
    assert!(out.ends_with("manager shut down\n"), "{out}");
}
