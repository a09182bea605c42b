//! Clients too slow for any real client to be made to imitate: raw sockets that trickle a
//! request head or idle after a request, for the servers' `header_read_timeout` tests.

use std::{future::Future, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Far above the timeouts the tests set (1 s): a wait that reaches it means the server never
/// closed the connection.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Connects to `host_port`, sends the start of a request head and then one more header byte
/// every 100 ms, never finishing it; after each byte, awaits `meanwhile` (a check that other
/// clients are still served). Panics unless the server cuts the connection within
/// [`PATIENCE`].
pub async fn assert_trickled_head_cut_off<F, Fut>(host_port: &str, meanwhile: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    assert!(
        trickle_head(host_port, meanwhile).await,
        "a head still incomplete after {PATIENCE:?} kept its connection"
    );
}

async fn trickle_head<F, Fut>(host_port: &str, mut meanwhile: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut slow = TcpStream::connect(host_port).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if slow.write_all(b"a").await.is_err() {
            return true;
        }
        // A closed connection shows on a read first: the server's FIN arrives before writes fail.
        let mut probe = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            return true;
        }
        meanwhile().await;
    }
    false
}

/// Connects to `host_port`, sends `request` whole and then nothing more; returns all the server
/// sent before it closed the connection (or reset it), or `None` if it was still open after
/// [`PATIENCE`].
pub async fn idle_after(host_port: &str, request: &[u8]) -> Option<Vec<u8>> {
    let mut conn = TcpStream::connect(host_port).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read).await.ok()?;
    Some(got)
}
