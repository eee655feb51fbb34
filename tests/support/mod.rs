//! Helpers for the end-to-end tests: a real control plane (etcd, kube-apiserver and
//! kube-controller-manager on loopback, started by `scripts/control-plane.sh`), a real
//! `wasmgate serve`, and kubectl 1.36 from the same build.
//!
//! Every guard tears its processes down in `Drop`, which also runs when a test panics. A small
//! watchdog (a `bash` loop in its own process group) also stops them if the test process dies
//! without unwinding (Ctrl-C, SIGKILL, `panic = "abort"`).
//!
//! Environment:
//! - `CI=true` or `WASMGATE_E2E=require`: the e2e tests must run; a missing prerequisite or a
//!   failed control-plane build fails them, and `WASMGATE_SKIP_E2E=1` is refused.
//! - `WASMGATE_SKIP_E2E=1` (local runs only): skip, with a loud `SKIPPED` line.
//! - `WASMGATE_CP_BIN=DIR`: use these control-plane binaries instead of
//!   `scripts/build-control-plane.sh` (which caches in `$WASMGATE_CACHE`, default
//!   `~/.cache/wasmgate`).
//! - `WASMGATE_E2E_KEEP=1`: keep the temporary directories (logs, kubeconfig) after a passing run;
//!   after a failing run they are always kept and their path printed.

#![allow(dead_code)]

pub mod serve;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// How long one kubectl (or other helper) invocation may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A line that shows in `cargo test` output even for a passing test: the test harness captures
/// `print!`/`eprint!`, but not writes to the stderr handle itself.
pub fn announce(msg: impl AsRef<str>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", msg.as_ref());
    let _ = err.flush();
}

fn env_flag(name: &str, values: &[&str]) -> bool {
    std::env::var(name)
        .map(|v| {
            values
                .iter()
                .any(|want| v.trim().eq_ignore_ascii_case(want))
        })
        .unwrap_or(false)
}

/// CI=true (or 1), or WASMGATE_E2E=require: the e2e tests must really run.
pub fn e2e_required() -> bool {
    env_flag("CI", &["true", "1", "yes"]) || env_flag("WASMGATE_E2E", &["require", "required"])
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

const CP_BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
];

/// The directory holding etcd, kube-apiserver, kube-controller-manager and kubectl, building them
/// (cached) when needed. `None` means: skip the e2e tests (only when WASMGATE_SKIP_E2E=1 and not
/// required). Panics with a clear message when the control plane cannot be had.
pub fn control_plane_bin() -> Option<PathBuf> {
    let required = e2e_required();
    if env_flag("WASMGATE_SKIP_E2E", &["1", "true", "yes"]) {
        assert!(
            !required,
            "WASMGATE_SKIP_E2E=1 is set, but CI=true or WASMGATE_E2E=require says the e2e tests \
             must run: unset one of them"
        );
        announce(
            "\n==================================================================\n\
             e2e: SKIPPED the kubectl end-to-end tests (WASMGATE_SKIP_E2E=1).\n\
             e2e: nothing was checked against a real kube-apiserver.\n\
             ==================================================================",
        );
        return None;
    }
    let how_to_skip = if required {
        "(CI=true or WASMGATE_E2E=require: the e2e tests may not be skipped)"
    } else {
        "(to skip the e2e tests locally, set WASMGATE_SKIP_E2E=1)"
    };
    for tool in ["openssl", "curl", "bash"] {
        assert!(
            on_path(tool),
            "e2e: `{tool}` is not on PATH; the control plane needs it. Install it with \
             `. scripts/lib-install.sh && install_system_packages` {how_to_skip}"
        );
    }

    let bin = if let Some(dir) = std::env::var_os("WASMGATE_CP_BIN") {
        PathBuf::from(dir)
    } else {
        let script = repo_root().join("scripts/build-control-plane.sh");
        announce(format!(
            "e2e: control plane binaries from {} (cached; a first build takes 5-16 min)",
            script.display()
        ));
        let t = Instant::now();
        let out = Command::new(&script)
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("e2e: cannot run {}: {e} {how_to_skip}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "e2e: the control plane could not be built: {} exited with {} (its log is above). \
             It needs Go (on PATH or /usr/local/go/bin/go) and network access for the first \
             build {how_to_skip}",
            script.display(),
            out.status
        );
        let dir = stdout.lines().last().unwrap_or("").trim().to_owned();
        if t.elapsed() > Duration::from_secs(5) {
            announce(format!(
                "e2e: control plane built in {:.0}s",
                t.elapsed().as_secs_f64()
            ));
        }
        PathBuf::from(dir)
    };
    for b in CP_BINARIES {
        assert!(
            bin.join(b).is_file(),
            "e2e: {} is missing (run scripts/build-control-plane.sh) {how_to_skip}",
            bin.join(b).display()
        );
    }
    Some(bin)
}

// ---------------------------------------------------------------------------------------------
// Running commands, bounded
// ---------------------------------------------------------------------------------------------

/// The outcome of a finished (or killed) command.
#[derive(Debug)]
pub struct Output {
    pub cmdline: String,
    /// `None` when the command was killed at its deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// A description for assertion messages.
    pub fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed after the timeout".to_owned(),
        };
        format!(
            "`{}` -> {status}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` to completion with `stdin` as its input, killing it after `timeout`.
pub fn run_bounded(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Output {
    let cmdline = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| sh_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{cmdline}`: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let input = input.to_owned();
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for `{cmdline}`: {e}"),
        }
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    eprintln!("$ {cmdline}  # {:?}", status.and_then(|s| s.code()));
    Output {
        cmdline,
        status,
        stdout,
        stderr,
    }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `timeout` (the async
/// counterpart of [`poll`], for tests on a tokio runtime).
pub async fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `probe` until it returns `Some`, at most `timeout`, every `every`. Panics with `what`
/// and the last failure description on timeout.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out after {:.0}s waiting for {what}; last attempt:\n{last}",
                    timeout.as_secs_f64()
                );
                thread::sleep(every);
            }
        }
    }
}

/// Runs one scenario of an end-to-end test: prints `e2e: <name> ... ok (<secs>s)` when `f`
/// returns, and `e2e: <name> ... FAILED` when it panics (visible even when the harness captures
/// output).
pub fn scenario(name: &str, f: impl FnOnce()) {
    /// Names the scenario that failed, as the panic unwinds through it.
    struct Failed<'a>(&'a str);
    impl Drop for Failed<'_> {
        fn drop(&mut self) {
            if thread::panicking() {
                announce(format!("e2e: {} ... FAILED", self.0));
            }
        }
    }
    let t = Instant::now();
    eprintln!("\n----- e2e: {name}");
    let failed = Failed(name);
    f();
    std::mem::forget(failed);
    announce(format!(
        "e2e: {name} ... ok ({:.1}s)",
        t.elapsed().as_secs_f64()
    ));
}

/// Starts `bash -c 'wait for this test process to exit; cleanup'` in its own process group (so a
/// Ctrl-C to the terminal's foreground group does not end it first).
fn spawn_watchdog(cleanup: &str) -> Option<Child> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {cleanup}",
        pid = std::process::id()
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
}

fn stop_watchdog(watchdog: &mut Option<Child>) {
    if let Some(mut w) = watchdog.take() {
        let _ = w.kill();
        let _ = w.wait();
    }
}

/// Whether a process is gone (no such pid, or a zombie waiting for its reaper).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // "pid (comm) S ...": the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            state == "Z" || state == "X"
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

fn keep_requested() -> bool {
    env_flag("WASMGATE_E2E_KEEP", &["1", "true", "yes"])
}

// ---------------------------------------------------------------------------------------------
// The control plane
// ---------------------------------------------------------------------------------------------

/// etcd + kube-apiserver + kube-controller-manager on loopback, in a temporary directory, stopped
/// on drop.
pub struct ControlPlane {
    dir: Option<TempDir>,
    path: PathBuf,
    pub bin: PathBuf,
    pub env: HashMap<String, String>,
    pub kubeconfig: PathBuf,
    pub apiserver_url: String,
    watchdog: Option<Child>,
}

fn control_plane_script() -> PathBuf {
    repo_root().join("scripts/control-plane.sh")
}

impl ControlPlane {
    /// Starts the control plane and waits until it is ready (the script's own bounded wait:
    /// kube-apiserver /readyz ok and the default service account created).
    pub fn start(bin: &Path) -> ControlPlane {
        let dir = tempfile::Builder::new()
            .prefix("wasmgate-e2e-cp-")
            .tempdir()
            .expect("create a temporary directory");
        let path = dir.path().to_path_buf();
        let script = control_plane_script();
        let watchdog = spawn_watchdog(&format!(
            "{} stop {} ; rm -rf {}",
            sh_quote(&script.to_string_lossy()),
            sh_quote(&path.to_string_lossy()),
            sh_quote(&path.to_string_lossy())
        ));
        let mut cmd = Command::new(&script);
        cmd.arg("start")
            .arg(&path)
            .env("WASMGATE_CP_BIN", bin)
            .current_dir(repo_root());
        // stderr (progress, and the logs' tails on failure) goes straight to the terminal.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let mut cp = ControlPlane {
            dir: Some(dir),
            path,
            bin: bin.to_path_buf(),
            env: HashMap::new(),
            kubeconfig: PathBuf::new(),
            apiserver_url: String::new(),
            watchdog,
        };
        assert!(
            out.status.success(),
            "e2e: the control plane did not start: `{} start {}` exited with {} (the tails of its \
             logs are above)",
            script.display(),
            cp.path.display(),
            out.status
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                cp.env.insert(k.to_owned(), v.to_owned());
            }
        }
        cp.kubeconfig = PathBuf::from(
            cp.env
                .get("KUBECONFIG")
                .expect("control-plane.sh printed no KUBECONFIG"),
        );
        cp.apiserver_url = cp
            .env
            .get("WASMGATE_APISERVER_URL")
            .cloned()
            .unwrap_or_default();
        cp
    }

    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The PIDs of etcd, kube-apiserver and kube-controller-manager.
    pub fn pids(&self) -> Vec<(String, u32)> {
        ["etcd", "kube-apiserver", "kube-controller-manager"]
            .iter()
            .filter_map(|c| {
                let text = std::fs::read_to_string(self.path.join(format!("pids/{c}.pid"))).ok()?;
                Some((c.to_string(), text.trim().parse().ok()?))
            })
            .collect()
    }

    pub fn kubectl(&self) -> Kubectl {
        Kubectl {
            bin: self.bin.join("kubectl"),
            kubeconfig: self.kubeconfig.clone(),
            cache_dir: self.path.join("kubectl-cache"),
        }
    }

    fn stop(&mut self) {
        let out = run_bounded(
            {
                let mut c = Command::new(control_plane_script());
                c.arg("stop").arg(&self.path);
                c
            },
            None,
            Duration::from_secs(60),
        );
        if !out.success() {
            announce(format!(
                "e2e: stopping the control plane failed: {}",
                out.describe()
            ));
        }
        stop_watchdog(&mut self.watchdog);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let failing = thread::panicking();
        if failing {
            for c in ["kube-apiserver", "etcd", "kube-controller-manager"] {
                eprintln!(
                    "===== tail of {c}.log =====\n{}",
                    tail(&self.path.join(format!("logs/{c}.log")), 25)
                );
            }
        }
        let t = Instant::now();
        self.stop();
        eprintln!(
            "e2e: control plane stopped in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        if let Some(dir) = self.dir.take() {
            if failing || keep_requested() {
                let kept = dir.keep();
                announce(format!(
                    "e2e: kept the control plane directory {} (logs/, kubeconfig)",
                    kept.display()
                ));
            }
        }
    }
}

/// A started control plane for one test, with its kubectl and a directory for wasmgate's files
/// inside the cluster's (removed with it, or kept with it when the test fails). `None`: skip the
/// test (WASMGATE_SKIP_E2E=1, announced loudly by [`control_plane_bin`]).
pub fn start_cluster() -> Option<(ControlPlane, Kubectl, PathBuf)> {
    let bin = control_plane_bin()?;
    let t = Instant::now();
    let cluster = ControlPlane::start(&bin);
    announce(format!(
        "e2e: control plane ready in {:.1}s at {} ({})",
        t.elapsed().as_secs_f64(),
        cluster.apiserver_url,
        cluster.dir().display()
    ));
    let kubectl = cluster.kubectl();
    let work = cluster.dir().join("wasmgate");
    std::fs::create_dir_all(&work).expect("create the wasmgate directory");
    Some((cluster, kubectl, work))
}

// ---------------------------------------------------------------------------------------------
// kubectl
// ---------------------------------------------------------------------------------------------

/// kubectl from the control-plane build (the machine's may be too old), with the test cluster's
/// kubeconfig and a private discovery cache.
pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
    pub cache_dir: PathBuf,
}

impl Kubectl {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args)
            .current_dir(repo_root())
            .env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Runs kubectl (bounded by [`COMMAND_TIMEOUT`]) with `stdin` as input.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_bounded(self.command(args), stdin, COMMAND_TIMEOUT)
    }

    /// Runs kubectl and panics unless it succeeds.
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let out = self.run(args, stdin);
        assert!(out.success(), "kubectl failed: {}", out.describe());
        out
    }

    /// Runs kubectl (with `stdin`) every `every` until it succeeds, at most `timeout` (then
    /// panics with `what` and the last attempt); returns the successful run.
    pub fn wait_ok(
        &self,
        what: &str,
        timeout: Duration,
        every: Duration,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Output {
        poll(what, timeout, every, || {
            let out = self.run(args, stdin);
            if out.success() {
                Ok(out)
            } else {
                Err(out.describe())
            }
        })
    }

    /// `kubectl get --raw PATH`, parsed as JSON.
    pub fn raw_json(&self, path: &str) -> Value {
        let out = self.ok(&["get", "--raw", path], None);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", out.describe()))
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let out = self.ok(&all, None);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("kubectl printed no JSON ({e}): {}", out.describe()))
    }
}

/// The columns of `kubectl get hosts`.
pub const HOST_COLUMNS: [&str; 8] = [
    "NAME",
    "HOSTID",
    "HOSTGROUP",
    "ENVIRONMENT",
    "READY",
    "VERSION",
    "WORKLOADS",
    "AGE",
];

/// The columns `kubectl get hosts -o wide` adds (after [`HOST_COLUMNS`]).
pub const HOST_WIDE_COLUMNS: [&str; 7] = [
    "HOSTNAME",
    "OS",
    "ARCH",
    "CPU",
    "MEMORY-FREE",
    "INTERFACES",
    "LAST-SEEN",
];

/// The column names of a table kubectl printed (its first line).
pub fn header(out: &str) -> Vec<&str> {
    out.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

/// The first cell of each row of a table kubectl printed (below its header): the names.
pub fn names(out: &str) -> Vec<&str> {
    out.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

/// `kubectl get hosts -l SELECTOR` lists exactly the hosts named in each case, and none for
/// `empty` (kubectl says "No resources found").
pub fn assert_host_selectors(kubectl: &Kubectl, cases: &[(&str, Vec<&str>)], empty: &str) {
    for (selector, want) in cases {
        let out = kubectl.ok(&["get", "hosts", "-l", selector], None);
        assert_eq!(
            &names(&out.stdout),
            want,
            "-l {selector}: {}",
            out.describe()
        );
    }
    let none = kubectl.ok(&["get", "hosts", "-l", empty], None);
    assert!(
        none.stderr.contains("No resources found"),
        "{}",
        none.describe()
    );
}

/// `kubectl explain host` (polled: the aggregator publishes a new APIService's OpenAPI shortly
/// after it is Available) shows the group, kind, version and top-level fields of a Host.
pub fn assert_explain_host(kubectl: &Kubectl) {
    let out = kubectl.wait_ok(
        "kubectl explain host",
        Duration::from_secs(60),
        Duration::from_millis(500),
        &["explain", "host"],
        None,
    );
    for want in [
        "GROUP:      wasmgate.dev",
        "KIND:       Host",
        "VERSION:    v1alpha1",
        "hostId\t<string>",
        "metadata\t<ObjectMeta>",
        "status\t<HostStatus>",
    ] {
        assert!(
            out.stdout.contains(want),
            "explain host lacks {want:?}: {}",
            out.describe()
        );
    }
}

/// `kubectl get ARGS -w --output-watch-events` in the background; its output (stdout and stderr)
/// goes to a file, read by the `wait_for_*` methods. Killed on drop.
pub struct Watcher {
    child: Child,
    out: PathBuf,
}

impl Watcher {
    /// Starts `kubectl get <args> -w --output-watch-events`, e.g. `args = ["hosts"]`.
    pub fn start(kubectl: &Kubectl, args: &[&str], out: PathBuf) -> Watcher {
        let file = std::fs::File::create(&out).expect("create the watch output file");
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-w", "--output-watch-events"]);
        let mut cmd = kubectl.command(&all);
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup"))
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start kubectl {}: {e}", all.join(" ")));
        Watcher { child, out }
    }

    /// What the watch has printed so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The index of the first line `f` accepts, polled (every 100 ms) for `timeout`.
    pub fn wait_for_line(&self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> usize {
        poll(what, timeout, Duration::from_millis(100), || {
            let text = self.text();
            text.lines().position(&f).ok_or(text)
        })
    }

    /// [`Watcher::wait_for_line`] with each line split into its cells (on white space).
    pub fn wait_for_cells(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&[&str]) -> bool,
    ) -> usize {
        self.wait_for_line(what, timeout, |l| {
            f(&l.split_whitespace().collect::<Vec<_>>())
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// wasmgate serve
// ---------------------------------------------------------------------------------------------

/// A TCP port on 127.0.0.1 that is free now, below the kernel's ephemeral range (so an outgoing
/// connection will not take it between choosing and binding, or while wasmgate is restarted).
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    for i in 0u32..500 {
        let port = 20000 + (state.hash_one((std::process::id(), i)) % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1 in 20000..32000");
}

/// `wasmgate serve` on 127.0.0.1:PORT with certificates generated in (or reused from) `cert_dir`,
/// killed on drop.
pub struct Wasmgate {
    child: Option<Child>,
    watchdog: Option<Child>,
    pub port: u16,
    pub cert_dir: PathBuf,
    pub inventory: PathBuf,
    pub log: PathBuf,
    /// More `wasmgate serve` arguments (kept across restarts).
    pub extra_args: Vec<String>,
    /// Whether `--inventory` is passed ([`Wasmgate::start_live`] omits it, so admission uses the
    /// live inventory).
    with_inventory: bool,
}

impl Wasmgate {
    /// Starts `wasmgate serve` and waits (bounded) until `GET /readyz` answers over TLS with the
    /// generated CA.
    pub fn start(port: u16, cert_dir: &Path, inventory: &Path, log: &Path) -> Wasmgate {
        Self::start_with(port, cert_dir, inventory, log, &[])
    }

    /// [`Wasmgate::start`] with more `wasmgate serve` arguments.
    pub fn start_with(
        port: u16,
        cert_dir: &Path,
        inventory: &Path,
        log: &Path,
        extra_args: &[String],
    ) -> Wasmgate {
        let mut wg = Wasmgate {
            child: None,
            watchdog: None,
            port,
            cert_dir: cert_dir.to_path_buf(),
            inventory: inventory.to_path_buf(),
            log: log.to_path_buf(),
            extra_args: extra_args.to_vec(),
            with_inventory: true,
        };
        wg.spawn();
        wg
    }

    /// `wasmgate serve` without `--inventory`: admission and the hosts API both use the live
    /// inventory (give `--nats-url` in `extra_args` for heartbeats from NATS). `inventory` is
    /// left empty.
    pub fn start_live(port: u16, cert_dir: &Path, log: &Path, extra_args: &[String]) -> Wasmgate {
        let mut wg = Wasmgate {
            child: None,
            watchdog: None,
            port,
            cert_dir: cert_dir.to_path_buf(),
            inventory: PathBuf::new(),
            log: log.to_path_buf(),
            extra_args: extra_args.to_vec(),
            with_inventory: false,
        };
        wg.spawn();
        wg
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "wasmgate is already running");
        let logfile = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--cert-dir")
            .arg(&self.cert_dir);
        if self.with_inventory {
            cmd.arg("--inventory").arg(&self.inventory);
        }
        // Every example carries its worlds in annotations: no test reaches for a registry.
        cmd.args(["--registry-pulls", "false"])
            .args(&self.extra_args)
            .current_dir(repo_root())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("dup log file"))
            .stderr(logfile);
        let t = Instant::now();
        let child = cmd.spawn().expect("start wasmgate serve");
        let pid = child.id();
        self.child = Some(child);
        self.watchdog = spawn_watchdog(&format!("kill {pid} 2>/dev/null"));
        self.wait_ready(Duration::from_secs(30));
        eprintln!(
            "e2e: wasmgate (pid {pid}) ready on port {} in {:.1}s",
            self.port,
            t.elapsed().as_secs_f64()
        );
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let url = self.url("/readyz");
        let ca = self.ca_file();
        let log = self.log.clone();
        let child = self.child.as_mut().expect("wasmgate started");
        poll(
            "wasmgate /readyz",
            timeout,
            Duration::from_millis(100),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "wasmgate serve exited during startup ({status}); its log:\n{}",
                        tail(&log, 40)
                    );
                }
                if !ca.is_file() {
                    return Err(format!("{} not written yet", ca.display()));
                }
                let mut curl = Command::new("curl");
                curl.args(["-fsS", "--max-time", "2", "--cacert"])
                    .arg(&ca)
                    .arg(&url);
                let out = run_bounded(curl, None, Duration::from_secs(5));
                if out.success() {
                    Ok(())
                } else {
                    Err(out.describe())
                }
            },
        );
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.cert_dir.join("ca.crt")
    }

    /// The caBundle for a webhook configuration: base64 of the generated CA.
    pub fn ca_bundle(&self) -> String {
        use base64::Engine as _;
        let pem = std::fs::read(self.ca_file())
            .unwrap_or_else(|e| panic!("read {}: {e}", self.ca_file().display()));
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    /// Kills the server (as a crash or an outage would) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        stop_watchdog(&mut self.watchdog);
    }

    /// Starts it again on the same port with the same certificate directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Wasmgate {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "===== tail of {} =====\n{}",
                self.log.display(),
                self.log_tail(30)
            );
        }
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// NATS and simulated hosts
// ---------------------------------------------------------------------------------------------

/// The nats-server binary: `$NATS_SERVER`, else the Debian package's `/usr/sbin/nats-server`,
/// else `nats-server` on PATH. Panics (with how to install it) when there is none.
pub fn nats_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(p);
    }
    let debian = Path::new("/usr/sbin/nats-server");
    if debian.is_file() {
        return debian.to_path_buf();
    }
    assert!(
        on_path("nats-server"),
        "e2e: nats-server is not installed (Debian package nats-server: `. scripts/lib-install.sh \
         && install_system_packages`, or set NATS_SERVER=/path/to/nats-server)"
    );
    PathBuf::from("nats-server")
}

/// A real nats-server on 127.0.0.1 (a free port), logging to a file, killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    watchdog: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    /// Arguments besides the address (kept for [`NatsServer::restart`]).
    extra: Vec<String>,
}

impl NatsServer {
    /// Starts nats-server and waits (bounded) until it accepts TCP connections.
    pub fn start(log: &Path) -> NatsServer {
        Self::start_on(free_port(), log, Vec::new())
    }

    /// Starts nats-server with JetStream, storing in `store` (which outlives restarts).
    pub fn start_jetstream(log: &Path, store: &Path) -> NatsServer {
        let extra = vec!["-js".to_string(), "-sd".into(), store.display().to_string()];
        Self::start_on(free_port(), log, extra)
    }

    /// Stops it and starts a new nats-server on the same port (clients reconnect to it).
    pub fn restart(&mut self) {
        self.stop();
        let log = self.log.with_extension("restarted.log");
        let extra = std::mem::take(&mut self.extra);
        *self = Self::start_on(self.port, &log, extra);
    }

    fn start_on(port: u16, log: &Path, extra: Vec<String>) -> NatsServer {
        let logfile =
            std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let t = Instant::now();
        let child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("dup log file"))
            .stderr(logfile)
            .spawn()
            .unwrap_or_else(|e| panic!("e2e: cannot start nats-server: {e}"));
        let pid = child.id();
        let mut nats = NatsServer {
            child: Some(child),
            watchdog: spawn_watchdog(&format!("kill {pid} 2>/dev/null")),
            port,
            log: log.to_path_buf(),
            extra,
        };
        let log = nats.log.clone();
        let child = nats.child.as_mut().expect("started");
        poll(
            "nats-server to accept connections",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "nats-server exited during startup ({status}); its log:\n{}",
                        tail(&log, 20)
                    );
                }
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        );
        eprintln!(
            "e2e: nats-server (pid {pid}) ready on port {port} in {:.2}s",
            t.elapsed().as_secs_f64()
        );
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        stop_watchdog(&mut self.watchdog);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "===== tail of {} =====\n{}",
                self.log.display(),
                tail(&self.log, 20)
            );
        }
        self.stop();
    }
}

/// `wasmgate serve` on the live inventory of `nats` ([`Wasmgate::start_live`]: no `--inventory`;
/// `--inventory-warmup 0s`: ready as soon as NATS is connected), with
/// `--heartbeat-timeout HEARTBEAT_TIMEOUT`, a long `--host-retention` (NotReady hosts stay
/// listed), `--kubeconfig KUBECONFIG` and `more` arguments; certificates and log in `work`.
pub fn start_live_wasmgate(
    nats: &NatsServer,
    work: &Path,
    heartbeat_timeout: Duration,
    kubeconfig: &Path,
    more: &[&str],
) -> Wasmgate {
    let mut args: Vec<String> = vec![
        "--nats-url".into(),
        nats.url(),
        "--inventory-warmup".into(),
        "0s".into(),
        "--heartbeat-timeout".into(),
        format!("{}s", heartbeat_timeout.as_secs()),
        "--host-retention".into(),
        "600s".into(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
    ];
    args.extend(more.iter().map(|a| a.to_string()));
    Wasmgate::start_live(
        free_port(),
        &work.join("certs"),
        &work.join("wasmgate.log"),
        &args,
    )
}

/// A background `wasmgate sim-hosts --nats-url URL ARGS...` (the real binary), heartbeating until
/// it is killed ([`SimHosts::kill`], as a host crash would stop its heartbeats) or dropped.
pub struct SimHosts {
    child: Option<Child>,
    watchdog: Option<Child>,
    pub args: Vec<String>,
    pub log: PathBuf,
}

impl SimHosts {
    /// Starts it and waits (bounded) until it is connected and publishing (its `publishing
    /// heartbeats` log line).
    pub fn start(nats_url: &str, args: &[&str], log: &Path) -> SimHosts {
        let logfile =
            std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
        cmd.args(["sim-hosts", "--nats-url", nats_url])
            .args(args)
            .current_dir(repo_root())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("dup log file"))
            .stderr(logfile);
        let t = Instant::now();
        let child = cmd.spawn().expect("start wasmgate sim-hosts");
        let pid = child.id();
        let mut sim = SimHosts {
            child: Some(child),
            watchdog: spawn_watchdog(&format!("kill {pid} 2>/dev/null")),
            args: args.iter().map(|a| a.to_string()).collect(),
            log: log.to_path_buf(),
        };
        let log = sim.log.clone();
        let child = sim.child.as_mut().expect("started");
        poll(
            "wasmgate sim-hosts to publish",
            Duration::from_secs(20),
            Duration::from_millis(50),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "wasmgate sim-hosts {args:?} exited ({status}); its log:\n{}",
                        tail(&log, 20)
                    );
                }
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("publishing heartbeats") {
                    Ok(())
                } else {
                    Err(text)
                }
            },
        );
        eprintln!(
            "e2e: wasmgate sim-hosts (pid {pid}) {} publishing in {:.2}s",
            args.join(" "),
            t.elapsed().as_secs_f64()
        );
        sim
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills it (SIGKILL: no goodbye, its hosts just stop heartbeating) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        stop_watchdog(&mut self.watchdog);
    }
}

impl Drop for SimHosts {
    fn drop(&mut self) {
        if thread::panicking() && self.child.is_some() {
            eprintln!(
                "===== tail of {} =====\n{}",
                self.log.display(),
                tail(&self.log, 10)
            );
        }
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Registering wasmgate with the control plane
// ---------------------------------------------------------------------------------------------

/// The three kinds of `wasmgate crds`, as kubectl names them.
pub const WORKLOAD_RESOURCES: &str = "workloads,workloadreplicasets,workloaddeployments";

/// The CRDs of `wasmgate crds`, applied and Established (and resolvable by kubectl). Returns the
/// output of `kubectl apply`.
pub fn install_workload_crds(kubectl: &Kubectl) -> Output {
    let mut crds = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
    crds.arg("crds");
    let crds = run_bounded(crds, None, Duration::from_secs(30));
    assert!(crds.success(), "wasmgate crds: {}", crds.describe());
    let applied = kubectl.ok(&["apply", "-f", "-"], Some(&crds.stdout));
    kubectl.ok(
        &[
            "wait",
            "--for",
            "condition=established",
            "--timeout=60s",
            "crd/workloads.runtime.wasmcloud.dev",
            "crd/workloadreplicasets.runtime.wasmcloud.dev",
            "crd/workloaddeployments.runtime.wasmcloud.dev",
        ],
        None,
    );
    // Established, yet kubectl's discovery may lag a moment: list until the kinds resolve.
    kubectl.wait_ok(
        "kubectl to list the new kinds",
        Duration::from_secs(30),
        Duration::from_millis(200),
        &["get", WORKLOAD_RESOURCES, "-A"],
        None,
    );
    applied
}

/// [`apply_webhook_configurations_at`] wasmgate's port, with its generated CA as the caBundle.
pub fn apply_webhook_configurations(
    kubectl: &Kubectl,
    wasmgate: &Wasmgate,
) -> Vec<(String, Value)> {
    apply_webhook_configurations_at(kubectl, wasmgate.port, Some(&wasmgate.ca_bundle()))
}

/// Applies `webhooks/validating.yaml` and `webhooks/mutating.yaml` with their Service
/// clientConfig replaced by `https://127.0.0.1:PORT/{validate,mutate}` and `ca_bundle` (none:
/// left for wasmgate to write), as kube-apiserver cannot reach a Service backed by 127.0.0.1.
/// Does not wait for them to take effect (kube-apiserver learns of them through an informer; see
/// [`wait_for_webhooks`]). Returns each manifest with the object applied.
pub fn apply_webhook_configurations_at(
    kubectl: &Kubectl,
    port: u16,
    ca_bundle: Option<&str>,
) -> Vec<(String, Value)> {
    let mut applied = Vec::new();
    for (manifest, path) in [
        ("webhooks/validating.yaml", "/validate"),
        ("webhooks/mutating.yaml", "/mutate"),
    ] {
        let mut client_config =
            serde_json::json!({"url": format!("https://127.0.0.1:{port}{path}")});
        if let Some(ca) = ca_bundle {
            client_config["caBundle"] = ca.into();
        }
        let patch = serde_json::json!([{
            "op": "replace",
            "path": "/webhooks/0/clientConfig",
            "value": client_config,
        }]);
        let patched = patch_local(kubectl, manifest, &patch);
        kubectl.ok(&["apply", "-f", "-"], Some(&patched.to_string()));
        applied.push((manifest.to_owned(), patched));
    }
    applied
}

/// Polls until both webhooks are called: a server-side dry run of `broken` is denied by
/// wasmgate, and one of `good` comes back with the mutating webhook's default
/// (`imagePullPolicy: IfNotPresent` on its first component).
pub fn wait_for_webhooks(kubectl: &Kubectl, what: &str, broken: &str, good: &str) {
    poll(
        what,
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let denied = kubectl.run(&["apply", "--dry-run=server", "-f", broken], None);
            if !denied.stderr.contains(WEBHOOK_DENIED) {
                return Err(denied.describe());
            }
            let good = kubectl.run(
                &["apply", "--dry-run=server", "-f", good, "-o", "json"],
                None,
            );
            let defaulted = serde_json::from_str::<Value>(&good.stdout)
                .map(|o| o["spec"]["components"][0]["imagePullPolicy"] == "IfNotPresent")
                .unwrap_or(false);
            if good.success() && defaulted {
                Ok(())
            } else {
                Err(good.describe())
            }
        },
    );
}

/// How kubectl prints a denial by wasmgate's validating webhook (the message follows).
pub const WEBHOOK_DENIED: &str = "admission webhook \"validate.wasmgate.dev\" denied the request: ";

/// `kubectl patch --local -f MANIFEST --type=json -p PATCH -o json`, parsed.
fn patch_local(kubectl: &Kubectl, manifest: &str, patch: &Value) -> Value {
    let patched = kubectl.ok(
        &[
            "patch",
            "--local",
            "-f",
            manifest,
            "--type=json",
            "-p",
            &patch.to_string(),
            "-o",
            "json",
        ],
        None,
    );
    serde_json::from_str(&patched.stdout)
        .unwrap_or_else(|e| panic!("{manifest} patched: not JSON ({e}): {}", patched.describe()))
}

/// Applies manifests/namespace.yaml, serviceaccount.yaml, rbac.yaml and rbac-reconciler.yaml, and
/// writes a kubeconfig (in `work`) holding a token of the `wasmgate` ServiceAccount, so wasmgate
/// runs with exactly the RBAC of manifests/. Returns its path.
pub fn install_wasmgate_rbac(cluster: &ControlPlane, kubectl: &Kubectl, work: &Path) -> PathBuf {
    kubectl.ok(
        &[
            "apply",
            "-f",
            "manifests/namespace.yaml",
            "-f",
            "manifests/serviceaccount.yaml",
            "-f",
            "manifests/rbac.yaml",
            "-f",
            "manifests/rbac-reconciler.yaml",
        ],
        None,
    );
    service_account_kubeconfig(
        cluster,
        kubectl,
        "wasmgate-system",
        "wasmgate",
        &work.join("wasmgate-sa.kubeconfig"),
    )
}

/// Runs `scripts/SCRIPT` (a cached Go build such as build-helm.sh or build-jaeger.sh, which
/// prints its bin directory last) and returns that directory, checked to hold `binary`. Panics,
/// pointing at the script's log, when the build fails.
pub fn cached_tool_dir(script: &str, binary: &str) -> PathBuf {
    let script = repo_root().join("scripts").join(script);
    let t = Instant::now();
    let out = Command::new(&script)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{binary} could not be built: {} exited with {} (its log is above); it needs Go and the \
         Go module proxy for the first build{}",
        script.display(),
        out.status,
        if e2e_required() {
            ""
        } else {
            " (to skip locally, set WASMGATE_SKIP_E2E=1)"
        }
    );
    if t.elapsed() > Duration::from_secs(5) {
        announce(format!(
            "{binary}: built in {:.0}s",
            t.elapsed().as_secs_f64()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    assert!(
        dir.join(binary).is_file(),
        "no {binary} in {}",
        dir.display()
    );
    dir
}

/// Writes a kubeconfig at `path` holding a token of ServiceAccount `namespace/name`, so a process
/// run with it has exactly that account's RBAC (as in a Pod). Returns `path`.
pub fn service_account_kubeconfig(
    cluster: &ControlPlane,
    kubectl: &Kubectl,
    namespace: &str,
    name: &str,
    path: &Path,
) -> PathBuf {
    let token = kubectl.ok(
        &["create", "token", name, "-n", namespace, "--duration=2h"],
        None,
    );
    let ca = cluster
        .env
        .get("WASMGATE_CA_CERT")
        .expect("control-plane.sh exports WASMGATE_CA_CERT");
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    \
         certificate-authority: {ca}\nusers:\n- name: wasmgate\n  user:\n    token: {}\n\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: wasmgate\n\
         current-context: test\n",
        cluster.apiserver_url,
        token.stdout.trim()
    );
    std::fs::write(path, config).expect("write the ServiceAccount kubeconfig");
    path.to_path_buf()
}

/// Everything in manifests/ is accepted by the real apiserver (`kubectl apply --dry-run=server
/// -k manifests/`, kustomize included): the Deployment, APIService, PodDisruptionBudget and
/// Service are among the objects it lists.
pub fn dry_run_manifests(kubectl: &Kubectl) {
    let dry = kubectl.ok(&["apply", "--dry-run=server", "-k", "manifests/"], None);
    for object in [
        "deployment.apps/wasmgate",
        "apiservice.apiregistration.k8s.io/v1alpha1.wasmgate.dev",
        "poddisruptionbudget.policy/wasmgate",
        "service/wasmgate",
    ] {
        assert!(dry.stdout.contains(object), "{object}: {}", dry.describe());
    }
    // The opt-in NetworkPolicy, applied beside the base.
    let dry = kubectl.ok(
        &[
            "apply",
            "--dry-run=server",
            "-k",
            "manifests/networkpolicy/",
        ],
        None,
    );
    let object = "networkpolicy.networking.k8s.io/wasmgate";
    assert!(dry.stdout.contains(object), "{object}: {}", dry.describe());
}

/// The hosts APIService, as kubectl names it.
pub const APISERVICE: &str = "apiservice/v1alpha1.wasmgate.dev";

/// Applies what registers the `hosts` aggregated API: a Service `wasmgate-system/wasmgate` of type
/// ExternalName pointing at `localhost`, and manifests/apiservice.yaml with wasmgate's `port` and
/// `ca_bundle` (none: left for wasmgate to write). Does not wait.
pub fn apply_hosts_apiservice(kubectl: &Kubectl, port: u16, ca_bundle: Option<&str>) {
    let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: wasmgate\n  namespace: \
                   wasmgate-system\nspec:\n  type: ExternalName\n  externalName: localhost\n";
    kubectl.ok(&["apply", "-f", "-"], Some(service));
    let mut patch = vec![serde_json::json!(
        {"op": "replace", "path": "/spec/service/port", "value": port}
    )];
    if let Some(ca) = ca_bundle {
        patch.insert(
            0,
            serde_json::json!({"op": "add", "path": "/spec/caBundle", "value": ca}),
        );
    }
    let patched = patch_local(kubectl, "manifests/apiservice.yaml", &Value::from(patch));
    kubectl.ok(&["apply", "-f", "-"], Some(&patched.to_string()));
}

/// Registers the `hosts` aggregated API ([`apply_hosts_apiservice`] with wasmgate's port and
/// generated CA); waits (bounded) until the APIService is Available (status True, reason Passed)
/// and kubectl resolves `hosts`.
pub fn register_hosts_apiservice(kubectl: &Kubectl, wasmgate: &Wasmgate) {
    apply_hosts_apiservice(kubectl, wasmgate.port, Some(&wasmgate.ca_bundle()));
    wait_apiservice_available(kubectl, wasmgate);
    let svc = kubectl.get_json(&[APISERVICE]);
    let available = condition(&svc, "Available");
    assert_eq!(available["status"], "True", "{svc:#}");
    assert_eq!(available["reason"], "Passed", "{svc:#}");
    // kubectl's discovery may lag a moment behind Available.
    kubectl.wait_ok(
        "kubectl to resolve `hosts`",
        Duration::from_secs(30),
        Duration::from_millis(300),
        &["get", "hosts"],
        None,
    );
}

/// Waits (`kubectl wait`, 90 s) until the hosts APIService is Available; panics with its status
/// and the tail of `wasmgate`'s log when it does not.
pub fn wait_apiservice_available(kubectl: &Kubectl, wasmgate: &Wasmgate) {
    let out = kubectl.run(
        &[
            "wait",
            "--for=condition=Available",
            APISERVICE,
            "--timeout=90s",
        ],
        None,
    );
    if !out.success() {
        let status = kubectl.run(&["get", APISERVICE, "-o", "yaml"], None);
        panic!(
            "the APIService did not become Available: {}\n{}\nwasmgate log:\n{}",
            out.describe(),
            status.stdout,
            wasmgate.log_tail(40)
        );
    }
}

/// The condition `type_` of `obj`'s `status.conditions` (Null when it has none).
pub fn condition(obj: &Value, type_: &str) -> Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A Workload `default/orders` (label `app: orders`) whose component (its world given by the
/// annotation) imports wasmcloud:postgres/query@0.2.0, to run on the `data` host group.
pub const ORDERS_WORKLOAD: &str = r#"apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata:
  name: orders
  namespace: default
  labels:
    app: orders
  annotations:
    wit.wasmgate.dev/api: |
      package example:orders;
      world api {
        import orders-db: wasmcloud:postgres/query@0.2.0;
      }
spec:
  hostSelector:
    hostgroup: data
  hostInterfaces:
    - name: orders-db
      namespace: wasmcloud
      package: postgres
      version: "0.2.0"
      interfaces: [query]
  components:
    - name: api
      image: registry.test/orders:1.0.0
"#;
