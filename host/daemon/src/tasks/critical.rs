//! The tasks wasmbgp cannot run without: the speaker, every neighbor task, the BGP
//! listeners, the control socket and the metrics server. None of them ends before
//! shutdown (but a neighbor task a config reload stops), so one that does (a panic, or
//! a loop that returned) is a fault: the
//! daemon logs which task and why, and exits non-zero, so that the service manager
//! restarts it (with graceful restart the peers keep its routes meanwhile). Nothing
//! limps on headless, answering nothing while the process looks alive.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::{Id, JoinError, JoinSet};

/// The set of critical tasks, each with a name for the log. Cloneable: the speaker
/// starts and retires neighbor tasks while the daemon watches the set.
#[derive(Default, Clone)]
pub struct CriticalTasks(Arc<Mutex<Tasks>>);

#[derive(Default)]
struct Tasks {
    /// Each task answers whether it may end (a neighbor task stopped on purpose).
    set: JoinSet<bool>,
    names: HashMap<Id, String>,
}

impl CriticalTasks {
    /// Spawns `task` on the current runtime as the critical task `name`.
    pub fn spawn(&self, name: impl Into<String>, task: impl Future<Output = ()> + Send + 'static) {
        self.insert(name.into(), async move {
            task.await;
            false
        });
    }

    /// Spawns a task that may return (it was told to stop, say a neighbor removed by a
    /// config reload); only a panic is a fault.
    pub fn spawn_retiring(
        &self,
        name: impl Into<String>,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.insert(name.into(), async move {
            task.await;
            true
        });
    }

    fn insert(&self, name: String, task: impl Future<Output = bool> + Send + 'static) {
        let mut tasks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let handle = tasks.set.spawn(task);
        tasks.names.insert(handle.id(), name);
    }

    /// Waits for the first critical task to end unexpectedly and says which and why.
    /// Never completes while every task runs (nor when there are none).
    pub async fn first_ended(&self) -> String {
        loop {
            // The lock is held only while polling, never across an await.
            let ended = std::future::poll_fn(|cx| {
                let mut tasks = self.0.lock().unwrap_or_else(|p| p.into_inner());
                match tasks.set.poll_join_next_with_id(cx) {
                    std::task::Poll::Ready(None) => std::task::Poll::Pending,
                    other => other,
                }
            })
            .await;
            let Some(ended) = ended else { continue };
            let mut tasks = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let (id, why) = match ended {
                Ok((id, true)) => {
                    tasks.names.remove(&id);
                    continue;
                }
                Ok((id, false)) => (id, "ended unexpectedly".to_string()),
                Err(e) => (e.id(), failure(e)),
            };
            let name = tasks.names.remove(&id).unwrap_or_else(|| "unnamed".into());
            return format!("the {name} task {why}");
        }
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
        let tasks = CriticalTasks::default();
        tasks.spawn("sleeper", std::future::pending());
        tasks.spawn("speaker", async { panic!("boom {}", 7) });
        assert_eq!(
            tasks.first_ended().await,
            "the speaker task panicked: boom 7"
        );
    }

    #[tokio::test]
    async fn a_task_that_returns_is_reported_too() {
        let tasks = CriticalTasks::default();
        tasks.spawn("listener 127.0.0.1:179", async {});
        assert_eq!(
            tasks.first_ended().await,
            "the listener 127.0.0.1:179 task ended unexpectedly"
        );
    }

    #[tokio::test]
    async fn a_retired_task_may_return_but_not_panic() {
        let tasks = CriticalTasks::default();
        tasks.spawn_retiring("neighbor 127.0.0.2", async {});
        tasks.spawn("sleeper", std::future::pending());
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), tasks.first_ended()).await;
        assert!(waited.is_err(), "a retired task's end is no fault");
        // Spawned while `first_ended` is not running, a panic is still seen.
        tasks.spawn_retiring("neighbor 127.0.0.3", async { panic!("boom") });
        assert_eq!(
            tasks.first_ended().await,
            "the neighbor 127.0.0.3 task panicked: boom"
        );
    }

    /// A task added while the daemon already waits is watched too.
    #[tokio::test]
    async fn a_task_spawned_while_waiting_is_watched() {
        let tasks = CriticalTasks::default();
        tasks.spawn("sleeper", std::future::pending());
        let later = tasks.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            later.spawn("late", async {});
        });
        let why = tokio::time::timeout(std::time::Duration::from_secs(5), tasks.first_ended())
            .await
            .expect("seen");
        assert_eq!(why, "the late task ended unexpectedly");
    }

    #[tokio::test]
    async fn no_task_means_no_end() {
        let tasks = CriticalTasks::default();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), tasks.first_ended()).await;
        assert!(waited.is_err());
    }
}
