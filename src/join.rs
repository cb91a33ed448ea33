//! Joining the tasks a sync's work is spread over (encoding and assembling on blocking
//! threads, a read on a helper connection).

use tokio::task::JoinError;

/// A task did not run to its end: it was aborted, or the runtime is shutting down.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the task was cancelled: the worker is shutting down")]
pub struct Cancelled;

/// The result of `task` (a `JoinHandle` or an `AbortOnDropHandle`). A panic in the task is
/// resumed here, so that it is never mistaken for an early but orderly end.
pub async fn join_task<T>(
    task: impl Future<Output = Result<T, JoinError>>,
) -> Result<T, Cancelled> {
    match task.await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Cancelled),
    }
}
