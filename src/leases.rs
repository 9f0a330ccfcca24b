//! Holding leases from this process: a heartbeat thread that keeps them alive while a
//! job or an audit pass runs, and the audit turn shared by every worker on a database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use guardrail_storage::Store;

/// The lease every worker takes before judging due items and routing their events.
const AUDIT: &str = "audit";

/// Renews every lease this process holds each third of `lease` until dropped. A
/// heartbeat that cannot reach the database is logged and retried: if it stays away
/// past the lease, another worker takes the job over and this one's finish says so.
pub struct KeepAlive {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KeepAlive {
    pub fn start(store: &Store, worker: &str, lease: chrono::Duration) -> KeepAlive {
        let stop = Arc::new(AtomicBool::new(false));
        let every =
            (lease.to_std().unwrap_or(Duration::from_secs(60)) / 3).max(Duration::from_millis(500));
        let (store, worker, flag) = (store.clone(), worker.to_owned(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("lease heartbeat".into())
            .spawn(move || {
                let mut next = Instant::now() + every;
                while !flag.load(Ordering::SeqCst) {
                    if Instant::now() >= next {
                        if let Err(e) = store.renew_leases(&worker, Utc::now(), lease) {
                            tracing::warn!(error = %e, "lease heartbeat failed; retrying");
                        }
                        next = Instant::now() + every;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .ok();
        if thread.is_none() {
            tracing::warn!(
                "cannot start the lease heartbeat thread; leases last {lease} without renewal"
            );
        }
        KeepAlive { stop, thread }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One audit-and-route pass at a time: across the threads of this process (the
/// scheduler and the event sources) and across every worker on the database. Two
/// passes over one item would both open its finding; a pass routing another's
/// baseline events one by one would page people for a first sweep.
pub struct AuditTurn {
    store: Store,
    worker: String,
    _keep: KeepAlive,
    _local: MutexGuard<'static, ()>,
}

impl AuditTurn {
    /// Waits for the turn (polling the shared lease), however long another worker's
    /// pass takes: skipping would leave what this worker stored unjudged until later.
    pub fn take(store: &Store, lease: chrono::Duration) -> anyhow::Result<AuditTurn> {
        static LOCAL: Mutex<()> = Mutex::new(());
        let local = LOCAL.lock().unwrap_or_else(|p| p.into_inner());
        let worker = Store::worker_id();
        let started = Instant::now();
        let mut next_warning = Duration::from_secs(60);
        while !store.acquire_lease(AUDIT, &worker, Utc::now(), lease)? {
            // A pass this long on another worker is unusual; findings wait meanwhile,
            // so say so every minute rather than wait in silence.
            if started.elapsed() >= next_warning {
                tracing::warn!(
                    waited_seconds = started.elapsed().as_secs(),
                    "still waiting for the audit turn: another worker's audit pass holds it (its lease is renewed, so it is alive); findings stored here are judged when it ends"
                );
                next_warning += Duration::from_secs(60);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(AuditTurn {
            _keep: KeepAlive::start(store, &worker, lease),
            store: store.clone(),
            worker,
            _local: local,
        })
    }
}

impl Drop for AuditTurn {
    fn drop(&mut self) {
        if let Err(e) = self.store.release_lease(AUDIT, &self.worker) {
            tracing::warn!(error = %e, "cannot give the audit turn back; it expires with its lease");
        }
    }
}
