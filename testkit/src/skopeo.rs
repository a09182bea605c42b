//! Runs the real `skopeo` (1.9) as the push and pull client.

use std::time::Duration;

use sha2::{Digest, Sha256};

/// Longest a single skopeo run may take (a 256 MiB push on 2 cores takes a few seconds).
const TIMEOUT: Duration = Duration::from_secs(300);

/// `skopeo copy --src-tls-verify=false --dest-tls-verify=false EXTRA... SRC DST`; `Err` carries
/// skopeo's stderr. Pass `--all` in `extra` to copy a whole index.
pub async fn copy(src: &str, dst: &str, extra: &[&str]) -> Result<(), String> {
    let mut args = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.extend([src, dst]);
    run(&args).await.map(drop)
}

/// Pushes `local` of `layout` to `docker://<host_port>/<repo_and_tag>` with `extra` flags;
/// panics naming the destination and skopeo's error if the push fails.
pub async fn push(
    layout: &crate::oci::OciLayout,
    local: &str,
    host_port: &str,
    repo_and_tag: &str,
    extra: &[&str],
) {
    let dst = format!("docker://{host_port}/{repo_and_tag}");
    if let Err(e) = copy(&layout.skopeo_ref(local), &dst, extra).await {
        panic!("push {repo_and_tag}: {e}");
    }
}

/// `skopeo inspect --raw --tls-verify=false EXTRA... IMAGE`: the manifest bytes as served.
pub async fn inspect_raw(image: &str, extra: &[&str]) -> Result<Vec<u8>, String> {
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(image);
    run(&args).await
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn run(args: &[&str]) -> Result<Vec<u8>, String> {
    // --insecure-policy: no dependence on the machine's /etc/containers/policy.json.
    let output = tokio::process::Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(TIMEOUT, output).await {
        Err(_) => Err(format!("skopeo {args:?} timed out after {TIMEOUT:?}")),
        Ok(Err(e)) => Err(format!("cannot run skopeo (apt-get install skopeo): {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(out.stdout),
        Ok(Ok(out)) => Err(format!(
            "skopeo {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}
