//! Coalescing concurrent requests into batches: one store round trip (and, for writes, one
//! commit) serves every request waiting at that moment.
//!
//! A few batcher tasks share one queue. Each takes whatever requests are waiting (at least one,
//! so an idle service adds no delay), up to a maximum, runs them as one batch and answers each
//! request with its own result. Under load the batches grow by themselves: while a batch is in
//! the store, the next one gathers.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

/// A queue of requests `Q` answered with `A`, run in batches.
pub struct Coalescer<Q, A> {
    sender: mpsc::Sender<(Q, oneshot::Sender<A>)>,
}

impl<Q, A> Clone for Coalescer<Q, A> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
        }
    }
}

impl<Q: Send + 'static, A: Send + 'static> Coalescer<Q, A> {
    /// Starts `batchers` tasks, each running batches of at most `max_batch` requests with `run`,
    /// which answers every request of its batch, in order.
    pub fn start<F, Fut>(batchers: usize, max_batch: usize, run: F) -> Self
    where
        F: Fn(Vec<Q>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<A>> + Send,
    {
        let (batchers, max_batch) = (batchers.max(1), max_batch.max(1));
        let (sender, receiver) = mpsc::channel::<(Q, oneshot::Sender<A>)>(max_batch * batchers * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        let run = Arc::new(run);
        for _ in 0..batchers {
            let (receiver, run) = (receiver.clone(), run.clone());
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut receiver = receiver.lock().await;
                        let Some(first) = receiver.recv().await else {
                            return;
                        };
                        let mut batch = vec![first];
                        while batch.len() < max_batch {
                            match receiver.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    let (requests, replies): (Vec<Q>, Vec<_>) = batch.into_iter().unzip();
                    let answers = run(requests).await;
                    debug_assert_eq!(answers.len(), replies.len(), "one answer per request");
                    for (reply, answer) in replies.into_iter().zip(answers) {
                        let _ = reply.send(answer); // the caller may have gone
                    }
                }
            });
        }
        Self { sender }
    }

    /// Runs `request` in the next batch and waits for its answer; `None` when the batchers
    /// have stopped (the runtime is shutting down).
    pub async fn call(&self, request: Q) -> Option<A> {
        let (reply, answer) = oneshot::channel();
        self.sender.send((request, reply)).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_requests_share_batches_and_get_their_own_answers() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let doubler = Coalescer::start(1, 8, move |batch: Vec<u32>| {
            seen.lock().unwrap().push(batch.len());
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                batch.into_iter().map(|n| n * 2).collect::<Vec<_>>()
            }
        });
        let calls: Vec<_> = (0..40)
            .map(|n| {
                let doubler = doubler.clone();
                tokio::spawn(async move { (n, doubler.call(n).await) })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.unwrap();
            assert_eq!(answer, Some(n * 2));
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.iter().all(|&s| s <= 8), "{sizes:?}");
        assert!(sizes.len() < 40, "no batch held two requests: {sizes:?}");
    }
}
