// pagrt: pacing of bulk user data.
//
// A large sample is sent as a burst of datagrams as fast as the event loop can
// call sendto(). A same-host reader whose socket has the OS default receive
// buffer (Linux: 212992 bytes, about 195 kB of 64 kB datagrams or 130 kB of
// 1.4 kB ones) loses everything beyond that unless its receive thread happens to
// be running: Fast DDS, reading a 0.9 MB image this way, got 2-13 % of them.
// The pacer is a token bucket shared by every user writer of a participant: it
// lets `burst` bytes out at once and refills at `rate` bytes per second; a
// writer that runs out stops at the current fragment and resumes from a timer.
//
// Configuration: `RUSTDDS_PACING=off`, or `RUSTDDS_PACING=<burst bytes>,<rate
// bytes per second>` (read once per participant). Default: 128 KiB, 128 MiB/s.

use std::{
  cell::RefCell,
  time::{Duration, Instant},
};

use log::info;

pub const DEFAULT_PACING_BURST: usize = 128 * 1024;
pub const DEFAULT_PACING_RATE: f64 = 128.0 * 1024.0 * 1024.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacingConfig {
  pub burst: usize,
  pub rate_bytes_per_s: f64,
}

impl PacingConfig {
  /// From `RUSTDDS_PACING`; `None` means no pacing.
  pub fn from_env() -> Option<PacingConfig> {
    let default = PacingConfig {
      burst: DEFAULT_PACING_BURST,
      rate_bytes_per_s: DEFAULT_PACING_RATE,
    };
    match std::env::var("RUSTDDS_PACING") {
      Err(_) => Some(default),
      Ok(v) => Self::parse(&v).unwrap_or_else(|| {
        log::warn!("RUSTDDS_PACING={v:?} is neither `off` nor `<burst>,<rate>`: using the default");
        Some(default)
      }),
    }
  }

  fn parse(v: &str) -> Option<Option<PacingConfig>> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("off") || v == "0" {
      return Some(None);
    }
    let (b, r) = v.split_once(',')?;
    let burst: usize = b.trim().parse().ok()?;
    let rate: f64 = r.trim().parse().ok()?;
    (burst > 0 && rate > 0.0).then_some(Some(PacingConfig {
      burst,
      rate_bytes_per_s: rate,
    }))
  }
}

struct Bucket {
  tokens: f64,
  refilled_at: Instant,
}

/// Token bucket. `take` lets a datagram out while the bucket is not empty (it
/// may go negative by that one datagram), so a datagram larger than the burst
/// still goes out.
pub struct Pacer {
  config: Option<PacingConfig>,
  bucket: RefCell<Bucket>,
}

impl std::fmt::Debug for Pacer {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Pacer")
      .field("config", &self.config)
      .finish()
  }
}

impl Pacer {
  pub fn new(config: Option<PacingConfig>) -> Pacer {
    if let Some(c) = config {
      info!(
        "Pacing bulk user data: bursts of {} bytes, {:.0} bytes/s",
        c.burst, c.rate_bytes_per_s
      );
    }
    Pacer {
      config,
      bucket: RefCell::new(Bucket {
        tokens: config.map_or(0.0, |c| c.burst as f64),
        refilled_at: Instant::now(),
      }),
    }
  }

  fn refill(&self, c: &PacingConfig, b: &mut Bucket) {
    let now = Instant::now();
    let earned = now.duration_since(b.refilled_at).as_secs_f64() * c.rate_bytes_per_s;
    b.tokens = (b.tokens + earned).min(c.burst as f64);
    b.refilled_at = now;
  }

  /// Takes `bytes` if the bucket is not empty; otherwise says how long to wait.
  pub fn take(&self, bytes: usize) -> Result<(), Duration> {
    let Some(c) = self.config else {
      return Ok(());
    };
    let mut b = self.bucket.borrow_mut();
    self.refill(&c, &mut b);
    if b.tokens >= 0.0 {
      b.tokens -= bytes as f64;
      Ok(())
    } else {
      Err(Duration::from_secs_f64(-b.tokens / c.rate_bytes_per_s).max(Duration::from_micros(200)))
    }
  }

  /// Charges `bytes` sent outside the pacer's control (repairs): later bulk
  /// data waits for them.
  pub fn charge(&self, bytes: usize) {
    let Some(c) = self.config else {
      return;
    };
    let mut b = self.bucket.borrow_mut();
    self.refill(&c, &mut b);
    b.tokens -= bytes as f64;
  }

  pub fn burst(&self) -> Option<usize> {
    self.config.map(|c| c.burst)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn parses_the_setting() {
    assert_eq!(PacingConfig::parse("off"), Some(None));
    assert_eq!(
      PacingConfig::parse("65536, 1e8"),
      Some(Some(PacingConfig {
        burst: 65536,
        rate_bytes_per_s: 1e8
      }))
    );
    assert_eq!(PacingConfig::parse("x"), None);
  }

  #[test]
  fn bursts_then_waits() {
    let p = Pacer::new(Some(PacingConfig {
      burst: 100_000,
      rate_bytes_per_s: 1e6,
    }));
    assert!(p.take(60_000).is_ok());
    assert!(p.take(60_000).is_ok(), "not empty yet: goes into debt");
    let wait = p.take(1).unwrap_err();
    assert!(
      wait > Duration::from_millis(15) && wait <= Duration::from_millis(21),
      "{wait:?}"
    );
    assert!(Pacer::new(None).take(usize::MAX).is_ok());
  }
}
