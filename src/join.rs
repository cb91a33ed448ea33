//! Joining the blocking tasks that do a sync's CPU-bound work (encoding, assembling).

use tokio::task::JoinHandle;

/// A blocking task did not run to its end: only a runtime shutting down cancels one.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the task was cancelled: the worker is shutting down")]
pub struct Cancelled;

/// The result of `task`. A panic in the task is resumed here, so that it is never mistaken
/// for an early but orderly end.
pub async fn join_blocking<T>(task: JoinHandle<T>) -> Result<T, Cancelled> {
    match task.await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Cancelled),
    }
}
