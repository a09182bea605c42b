//! Runs oras-py (the ORAS project's Python client, `oras` on PyPI, pinned and installed into a
//! virtualenv by `scripts/test.sh`) as a push and pull client. It is a client written apart
//! from skopeo and containerd (Python `requests`, its own upload and auth code), and it pushes
//! artifacts the way `oras push` and `helm push` lay them out. `oras_driver.py` is the glue.

use std::{path::Path, time::Duration};

const DRIVER: &str = include_str!("../oras_driver.py");

/// Longest a single oras-py run may take.
const TIMEOUT: Duration = Duration::from_secs(300);

/// oras-py talking to one registry host (`127.0.0.1:PORT`, plain HTTP).
#[derive(Clone, Debug)]
pub struct Oras {
    host: String,
    login: Option<(String, String)>,
    auth: &'static str,
}

/// What a push answered.
#[derive(Debug, serde::Deserialize)]
pub struct Pushed {
    /// The manifest PUT's status.
    pub status: u16,
    /// Its `Docker-Content-Digest`.
    pub digest: Option<String>,
    /// Its `OCI-Subject`, for a manifest with a subject.
    pub oci_subject: Option<String>,
}

/// How to push: see `oras_driver.py`.
#[derive(Debug, Default)]
pub struct PushOptions<'a> {
    /// `PATH[:MEDIA TYPE]` of the config blob; none gives oras' empty `{}` config.
    pub config: Option<&'a str>,
    /// Upload every blob in `PATCH` chunks of this many bytes (else `POST` then one `PUT`).
    pub chunk_size: Option<usize>,
    /// Manifest annotations.
    pub annotations: &'a [(&'a str, &'a str)],
    /// The manifest's `subject`: (media type, digest, size).
    pub subject: Option<(&'a str, &'a str, usize)>,
}

impl Oras {
    pub fn new(host: &str) -> Oras {
        Oras {
            host: host.to_owned(),
            login: None,
            auth: "token",
        }
    }

    /// Sends these credentials: to a Bearer challenge's realm (oras' default `token` backend).
    pub fn login(mut self, user: &str, password: &str) -> Oras {
        self.login = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Sends the credentials as `Basic` on every request instead (oras' `basic` backend).
    pub fn basic(mut self) -> Oras {
        self.auth = "basic";
        self
    }

    /// Pushes `files` (each `NAME[:MEDIA TYPE]`, relative to `dir`) as `repo:tag`.
    pub async fn push(
        &self,
        dir: &Path,
        target: &str,
        files: &[&str],
        opts: PushOptions<'_>,
    ) -> Result<Pushed, String> {
        let mut args = vec!["push".to_owned(), self.host.clone(), target.to_owned()];
        for f in files {
            args.extend(["--file".to_owned(), (*f).to_owned()]);
        }
        if let Some(c) = opts.config {
            args.extend(["--config".to_owned(), c.to_owned()]);
        }
        if let Some(n) = opts.chunk_size {
            args.extend(["--chunk-size".to_owned(), n.to_string()]);
        }
        for (k, v) in opts.annotations {
            args.extend(["--annotation".to_owned(), format!("{k}={v}")]);
        }
        if let Some((media_type, digest, size)) = opts.subject {
            args.extend([
                "--subject".to_owned(),
                format!("{media_type}@{digest}@{size}"),
            ]);
        }
        let out = self.run(dir, &args).await?;
        serde_json::from_slice(&out).map_err(|e| format!("oras push output: {e}"))
    }

    /// Pulls `repo:tag` into `outdir`; the names of the files written, sorted.
    pub async fn pull(&self, target: &str, outdir: &Path) -> Result<Vec<String>, String> {
        let args = [
            "pull".to_owned(),
            self.host.clone(),
            target.to_owned(),
            outdir.display().to_string(),
        ];
        let out = self.run(outdir, &args).await?;
        #[derive(serde::Deserialize)]
        struct Pulled {
            files: Vec<String>,
        }
        let p: Pulled =
            serde_json::from_slice(&out).map_err(|e| format!("oras pull output: {e}"))?;
        Ok(p.files)
    }

    /// Every tag of `repo`, as oras lists them.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, String> {
        let args = ["tags".to_owned(), self.host.clone(), repo.to_owned()];
        let out = self.run(Path::new("/"), &args).await?;
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Vec<String>,
        }
        let t: Tags = serde_json::from_slice(&out).map_err(|e| format!("oras tags output: {e}"))?;
        Ok(t.tags)
    }

    async fn run(&self, dir: &Path, args: &[String]) -> Result<Vec<u8>, String> {
        let mut cmd =
            tokio::process::Command::new(crate::venv_program("TESTKIT_ORAS_PYTHON", "python"));
        cmd.arg("-c")
            .arg(DRIVER)
            .args(args)
            .current_dir(dir)
            .env("ORAS_AUTH", self.auth)
            .env_remove("ORAS_USER")
            .env_remove("ORAS_PASS")
            // No proxy, and no docker config of the machine's user.
            .env("NO_PROXY", "*")
            .env("HOME", dir)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some((user, password)) = &self.login {
            cmd.env("ORAS_USER", user).env("ORAS_PASS", password);
        }
        match tokio::time::timeout(TIMEOUT, cmd.output()).await {
            Err(_) => Err(format!("oras {args:?} timed out after {TIMEOUT:?}")),
            Ok(Err(e)) => Err(format!("cannot run oras-py's Python: {e}")),
            Ok(Ok(out)) if out.status.success() => Ok(out.stdout),
            Ok(Ok(out)) => Err(format!(
                "oras {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }
}
