//! A collector on its own thread, so a watcher's reading and parsing overlap with
//! storage's hashing and writing (both cores busy on one sweep).
//!
//! The watcher talks to a [`Collector`] that forwards every call, in order, through a
//! bounded queue to the real collector on a second thread. The queue's bound keeps
//! memory flat: a fast reader waits for a slow writer instead of buffering a whole
//! snapshot. Order is the only thing deletion inference needs from the calls, and a
//! single queue keeps it.
//!
//! Failure is never lost on the way: when the real collector fails (the database went
//! away), its thread stops taking calls, the watcher's next call fails and the watcher
//! stops, and [`pipelined`] returns the collector's own error, not the watcher's
//! echo of it. A panic on the writing thread is returned as an error naming it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use chrono::{DateTime, Utc};

use crate::{
    Canonical, CollectError, Collector, Coverage, ItemKey, Listing, Observation, SourceError,
};

/// How many calls may wait between the watcher and the collector. An observation is a
/// few kilobytes parsed, so this bounds the queue to a few megabytes.
pub const QUEUE_CALLS: usize = 512;

enum Call {
    Begin(Listing),
    Observe(Box<(Observation, Option<Canonical>)>),
    Deleted(ItemKey, DateTime<Utc>),
    Present(ItemKey),
    Error(SourceError),
    End(Coverage),
}

/// The watcher's side: every call is queued for the collector's thread.
struct Forward<'a> {
    queue: SyncSender<Call>,
    /// Calls sent and not yet taken by the collector's thread.
    waiting: &'a AtomicUsize,
}

/// Calls waiting beyond which the writer counts as the slower side. Low on purpose: a
/// writer that keeps up (a quiet re-sweep) drains the queue to a handful of calls, and
/// a threshold as high as half the queue made the two sides trade the hashing back and
/// forth on a first ingest (8.4 s against 7.1 s with the reader always hashing).
const WRITER_BEHIND: usize = QUEUE_CALLS / 16;

/// The only error the watcher sees once the collector has stopped; [`pipelined`]
/// replaces it with the collector's own.
const STOPPED: &str = "the storage side of this sweep stopped";

impl Forward<'_> {
    fn send(&mut self, call: Call) -> Result<(), CollectError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.queue.send(call).map_err(|_| STOPPED.into())
    }

    /// Whether the collector's thread is the slower side (calls pile up for it),
    /// so this thread should take on the canonicalising and hashing.
    fn writer_is_behind(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) >= WRITER_BEHIND
    }
}

impl Collector for Forward<'_> {
    fn begin_listing(&mut self, listing: Listing) -> Result<(), CollectError> {
        self.send(Call::Begin(listing))
    }
    fn observe(&mut self, observation: Observation) -> Result<(), CollectError> {
        // Canonicalising and hashing is a large part of what storing costs. It goes to
        // whichever side has time to spare: here when the writer is behind (a first
        // sweep writes every item), there when the writer keeps up (a quiet re-sweep
        // only compares hashes) and reading is the slower side.
        let canonical = self.writer_is_behind().then(|| observation.canonical());
        self.send(Call::Observe(Box::new((observation, canonical))))
    }
    fn deleted(&mut self, key: ItemKey, at: DateTime<Utc>) -> Result<(), CollectError> {
        self.send(Call::Deleted(key, at))
    }
    fn present(&mut self, key: ItemKey) -> Result<(), CollectError> {
        self.send(Call::Present(key))
    }
    fn error(&mut self, error: SourceError) {
        // A collector that has stopped has already failed the sweep; the watcher's
        // next fallible call says so, and the error itself is recorded nowhere else.
        let _ = self.queue.send(Call::Error(error));
    }
    fn end_listing(&mut self, coverage: Coverage) -> Result<(), CollectError> {
        self.send(Call::End(coverage))
    }
}

/// Applies queued calls until the queue closes or the collector fails.
fn apply<C: Collector + ?Sized>(
    calls: Receiver<Call>,
    waiting: &AtomicUsize,
    c: &mut C,
) -> Result<(), CollectError> {
    for call in calls {
        waiting.fetch_sub(1, Ordering::Relaxed);
        match call {
            Call::Begin(l) => c.begin_listing(l)?,
            Call::Observe(o) => {
                let (observation, canonical) = *o;
                match canonical {
                    Some(canonical) => c.observe_canonical(observation, canonical)?,
                    None => c.observe(observation)?,
                }
            }
            Call::Deleted(k, at) => c.deleted(k, at)?,
            Call::Present(k) => c.present(k)?,
            Call::Error(e) => c.error(e),
            Call::End(coverage) => c.end_listing(coverage)?,
        }
    }
    Ok(())
}

/// Runs `produce` (a watcher's sweep) on this thread against a collector that feeds
/// `collector` on a second thread, and waits for both. The result is the collector's
/// error if it failed, else `produce`'s.
pub fn pipelined<C, F>(collector: &mut C, produce: F) -> Result<(), CollectError>
where
    C: Collector + Send + ?Sized,
    F: FnOnce(&mut dyn Collector) -> Result<(), CollectError>,
{
    let (queue, calls) = sync_channel(QUEUE_CALLS);
    let waiting = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let taken = &waiting;
        let writer = std::thread::Builder::new()
            .name("sweep-writer".into())
            .spawn_scoped(s, move || apply(calls, taken, collector));
        let writer = match writer {
            Ok(w) => w,
            Err(e) => return Err(format!("cannot start the sweep's writing thread: {e}").into()),
        };
        let produced = {
            let mut forward = Forward {
                queue,
                waiting: &waiting,
            };
            produce(&mut forward)
            // `forward` drops here, closing the queue so the writer ends.
        };
        let written = writer.join().unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(format!("the sweep's writing thread panicked: {what}").into())
        });
        written.and(produced)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cause;

    #[derive(Default)]
    struct Record {
        calls: Vec<String>,
        fail_after: Option<usize>,
        panic_at: Option<usize>,
        /// Each call takes this long, as a busy database would.
        slow: Option<std::time::Duration>,
        canonical_given: usize,
    }

    impl Record {
        fn push(&mut self, s: String) -> Result<(), CollectError> {
            if let Some(d) = self.slow {
                std::thread::sleep(d);
            }
            if self.panic_at == Some(self.calls.len()) {
                panic!("writer broke at call {}", self.calls.len());
            }
            if self.fail_after.is_some_and(|n| self.calls.len() >= n) {
                return Err("database is gone".into());
            }
            self.calls.push(s);
            Ok(())
        }
    }

    impl Collector for Record {
        fn begin_listing(&mut self, l: Listing) -> Result<(), CollectError> {
            self.push(format!("begin {}", l.origin))
        }
        fn observe(&mut self, o: Observation) -> Result<(), CollectError> {
            self.push(format!("observe {}", o.key.resource_id))
        }
        fn observe_canonical(&mut self, o: Observation, c: Canonical) -> Result<(), CollectError> {
            // What the reading thread computed is what the writer would have.
            assert_eq!(c, o.canonical());
            self.canonical_given += 1;
            self.observe(o)
        }
        fn deleted(&mut self, k: ItemKey, _: DateTime<Utc>) -> Result<(), CollectError> {
            self.push(format!("deleted {}", k.resource_id))
        }
        fn present(&mut self, k: ItemKey) -> Result<(), CollectError> {
            self.push(format!("present {}", k.resource_id))
        }
        fn error(&mut self, e: SourceError) {
            let _ = self.push(format!("error {}", e.message));
        }
        fn end_listing(&mut self, _: Coverage) -> Result<(), CollectError> {
            self.push("end".into())
        }
    }

    fn key(id: &str) -> ItemKey {
        ItemKey {
            account: "1".into(),
            region: "r".into(),
            resource_type: "AWS::S3::Bucket".into(),
            resource_id: id.into(),
        }
    }

    fn obs(id: &str) -> Observation {
        Observation {
            key: key(id),
            arn: None,
            name: None,
            tags: Default::default(),
            config: serde_json::json!({}),
            ephemeral: serde_json::json!({}),
            observed_at: Utc::now(),
            unreadable: Vec::new(),
        }
    }

    fn listing() -> Listing {
        Listing {
            origin: "test".into(),
            cause: Cause::Sweep,
            observed_at: Utc::now(),
            actor: None,
        }
    }

    fn sweep(c: &mut dyn Collector, n: usize) -> Result<(), CollectError> {
        c.begin_listing(listing())?;
        for i in 0..n {
            c.observe(obs(&i.to_string()))?;
        }
        c.error(SourceError {
            origin: "test".into(),
            item: None,
            scope: Some(key("x").scope()),
            message: "odd".into(),
        });
        c.deleted(key("gone"), Utc::now())?;
        c.present(key("kept"))?;
        c.end_listing(Coverage::Nothing)
    }

    #[test]
    fn every_call_arrives_in_order() {
        let mut direct = Record::default();
        sweep(&mut direct, 3 * QUEUE_CALLS).unwrap();
        let mut queued = Record::default();
        pipelined(&mut queued, |c| sweep(c, 3 * QUEUE_CALLS)).unwrap();
        assert_eq!(queued.calls, direct.calls);
        assert_eq!(queued.calls.len(), 3 * QUEUE_CALLS + 5);
    }

    #[test]
    fn a_writer_that_falls_behind_is_handed_canonical_forms_computed_by_the_reader() {
        let mut fast = Record::default();
        pipelined(&mut fast, |c| sweep(c, 3 * QUEUE_CALLS)).unwrap();
        let mut slow = Record {
            slow: Some(std::time::Duration::from_micros(200)),
            ..Record::default()
        };
        pipelined(&mut slow, |c| sweep(c, 3 * QUEUE_CALLS)).unwrap();
        assert_eq!(slow.calls, fast.calls);
        // Once calls pile up for the writer, the reader does the hashing (and only then).
        assert!(
            slow.canonical_given >= QUEUE_CALLS,
            "{}",
            slow.canonical_given
        );
        assert!(
            slow.canonical_given < 3 * QUEUE_CALLS,
            "{}",
            slow.canonical_given
        );
    }

    #[test]
    fn the_collectors_failure_stops_the_watcher_and_is_what_is_returned() {
        let mut c = Record {
            fail_after: Some(10),
            ..Record::default()
        };
        let mut attempted = 0;
        let err = pipelined(&mut c, |c| {
            c.begin_listing(listing())?;
            for i in 0..100_000 {
                attempted = i;
                c.observe(obs(&i.to_string()))?;
            }
            c.end_listing(Coverage::Nothing)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "database is gone");
        // The watcher stopped within a queue's length of the failure.
        assert!(attempted < 10 + 2 * QUEUE_CALLS, "{attempted}");
        assert_eq!(c.calls.len(), 10);
    }

    #[test]
    fn the_watchers_own_failure_is_returned_after_everything_before_it_is_written() {
        let mut c = Record::default();
        let err = pipelined(&mut c, |c| {
            c.begin_listing(listing())?;
            c.observe(obs("a"))?;
            Err("listing broke".into())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "listing broke");
        assert_eq!(c.calls, ["begin test", "observe a"]);
    }

    #[test]
    fn a_panic_on_the_writing_thread_is_an_error_naming_it() {
        let mut c = Record {
            panic_at: Some(2),
            ..Record::default()
        };
        let err = pipelined(&mut c, |c| sweep(c, 10)).unwrap_err();
        assert!(err.to_string().contains("writing thread panicked"), "{err}");
        assert!(err.to_string().contains("writer broke at call 2"), "{err}");
    }
}
