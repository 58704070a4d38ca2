//! The node's stop request: set once (by a signal, by `--frames` being reached, or by a role that
//! failed), seen by every thread. Blocking waits, deadline sleeps and an async future all wake
//! the moment it is set, so shutdown never waits for a poll interval.
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A cloneable handle to one stop request.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requested: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    reason: Option<String>,
    wakers: Vec<Waker>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests the stop. The first reason is kept; later requests only wake again.
    pub fn request(&self, reason: impl Into<String>) {
        let wakers = {
            let mut s = self.state();
            s.reason.get_or_insert_with(|| reason.into());
            self.inner.requested.store(true, Ordering::SeqCst);
            std::mem::take(&mut s.wakers)
        };
        self.inner.changed.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Why the stop was requested (`None` while it was not).
    pub fn reason(&self) -> Option<String> {
        self.state().reason.clone()
    }

    /// Blocks until the stop is requested.
    pub fn wait(&self) {
        let s = self.state();
        let _s = self.inner.changed.wait_while(s, |s| s.reason.is_none()).unwrap_or_else(|e| e.into_inner());
    }

    /// Sleeps until `deadline` or the stop request, whichever comes first; true when stopped.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        let mut s = self.state();
        while s.reason.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self.inner.changed.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    /// A future that completes when the stop is requested.
    pub fn requested(&self) -> Requested<'_> {
        Requested { stop: self }
    }
}

/// See [`Stop::requested`].
pub struct Requested<'a> {
    stop: &'a Stop,
}

impl Future for Requested<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.stop.state();
        if s.reason.is_some() {
            return Poll::Ready(());
        }
        if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            s.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_reason_wins_and_every_waiter_wakes() {
        let stop = Stop::new();
        assert!(!stop.is_requested());
        assert!(!stop.sleep_until(Instant::now() + Duration::from_millis(1)));
        let sleeper = {
            let s = stop.clone();
            std::thread::spawn(move || s.sleep_until(Instant::now() + Duration::from_secs(3600)))
        };
        let waiter = {
            let s = stop.clone();
            std::thread::spawn(move || s.wait())
        };
        let future = {
            let s = stop.clone();
            std::thread::spawn(move || futures::executor::block_on(s.requested()))
        };
        stop.request("signal");
        stop.request("later");
        assert!(sleeper.join().unwrap(), "the sleeper saw the stop, not its deadline");
        waiter.join().unwrap();
        future.join().unwrap();
        assert_eq!(stop.reason().as_deref(), Some("signal"));
        assert!(stop.sleep_until(Instant::now() + Duration::from_secs(3600)));
    }
}
