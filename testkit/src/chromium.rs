//! Headless Chromium, the real browser for UI tests: loads a page with its stylesheet and
//! scripts under the page's own Content-Security-Policy, and returns the DOM after scripts ran
//! (or a screenshot).

use std::time::Duration;

/// The flags that keep headless Chromium from reaching the internet or touching the host's
/// profile (add `--user-data-dir` with a fresh directory).
pub const HEADLESS_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// [`HEADLESS_FLAGS`], a virtual time budget for scripts, and the profile directory.
fn base_args(profile: &std::path::Path) -> Vec<String> {
    HEADLESS_FLAGS
        .iter()
        .chain(&["--virtual-time-budget=3000"])
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect()
}

async fn run(extra: &[String], url: &str) -> Result<Vec<u8>, String> {
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut args = base_args(profile.path());
    args.extend_from_slice(extra);
    args.push(url.to_owned());
    let child = tokio::process::Command::new("chromium")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .map_err(|_| format!("chromium timed out on {url}"))?
        .map_err(|e| format!("running chromium: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "chromium failed on {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// The page's DOM, serialised after its scripts ran.
pub async fn dump_dom(url: &str) -> Result<String, String> {
    run(&["--dump-dom".to_owned()], url)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A PNG screenshot of the page at 1280×900.
pub async fn screenshot(url: &str, out: &std::path::Path) -> Result<(), String> {
    run(
        &[
            format!("--screenshot={}", out.display()),
            "--window-size=1280,900".to_owned(),
        ],
        url,
    )
    .await
    .map(drop)
}
