//! Threads kept for CPU work that must not run on the async workers, such
//! as parsing COPY chunks. Threads that live on keep their allocator
//! heaps: the buffers one job frees are reused by the next, where a fresh
//! thread per job would fault in fresh memory (zeroed by the kernel) every
//! time.
//!
//! A job must not wait for another job: with every worker waiting, none
//! would be left to run what they wait for.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// A job's result, to wait for.
pub struct Task<T>(Receiver<std::thread::Result<T>>);

impl<T> Task<T> {
    /// Waits for the job; `Err` when it panicked.
    pub fn join(self) -> std::thread::Result<T> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err(Box::new("the worker thread ended")))
    }
}

/// Runs `job` on one of the workers (one per core).
pub fn spawn<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Task<T> {
    let (done, result) = sync_channel(1);
    submit(Box::new(move || {
        let _ = done.send(catch_unwind(AssertUnwindSafe(job)));
    }));
    Task(result)
}

/// [`spawn`] for async callers: the job starts at once, and the returned
/// future waits for its result without blocking the async worker.
pub fn spawn_awaited<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = std::thread::Result<T>> {
    let (done, result) = tokio::sync::oneshot::channel();
    submit(Box::new(move || {
        let _ = done.send(catch_unwind(AssertUnwindSafe(job)));
    }));
    async move {
        result
            .await
            .unwrap_or_else(|_| Err(Box::new("the worker thread ended")))
    }
}

fn submit(job: Job) {
    queue()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send(job)
        .expect("the workers run as long as the process");
}

fn queue() -> &'static Mutex<Sender<Job>> {
    static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (sender, jobs) = channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..threads {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("quiver-work-{i}"))
                .spawn(move || loop {
                    let job = match jobs.lock() {
                        Ok(jobs) => jobs.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
                .expect("starting a worker thread");
        }
        Mutex::new(sender)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn jobs_run_and_a_panic_is_returned_not_raised() {
        let tasks: Vec<_> = (0..16u64).map(|i| super::spawn(move || i * i)).collect();
        let squares: Vec<u64> = tasks.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(squares, (0..16u64).map(|i| i * i).collect::<Vec<_>>());
        let failed = super::spawn(|| -> u64 { panic!("a job that fails") });
        assert!(failed.join().is_err());
        // The workers go on.
        assert_eq!(super::spawn(|| 7).join().unwrap(), 7);
    }

    #[tokio::test]
    async fn awaited_jobs_run_at_once_and_a_panic_is_returned() {
        let tasks: Vec<_> = (0..8u64)
            .map(|i| super::spawn_awaited(move || i + 1))
            .collect();
        let mut sum = 0;
        for task in tasks {
            sum += task.await.unwrap();
        }
        assert_eq!(sum, 36);
        let failed = super::spawn_awaited(|| -> u64 { panic!("a job that fails") });
        assert!(failed.await.is_err());
    }
}
