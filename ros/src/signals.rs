//! SIGINT / SIGTERM → a [`Stop`] request, on a thread of its own (`pag-signals`). A second
//! signal while the node is already stopping ends the process at once (exit status 130).
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use tracing::{info, warn};

use crate::stop::Stop;

/// The signal watcher thread; [`SignalWatcher::finish`] closes it and joins it.
pub struct SignalWatcher {
    handle: Handle,
    thread: std::thread::JoinHandle<()>,
}

impl SignalWatcher {
    /// Installs the SIGINT and SIGTERM handlers and starts the watcher.
    pub fn start(stop: Stop) -> std::io::Result<SignalWatcher> {
        let signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let thread =
            std::thread::Builder::new().name("pag-signals".into()).spawn(move || watch_signals(signals, stop))?;
        Ok(SignalWatcher { handle, thread })
    }

    /// Stops watching (the handlers stay installed, so a late signal is still ignored rather than
    /// killing the process half-way through its shutdown) and joins the thread.
    pub fn finish(self) {
        self.handle.close();
        if self.thread.join().is_err() {
            warn!("the signal watcher panicked");
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// The `pag-signals` role: turns the first SIGINT/SIGTERM into a stop request.
fn watch_signals(mut signals: Signals, stop: Stop) {
    for signal in signals.forever() {
        if stop.is_requested() && stop.reason().is_some_and(|r| r.starts_with("received")) {
            warn!("{} while stopping: exiting now", signal_name(signal));
            std::process::exit(130);
        }
        info!("{}: stopping", signal_name(signal));
        stop.request(format!("received {}", signal_name(signal)));
    }
}
