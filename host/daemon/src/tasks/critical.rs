//! The tasks wasmbgp cannot run without: the speaker, every neighbor task, the BGP
//! listeners, the control socket and the metrics server. None of them ends before
//! shutdown, so one that does (a panic, or a loop that returned) is a fault: the
//! daemon logs which task and why, and exits non-zero, so that the service manager
//! restarts it (with graceful restart the peers keep its routes meanwhile). Nothing
//! limps on headless, answering nothing while the process looks alive.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{Id, JoinError, JoinSet};

/// The set of critical tasks, each with a name for the log.
#[derive(Default)]
pub struct CriticalTasks {
    set: JoinSet<()>,
    names: HashMap<Id, String>,
}

impl CriticalTasks {
    /// Spawns `task` on the current runtime as the critical task `name`.
    pub fn spawn(
        &mut self,
        name: impl Into<String>,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name.into());
    }

    /// Waits for the first critical task to end and says which and why. Never
    /// completes while every task runs (nor when there are none).
    pub async fn first_ended(&mut self) -> String {
        let Some(ended) = self.set.join_next_with_id().await else {
            return std::future::pending().await;
        };
        let (id, why) = match ended {
            Ok((id, ())) => (id, "ended unexpectedly".to_string()),
            Err(e) => (e.id(), failure(e)),
        };
        let name = self.names.remove(&id).unwrap_or_else(|| "unnamed".into());
        format!("the {name} task {why}")
    }
}

fn failure(e: JoinError) -> String {
    if e.is_cancelled() {
        return "was cancelled".into();
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text payload".into());
    format!("panicked: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_reported_with_its_task_and_message() {
        let mut tasks = CriticalTasks::default();
        tasks.spawn("sleeper", std::future::pending());
        tasks.spawn("speaker", async { panic!("boom {}", 7) });
        assert_eq!(
            tasks.first_ended().await,
            "the speaker task panicked: boom 7"
        );
    }

    #[tokio::test]
    async fn a_task_that_returns_is_reported_too() {
        let mut tasks = CriticalTasks::default();
        tasks.spawn("listener 127.0.0.1:179", async {});
        assert_eq!(
            tasks.first_ended().await,
            "the listener 127.0.0.1:179 task ended unexpectedly"
        );
    }

    #[tokio::test]
    async fn no_task_means_no_end() {
        let mut tasks = CriticalTasks::default();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), tasks.first_ended()).await;
        assert!(waited.is_err());
    }
}
