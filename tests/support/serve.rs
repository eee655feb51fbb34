//! A `wasmgate serve` process the test controls more closely than [`super::Wasmgate`]: its
//! environment is isolated (no kubeconfig unless one is passed, no in-cluster variables), and it
//! is not waited for, so a test can watch it while it is not ready yet, or see it refuse to
//! start. Killed on drop (and by the watchdog if the test process dies).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{poll, repo_root, run_bounded, spawn_watchdog, stop_watchdog, tail, Output};

/// `wasmgate serve ARGS` with a scrubbed environment: `HOME` is `home` (so no
/// `~/.kube/config`), and `KUBECONFIG`, the in-cluster variables and every `WASMGATE_*` variable
/// are unset. Only what `args` says configures it.
pub fn serve_command(home: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
    cmd.arg("serve").args(args).current_dir(repo_root());
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("WASMGATE_") || k.starts_with("KUBERNETES_") || k == "KUBECONFIG" {
            cmd.env_remove(&key);
        }
    }
    cmd.env("HOME", home)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info");
    cmd
}

/// Runs `wasmgate serve ARGS` ([`serve_command`]) to completion, killed after `timeout`: for
/// configurations it must refuse.
pub fn serve_to_exit(home: &Path, args: &[String], timeout: Duration) -> Output {
    run_bounded(serve_command(home, args), None, timeout)
}

/// A running `wasmgate serve` ([`serve_command`]) on 127.0.0.1:`port` with generated
/// certificates in `cert_dir`, logging to `log`.
pub struct ServeProcess {
    child: Option<Child>,
    watchdog: Option<Child>,
    pub port: u16,
    pub cert_dir: PathBuf,
    pub log: PathBuf,
}

impl ServeProcess {
    /// Starts it with `--listen 127.0.0.1:PORT --cert-dir CERT_DIR --registry-pulls false` and
    /// `args`; does not wait for anything.
    pub fn spawn(port: u16, cert_dir: &Path, log: &Path, home: &Path, args: &[String]) -> Self {
        let mut all = vec![
            "--listen".to_string(),
            format!("127.0.0.1:{port}"),
            "--cert-dir".to_string(),
            cert_dir.display().to_string(),
            "--registry-pulls".to_string(),
            "false".to_string(),
        ];
        all.extend(args.iter().cloned());
        let logfile =
            std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut cmd = serve_command(home, &all);
        cmd.stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("dup log file"))
            .stderr(logfile);
        let child = cmd.spawn().expect("start wasmgate serve");
        let pid = child.id();
        eprintln!("e2e: wasmgate serve (pid {pid}) {}", all.join(" "));
        ServeProcess {
            child: Some(child),
            watchdog: spawn_watchdog(&format!("kill {pid} 2>/dev/null")),
            port,
            cert_dir: cert_dir.to_path_buf(),
            log: log.to_path_buf(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.cert_dir.join("ca.crt")
    }

    /// Everything it has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with its log) if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "wasmgate serve exited ({status}); its log:\n{}",
                    tail(&self.log, 40)
                );
            }
        }
    }

    /// The HTTP status of `GET /readyz` (0: no answer: not listening yet, or no CA file yet).
    pub fn readyz(&self) -> u16 {
        if !self.ca_file().is_file() {
            return 0;
        }
        let ca = self.ca_file().display().to_string();
        curl(&["--cacert", &ca, &self.url("/readyz")]).0
    }

    /// Waits (bounded by `timeout`) until it listens: `GET /readyz` answers, whatever it says.
    pub fn wait_listening(&mut self, timeout: Duration) {
        poll(
            "wasmgate to listen",
            timeout,
            Duration::from_millis(100),
            || {
                self.assert_running();
                match self.readyz() {
                    0 => Err("no answer yet".to_string()),
                    _ => Ok(()),
                }
            },
        );
    }

    /// Waits (bounded by `timeout`) until `GET /readyz` is 200.
    pub fn wait_ready(&mut self, timeout: Duration) {
        poll(
            "wasmgate /readyz",
            timeout,
            Duration::from_millis(200),
            || {
                self.assert_running();
                match self.readyz() {
                    200 => Ok(()),
                    code => Err(format!("/readyz: {code}")),
                }
            },
        );
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== tail of {} =====\n{}",
                self.log.display(),
                tail(&self.log, 40)
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        stop_watchdog(&mut self.watchdog);
    }
}

/// `curl -sS ARGS`: the HTTP status (0 when there was no HTTP answer) and the body as JSON (Null
/// when it is not JSON).
pub fn curl(args: &[&str]) -> (u16, Value) {
    let (code, body) = curl_text(args);
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// `curl -sS ARGS`: the HTTP status (0 when there was no HTTP answer) and the body.
pub fn curl_text(args: &[&str]) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args);
    let out = run_bounded(cmd, None, Duration::from_secs(20));
    let (body, code) = out
        .stdout
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", out.stdout.trim()));
    (code.trim().parse().unwrap_or(0), body.to_string())
}
