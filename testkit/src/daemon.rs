//! A long-running child program (docker-registry, postgres) that logs to a file and dies with us.
//!
//! Output goes to a file rather than a pipe so a test that blocks its runtime (writing a large
//! layer, say) can never stall the child on a full pipe, and the log survives restarts.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

const SETPRIV: &str = "/usr/bin/setpriv";

/// How to start a [`Daemon`].
pub(crate) struct DaemonSpec<'a> {
    pub program: &'a Path,
    pub args: Vec<OsString>,
    pub log: &'a Path,
    pub cwd: &'a Path,
    /// Run as this user when we are root (PostgreSQL refuses to run as root).
    pub user: Option<&'a str>,
    /// Signal sent first when the handle drops (`QUIT` is PostgreSQL's immediate shutdown).
    pub drop_signal: &'static str,
}

/// A running child; dropping it signals the process and waits (briefly) until it is gone.
pub(crate) struct Daemon {
    child: Option<Child>,
    drop_signal: &'static str,
}

pub(crate) fn running_as_root() -> bool {
    // The owner of /proc/self is our effective uid: no libc needed.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Daemon {
    pub(crate) fn spawn(spec: DaemonSpec<'_>) -> Daemon {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(spec.log)
            .unwrap_or_else(|e| panic!("open log {}: {e}", spec.log.display()));
        let log_err = log.try_clone().expect("clone log file handle");
        let mut command = command(spec.program, spec.user);
        command
            .args(&spec.args)
            .current_dir(spec.cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", spec.program.display()));
        Daemon {
            child: Some(child),
            drop_signal: spec.drop_signal,
        }
    }

    /// True once the process has exited (or was stopped).
    pub(crate) fn has_exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Sends `signal` (e.g. "INT", "TERM"), waits up to `grace` for exit, then SIGKILLs.
    pub(crate) async fn stop(&mut self, signal: &str, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            send_signal(pid, signal);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    fn stop_blocking(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            if self.drop_signal == "KILL" {
                let _ = child.start_kill();
            } else {
                send_signal(pid, self.drop_signal);
            }
        }
        let deadline = Instant::now() + grace;
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = child.start_kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // If it is still running, kill_on_drop sends SIGKILL and tokio reaps it later.
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop_blocking(Duration::from_secs(5));
    }
}

/// A command running `program` as `user` (when we are root) that is SIGKILLed when the thread
/// spawning it exits. setpriv execs in place (no extra process, unlike `runuser`, which forks and
/// waits), so the pid we hold is the program's own.
pub(crate) fn command(program: &Path, user: Option<&str>) -> Command {
    if !Path::new(SETPRIV).exists() {
        assert!(
            user.is_none() || !running_as_root(),
            "{SETPRIV} (util-linux) is needed to run {} as {user:?}",
            program.display()
        );
        return Command::new(program);
    }
    let mut command = Command::new(SETPRIV);
    if let (Some(user), true) = (user, running_as_root()) {
        command
            .arg(format!("--reuid={user}"))
            .arg(format!("--regid={user}"))
            .arg("--init-groups");
    }
    command.args(["--pdeathsig", "KILL", "--"]).arg(program);
    command
}

/// Sends a named signal through the shell's `kill` builtin (the crate forbids `unsafe`, so no libc).
fn send_signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("sh")
        .args([
            "-c",
            "kill -s \"$0\" \"$1\" 2>/dev/null",
            signal,
            &pid.to_string(),
        ])
        .status();
}

/// The whole content of a log file, lossily decoded; empty if it does not exist yet.
pub(crate) fn read_log(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// A temp dir under `$TESTKIT_TMPDIR` (scripts/test.sh points it into its own work dir, so even
/// dirs leaked by a killed test go away with the run), else under /tmp. Not `$TMPDIR`: it may be
/// private to root while the `postgres` user must reach the dir.
pub(crate) fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let parent = std::env::var_os("TESTKIT_TMPDIR").unwrap_or_else(|| "/tmp".into());
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .unwrap_or_else(|e| panic!("create temp dir under {parent:?}: {e}"))
}

pub(crate) fn path_arg(path: impl Into<PathBuf>) -> OsString {
    path.into().into_os_string()
}

/// Runs a one-shot tool (`openssl`, `htpasswd`) in `dir` and returns what it printed; panics
/// naming the tool and its arguments if it cannot start or fails.
pub(crate) async fn tool_output(program: &str, args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {program} ({e}): scripts/test.sh installs it"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
