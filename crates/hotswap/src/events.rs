//! Report: the version counter, waiting for a reload, and subscriptions that can never hold a
//! reload up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
#[cfg(any(hotswap, feature = "hot"))]
use std::{sync::Weak, time::Instant};

/// Something the runtime did with a patch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A patch was swapped in: calls made from now on run its code.
    Reloaded {
        /// The new [`version`](crate::version).
        version: u64,
        /// Where the patch came from (a library path, or the CLI's patch name).
        source: String,
        /// How many `#[hot]` functions it replaced.
        functions: usize,
        /// How many [`State`](crate::State) values were migrated to a changed type.
        states: usize,
        /// Time from starting to load the file to the last slot written.
        took: Duration,
    },
    /// Patched code panicked and, under [`PanicPolicy::RollBack`](crate::PanicPolicy), its
    /// patch was rolled back to the code that ran before it.
    RolledBack {
        /// The new [`version`](crate::version).
        version: u64,
        /// The version that panicked.
        from: u64,
        /// The function that panicked.
        function: String,
        /// The panic's message.
        message: String,
    },
    /// A patch was refused or could not be loaded; the code that was running keeps running.
    Refused {
        /// Where the patch came from.
        source: String,
        /// What was wrong and what to do about it.
        reason: String,
    },
}

/// Events a subscriber has not read yet. At most this many are kept; older ones are dropped.
#[cfg(any(hotswap, feature = "hot"))]
const QUEUE_CAPACITY: usize = 64;

#[derive(Default)]
struct Queue {
    events: Mutex<VecDeque<Event>>,
    ready: Condvar,
    missed: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding one of these locks leaves plain data behind: keep going.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A stream of [`Event`]s from [`subscribe`](crate::subscribe).
///
/// The runtime only ever appends to a bounded queue: reading slowly, or not at all, costs the
/// subscriber the oldest events and never delays a reload.
pub struct Subscription {
    queue: Arc<Queue>,
}

impl Subscription {
    #[cfg_attr(any(hotswap, feature = "hot"), allow(dead_code))]
    pub(crate) fn detached() -> Self {
        Subscription {
            queue: Arc::default(),
        }
    }

    /// The next event, if one is waiting.
    pub fn try_next(&self) -> Option<Event> {
        lock(&self.queue.events).pop_front()
    }

    /// Waits up to `timeout` for the next event.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Event> {
        let events = lock(&self.queue.events);
        let (mut events, _) = self
            .queue
            .ready
            .wait_timeout_while(events, timeout, |events| events.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        events.pop_front()
    }

    /// How many events were dropped because this subscriber fell behind.
    pub fn missed(&self) -> u64 {
        self.queue.missed.load(Ordering::Relaxed)
    }
}

/// The runtime's side: the version counter, waiters and subscribers.
#[cfg(any(hotswap, feature = "hot"))]
#[derive(Default)]
pub(crate) struct Events {
    version: AtomicU64,
    changed: Mutex<u64>,
    bumped: Condvar,
    subscribers: Mutex<Vec<Weak<Queue>>>,
}

#[cfg(any(hotswap, feature = "hot"))]
impl Events {
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Counts a swap and returns the new version.
    pub fn bump(&self) -> u64 {
        let mut changed = lock(&self.changed);
        let version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        *changed = version;
        self.bumped.notify_all();
        version
    }

    /// Waits until the version is greater than `seen`.
    pub fn wait_past(&self, seen: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        let mut changed = lock(&self.changed);
        while *changed <= seen {
            let left = deadline.checked_duration_since(Instant::now())?;
            changed = self
                .bumped
                .wait_timeout(changed, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Some(*changed)
    }

    pub fn subscribe(&self) -> Subscription {
        let queue = Arc::new(Queue::default());
        lock(&self.subscribers).push(Arc::downgrade(&queue));
        Subscription { queue }
    }

    /// Hands an event to every live subscriber without ever waiting on one.
    pub fn publish(&self, event: Event) {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|weak| {
            let Some(queue) = weak.upgrade() else {
                return false;
            };
            let mut events = lock(&queue.events);
            if events.len() == QUEUE_CAPACITY {
                events.pop_front();
                queue.missed.fetch_add(1, Ordering::Relaxed);
            }
            events.push_back(event.clone());
            queue.ready.notify_one();
            true
        });
    }
}

#[cfg(all(test, any(hotswap, feature = "hot")))]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_that_never_reads_loses_old_events_and_blocks_nothing() {
        let events = Events::default();
        let slow = events.subscribe();
        for version in 1..=(QUEUE_CAPACITY as u64 + 10) {
            events.publish(Event::Reloaded {
                version,
                source: "test".into(),
                functions: 1,
                states: 0,
                took: Duration::ZERO,
            });
        }
        assert_eq!(slow.missed(), 10);
        match slow.try_next() {
            Some(Event::Reloaded { version, .. }) => assert_eq!(version, 11),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn dropped_subscribers_are_forgotten() {
        let events = Events::default();
        drop(events.subscribe());
        events.publish(Event::Refused {
            source: "x".into(),
            reason: "y".into(),
        });
        assert!(lock(&events.subscribers).is_empty());
    }

    #[test]
    fn wait_past_sees_a_bump_from_another_thread_and_times_out_otherwise() {
        let events = Arc::new(Events::default());
        assert_eq!(events.wait_past(0, Duration::from_millis(10)), None);
        let bumper = Arc::clone(&events);
        let handle = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            bumper.bump()
        });
        assert_eq!(events.wait_past(0, Duration::from_secs(10)), Some(1));
        assert_eq!(handle.join().unwrap(), 1);
    }
}
