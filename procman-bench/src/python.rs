//! Python's figures: `python_managers_bench.py` (in `../shared/peers/` beside the workspace),
//! run as a subprocess, and its output parsed.
//!
//! Each line of the script's output is a label in its first 40 columns, then the figure.

use crate::measure::{Scale, err, progress};
use crate::table::Fig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The labels of the script's figures that the rows use.
pub(crate) const START: &str = "manager start()";
pub(crate) const CREATE_DROP: &str = "create+drop proxy";
pub(crate) const PROXY_CALL: &str = "custom proxy call incr()";
pub(crate) const MANAGER_QUEUE: &str = "manager Queue put->get across procs";
pub(crate) const DICT_INSERT: &str = "dict proxy d['k'] = 1";
pub(crate) const DICT_GET: &str = "dict proxy d['k']";
pub(crate) const LOCK: &str = "Lock proxy acquire+release";
pub(crate) const NAMESPACE_GET: &str = "Namespace proxy ns.x";
pub(crate) const PIPE_QUEUE: &str = "mp.Queue (pipe) put->get across procs";

/// The workspace, the directory the script runs in.
fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The script's default place: `<workspace>/../shared/peers/python_managers_bench.py`.
fn default_script() -> PathBuf {
    workspace().join("../shared/peers/python_managers_bench.py")
}

/// Python's figures by label, or why there are none.
#[derive(Debug)]
pub(crate) struct Python {
    figures: Result<HashMap<String, f64>, String>,
}

impl Python {
    /// No figures, for the reason `why`.
    pub(crate) fn absent(why: &str) -> Python {
        Python { figures: Err(why.into()) }
    }

    /// Runs `script` (by default the one in `../shared/peers/`) with `interpreter`.
    pub(crate) fn run(interpreter: &str, script: Option<&Path>, scale: Scale) -> Python {
        let script = script.map_or_else(default_script, Path::to_path_buf);
        Python { figures: run(interpreter, &script, scale.n(20_000, 5_000)) }
    }

    /// All the figures, by label.
    pub(crate) fn figures(&self) -> &Result<HashMap<String, f64>, String> {
        &self.figures
    }

    pub(crate) fn get(&self, label: &str) -> Result<f64, String> {
        match &self.figures {
            Ok(m) => m.get(label).copied().ok_or_else(|| format!("no {label:?} in Python's output")),
            Err(e) => Err(e.clone()),
        }
    }

    pub(crate) fn rate(&self, label: &str, what: &'static str) -> Result<Fig, String> {
        self.get(label).map(|v| Fig::Rate(v, what))
    }
}

/// Runs the script with `n` iterations and parses its output; at most two minutes.
fn run(interpreter: &str, script: &Path, n: usize) -> Result<HashMap<String, f64>, String> {
    if !script.exists() {
        return Err(format!("{} is absent", script.display()));
    }
    progress(&format!("running {interpreter} {} {n} (Python's figures)", script.display()));
    let mut child = Command::new(interpreter)
        .arg(script)
        .arg(n.to_string())
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{interpreter} not runnable: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("Python's script took over 2 minutes".into());
            }
        }
    }
    let out = child.wait_with_output().map_err(err)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("Python's script failed: {}", stderr.lines().last().unwrap_or("")));
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

/// The figures of the script's output: a label in the first 40 columns, then the figure.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut figures = HashMap::new();
    for line in text.lines() {
        let (Some(label), Some(rest)) = (line.get(..40), line.get(40..)) else { continue };
        if let Some(v) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            figures.insert(label.trim().to_string(), v);
        }
    }
    figures
}
