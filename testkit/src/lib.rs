//! Test harness: real PostgreSQL, real docker-registry, OCI layouts, skopeo, containerd,
//! oras-py, helm.
//!
//! Everything here starts real programs on loopback (see `shared/specs/real-clients.md`), so tests
//! exercise the same wire traffic production sees. Error policy: this is test code, so setup
//! failures panic with a message naming what failed (a failed fixture is a failed test); only the
//! calls whose failure a test may want to assert on (`skopeo::copy`, `skopeo::inspect_raw`) return
//! `Result`. Every child process is killed when its handle drops, and additionally receives SIGKILL
//! if the thread that started it dies (`setpriv --pdeathsig`), so a killed test binary does not
//! leave registries or databases running.

pub mod attacks;
pub mod background;
pub mod chromium;
pub mod containerd;
mod daemon;
pub mod helm;
pub mod http;
pub mod nginx;
pub mod oci;
pub mod oras;
pub mod pg;
pub mod recorder;
pub mod registry;
pub mod skopeo;
pub mod slow_client;
pub mod token;
pub mod xpkg_image;
pub mod xpkg_source;

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

/// Polls `f` every 50 ms until it returns true; panics naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A program from the virtualenv of PyPI clients: the path in environment variable `var`, else
/// `target/testkit-venv/bin/NAME`, where `scripts/test.sh` installs it.
pub(crate) fn venv_program(var: &str, name: &str) -> std::path::PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return p.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/testkit-venv/bin")
        .join(name);
    assert!(
        venv.exists(),
        "{} is not installed: run the tests through scripts/test.sh (it installs it from PyPI), \
         or set {var}",
        venv.display()
    );
    venv
}

/// A loopback TCP port that was free a moment ago (for programs that cannot bind port 0 and
/// report back). Another process may take it before it is used: starters retry on bind errors.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[tokio::test]
    async fn wait_until_returns_once_the_condition_holds() {
        let mut polls = 0;
        super::wait_until("three polls", Duration::from_secs(5), || {
            polls += 1;
            std::future::ready(polls == 3)
        })
        .await;
        assert_eq!(polls, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting until the impossible")]
    async fn wait_until_panics_naming_what_it_waited_for() {
        super::wait_until("the impossible", Duration::from_millis(120), || {
            std::future::ready(false)
        })
        .await;
    }

    #[test]
    fn free_port_is_bindable() {
        let port = super::free_port();
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
