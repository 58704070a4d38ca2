//! The latest-frame slot between the DDS side and the inference thread: holds at most one
//! frame. Putting a frame while one is still unconsumed replaces it (the newest frame wins)
//! and counts the replaced one as dropped, so a slow consumer never builds a backlog.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct LatestSlot<T> {
    item: Mutex<Slot<T>>,
    ready: Condvar,
    dropped: AtomicU64,
}

struct Slot<T> {
    value: Option<T>,
    closed: bool,
}

/// What [`LatestSlot::take_timeout`] found.
#[derive(Debug, PartialEq)]
pub enum Taken<T> {
    Item(T),
    Timeout,
    Closed,
}

impl<T> Default for LatestSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LatestSlot<T> {
    pub fn new() -> Self {
        LatestSlot {
            item: Mutex::new(Slot { value: None, closed: false }),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Stores `value`; returns true when it replaced an unconsumed one (counted as dropped). After
    /// [`LatestSlot::close`] nothing is stored any more: `value` itself counts as dropped.
    pub fn put(&self, value: T) -> bool {
        let replaced = {
            let mut slot = self.item.lock().unwrap_or_else(|e| e.into_inner());
            if slot.closed {
                true
            } else {
                slot.value.replace(value).is_some()
            }
        };
        if replaced {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.ready.notify_one();
        replaced
    }

    /// Waits up to `timeout` for a frame. After [`LatestSlot::close`], a pending frame is still
    /// returned, then `Closed`.
    pub fn take_timeout(&self, timeout: Duration) -> Taken<T> {
        let slot = self.item.lock().unwrap_or_else(|e| e.into_inner());
        let (mut slot, _) = self
            .ready
            .wait_timeout_while(slot, timeout, |s| s.value.is_none() && !s.closed)
            .unwrap_or_else(|e| e.into_inner());
        match slot.value.take() {
            Some(v) => Taken::Item(v),
            None if slot.closed => Taken::Closed,
            None => Taken::Timeout,
        }
    }

    /// Wakes the consumer for good.
    pub fn close(&self) {
        self.item.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.ready.notify_all();
    }

    /// Drops the frame still waiting, if any (counted as dropped); true when there was one.
    pub fn discard(&self) -> bool {
        let discarded = self.item.lock().unwrap_or_else(|e| e.into_inner()).value.take().is_some();
        if discarded {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        discarded
    }

    /// Counts a frame the consumer took but did not process (e.g. because it is stopping).
    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames replaced before they were consumed, discarded, or put after the close.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn newest_wins_and_replacements_count_as_dropped() {
        let s = LatestSlot::new();
        assert!(!s.put(1));
        assert!(s.put(2));
        assert!(s.put(3));
        assert_eq!(s.dropped(), 2);
        assert_eq!(s.take_timeout(Duration::ZERO), Taken::Item(3));
        assert_eq!(s.take_timeout(Duration::from_millis(5)), Taken::Timeout);
        assert!(!s.put(4));
        assert_eq!(s.dropped(), 2);
        s.close();
        assert_eq!(s.take_timeout(Duration::from_secs(1)), Taken::Item(4));
        assert_eq!(s.take_timeout(Duration::from_secs(1)), Taken::Closed);
        assert!(s.put(5), "a frame put after the close is dropped at once");
        assert_eq!(s.dropped(), 3);
        assert_eq!(s.take_timeout(Duration::ZERO), Taken::Closed);
    }

    #[test]
    fn discard_drops_the_waiting_frame() {
        let s = LatestSlot::new();
        assert!(!s.discard());
        s.put(1);
        assert!(s.discard());
        assert_eq!(s.dropped(), 1);
        assert_eq!(s.take_timeout(Duration::ZERO), Taken::Timeout);
    }

    #[test]
    fn slow_consumer_never_sees_a_backlog() {
        let s = Arc::new(LatestSlot::new());
        let producer = {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..10_000u32 {
                    s.put(i);
                }
                s.close();
            })
        };
        let mut seen = Vec::new();
        loop {
            match s.take_timeout(Duration::from_secs(5)) {
                Taken::Item(v) => {
                    seen.push(v);
                    std::thread::sleep(Duration::from_micros(200));
                }
                Taken::Closed => break,
                Taken::Timeout => panic!("producer stalled"),
            }
        }
        producer.join().unwrap();
        assert_eq!(*seen.last().unwrap(), 9_999, "the last frame is always delivered");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "frames in order, none twice");
        assert_eq!(seen.len() as u64 + s.dropped(), 10_000, "every frame is either consumed or dropped");
    }
}
