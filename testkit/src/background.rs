//! A service run in the background of a test (the indexer's workers, a shim) until the test
//! stops it: [`Background::spawn`] hands the service a cancellation token,
//! [`Background::stop`] cancels it and waits for the service to return.

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running background service and the token that stops it.
pub struct Background {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Background {
    /// Spawns what `start` returns, given the token it must stop on.
    pub fn spawn<F>(start: impl FnOnce(CancellationToken) -> F) -> Background
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let task = tokio::spawn(start(stop.clone()));
        Background { stop, task }
    }

    /// Cancels the token and waits for the service to end; panics if it panicked.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            panic!("the background service failed: {e}");
        }
    }
}
