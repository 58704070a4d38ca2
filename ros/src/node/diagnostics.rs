//! The `pag-diagnostics` role: the node's status on `/diagnostics` every period, and once more
//! when the node stops.
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ros2_client::Publisher;

use super::shared::{lock, model_name, Shared};
use crate::msg::{DiagnosticArray, Header, Time};
use crate::stats::{diagnostic_status, DiagContext, Previous};
use crate::stop::Stop;

pub(crate) struct DiagnosticsSetup {
    pub publisher: Publisher<DiagnosticArray>,
    pub period: Duration,
    pub stale_after: Duration,
    pub hardware_id: String,
}

pub(crate) fn publish_diagnostics(shared: &Shared, setup: DiagnosticsSetup, stop: &Stop) {
    let mut prev = Previous::default();
    let mut next = Instant::now() + setup.period;
    loop {
        let stopping = stop.sleep_until(next);
        next += setup.period;
        let config = lock(&shared.config).clone();
        let (path, dense_macs) = lock(&shared.current_model).clone();
        let name = model_name(&path);
        let ctx = DiagContext {
            config: &config,
            model_name: &name,
            model_dense_macs: dense_macs,
            dropped: shared.slot.dropped(),
            hardware_id: &setup.hardware_id,
            stale_after_s: setup.stale_after.as_secs_f64(),
        };
        let status = diagnostic_status(&shared.stats, &ctx, &mut prev);
        let array =
            DiagnosticArray { header: Header { stamp: Time::now(), frame_id: String::new() }, status: vec![status] };
        if setup.publisher.publish(array).is_err() {
            shared.stats.publish_failures.fetch_add(1, Ordering::Relaxed);
        }
        if stopping {
            break;
        }
    }
}
