//! Whether this node's storage still works: set once, at the first storage error, never cleared.
//!
//! openraft's core quits on any storage error and cannot be restarted in place, so from then on the
//! replica can no longer apply anything. Everything that serves from it reads this flag: `/readyz`
//! turns 503, the HTTP guard (`http/storage_guard.rs`) answers 503, and `server.rs` stops the node
//! with exit code 4 so that a service manager restarts it once space or the device is back.

use std::sync::Arc;

use tokio::sync::watch;

pub struct StorageHealth {
    failure: watch::Sender<Option<Arc<str>>>,
}

impl StorageHealth {
    pub fn new() -> Arc<StorageHealth> {
        Arc::new(StorageHealth { failure: watch::Sender::new(None) })
    }

    /// Records the first storage failure and logs it once; later ones are consequences.
    pub fn fail(&self, context: &str, error: &dyn std::fmt::Display) {
        let message: Arc<str> = Arc::from(format!("{context}: {error}"));
        let first = self.failure.send_if_modified(|failure| {
            if failure.is_some() {
                return false;
            }
            *failure = Some(message.clone());
            true
        });
        if first {
            tracing::error!(
                error = %message,
                "storage failed: this node stops serving and exits with code 4; free space or repair the \
                 device, then restart it"
            );
        }
    }

    /// The first failure, if storage has failed.
    pub fn failure(&self) -> Option<Arc<str>> {
        self.failure.borrow().clone()
    }

    /// Waits until storage fails.
    pub async fn failed(&self) -> Arc<str> {
        let mut receiver = self.failure.subscribe();
        loop {
            if let Some(failure) = receiver.borrow_and_update().clone() {
                return failure;
            }
            if receiver.changed().await.is_err() {
                // The sender lives in `self`, so this cannot happen while we are borrowed.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_failure_is_kept_and_wakes_waiters() {
        let health = StorageHealth::new();
        assert!(health.failure().is_none());
        let waiter = {
            let health = health.clone();
            tokio::spawn(async move { health.failed().await })
        };
        health.fail("log flush", &"No space left on device");
        health.fail("snapshot", &"later error");
        assert_eq!(&*waiter.await.expect("join"), "log flush: No space left on device");
        assert_eq!(health.failure().as_deref(), Some("log flush: No space left on device"));
    }
}
