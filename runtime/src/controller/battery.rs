//! Battery charge → ρ cap, with hysteresis, staleness and a conservative fallback; robust to
//! publishers that send 0–100, negative values or NaN (counted).
use super::config::BatteryPolicy;

/// Messages that arrived less than this apart are taken as the same message passed again.
const NEW_MESSAGE_S: f64 = 1e-4;

/// `sensor_msgs/BatteryState.power_supply_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PowerSupplyStatus {
    #[default]
    Unknown,
    Charging,
    Discharging,
    NotCharging,
    Full,
}

impl PowerSupplyStatus {
    /// From the message's constant (0 unknown, 1 charging, 2 discharging, 3 not charging,
    /// 4 full); anything else is unknown.
    pub const fn from_ros(v: u8) -> Self {
        match v {
            1 => PowerSupplyStatus::Charging,
            2 => PowerSupplyStatus::Discharging,
            3 => PowerSupplyStatus::NotCharging,
            4 => PowerSupplyStatus::Full,
            _ => PowerSupplyStatus::Unknown,
        }
    }

    /// On external power: the battery does not limit compute.
    pub const fn on_power(self) -> bool {
        matches!(self, PowerSupplyStatus::Charging | PowerSupplyStatus::Full)
    }
}

/// The latest battery message as the caller has it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatteryReading {
    /// `percentage` as published: 0–1 by the standard; NaN unknown; 0–100 and negative values
    /// happen and are handled.
    pub percentage: f32,
    pub status: PowerSupplyStatus,
    /// Seconds since the message arrived (≥ 0).
    pub age_s: f32,
}

/// What the battery side knows this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatteryKnowledge {
    /// Policy off.
    #[default]
    Ignored,
    /// A fresh, valid charge.
    Fresh,
    /// Fresh message says charging or full: no cap.
    OnPower,
    /// No valid reading yet.
    NeverRead,
    /// The last valid reading is older than `stale_s` (NaN, invalid or missing since).
    Stale,
}

impl BatteryKnowledge {
    pub const fn as_str(self) -> &'static str {
        match self {
            BatteryKnowledge::Ignored => "ignored",
            BatteryKnowledge::Fresh => "fresh",
            BatteryKnowledge::OnPower => "on power",
            BatteryKnowledge::NeverRead => "never read",
            BatteryKnowledge::Stale => "stale",
        }
    }

    /// Whether the cap is the conservative fallback.
    pub const fn is_unknown(self) -> bool {
        matches!(self, BatteryKnowledge::NeverRead | BatteryKnowledge::Stale)
    }
}

/// How many battery messages of each kind arrived (each counted once, however many frames it
/// is passed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatteryCounts {
    /// 0–1 as the standard says.
    pub fraction: u32,
    /// Taken as a 0–100 percentage (a value in (1, 100] was seen from this publisher).
    pub percent: u32,
    /// NaN (the publisher does not know).
    pub nan: u32,
    /// Negative, infinite or above 100: ignored.
    pub invalid: u32,
    /// Frames decided on the fallback cap (stale or never read).
    pub unknown_frames: u32,
    /// Times the cap changed.
    pub cap_changes: u32,
}

/// The battery half of the controller's state. Fixed size, no allocation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatteryGovernor {
    /// Index into the policy's steps of the cap in force (0 = none, i = steps[i-1]).
    level: usize,
    /// `now` of the last valid charge reading, `None` before the first.
    last_valid_at: Option<f64>,
    /// Until when the last message's "charging"/"full" holds (its arrival + `stale_s`).
    on_power_until: f64,
    /// Arrival time of the last message read.
    last_msg_at: f64,
    /// A value in (1, 100] was seen: this publisher sends percent.
    percent_scale: bool,
    pub counts: BatteryCounts,
    cap: f32,
    pub knowledge: BatteryKnowledge,
}

impl BatteryGovernor {
    pub const fn new() -> Self {
        BatteryGovernor {
            level: 0,
            last_valid_at: None,
            on_power_until: f64::NEG_INFINITY,
            last_msg_at: f64::NEG_INFINITY,
            percent_scale: false,
            counts: BatteryCounts { fraction: 0, percent: 0, nan: 0, invalid: 0, unknown_frames: 0, cap_changes: 0 },
            cap: 1.0,
            knowledge: BatteryKnowledge::Ignored,
        }
    }

    /// The charge in 0–1 from a published value, counting what kind it was; `None` if unusable.
    fn read(&mut self, p: f32) -> Option<f32> {
        if p.is_nan() {
            self.counts.nan += 1;
            None
        } else if !p.is_finite() || p < 0.0 || p > 100.0 {
            self.counts.invalid += 1;
            None
        } else if p > 1.0 || self.percent_scale {
            self.percent_scale = true;
            self.counts.percent += 1;
            Some(p / 100.0)
        } else {
            self.counts.fraction += 1;
            Some(p)
        }
    }

    fn level_for(policy: &BatteryPolicy, charge: f32, margin: f32) -> usize {
        policy.steps.iter().filter(|s| charge < s.below + margin).count()
    }

    /// Updates with this frame's reading (if any) at time `now` and returns the cap.
    pub fn update(&mut self, policy: &BatteryPolicy, now: f64, reading: Option<BatteryReading>) -> f32 {
        if !policy.enabled {
            self.knowledge = BatteryKnowledge::Ignored;
            return self.set_cap(1.0);
        }
        let stale = policy.stale_s as f64;
        if let Some(r) = reading {
            let age = if r.age_s.is_finite() && r.age_s >= 0.0 { r.age_s as f64 } else { f64::INFINITY };
            let at = now - age;
            // The caller passes its latest message every frame: only a new one is read (and
            // counted). 100 µs apart is a new message.
            if at > self.last_msg_at + NEW_MESSAGE_S || self.last_msg_at == f64::NEG_INFINITY {
                self.last_msg_at = at;
                let fresh = age <= stale;
                if let Some(charge) = self.read(r.percentage).filter(|_| fresh) {
                    self.last_valid_at = Some(at);
                    let down = Self::level_for(policy, charge, 0.0);
                    let up = Self::level_for(policy, charge, policy.hysteresis);
                    if down > self.level {
                        self.level = down;
                    } else if up < self.level {
                        self.level = up;
                    }
                }
                self.on_power_until = if fresh && r.status.on_power() { at + stale } else { f64::NEG_INFINITY };
            }
        }
        let level_cap = if self.level == 0 { 1.0 } else { policy.steps[self.level - 1].cap };
        let cap = if now <= self.on_power_until {
            self.knowledge = BatteryKnowledge::OnPower;
            1.0
        } else {
            match self.last_valid_at {
                Some(t) if now - t <= stale => {
                    self.knowledge = BatteryKnowledge::Fresh;
                    level_cap
                }
                seen => {
                    self.knowledge = if seen.is_some() { BatteryKnowledge::Stale } else { BatteryKnowledge::NeverRead };
                    self.counts.unknown_frames += 1;
                    policy.unknown_cap.min(level_cap)
                }
            }
        };
        self.set_cap(cap)
    }

    fn set_cap(&mut self, cap: f32) -> f32 {
        if cap != self.cap {
            self.counts.cap_changes += 1;
            self.cap = cap;
        }
        cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(p: f32) -> Option<BatteryReading> {
        Some(BatteryReading { percentage: p, status: PowerSupplyStatus::Discharging, age_s: 0.0 })
    }

    #[test]
    fn steps_with_hysteresis() {
        let policy = BatteryPolicy::default();
        let mut g = BatteryGovernor::new();
        assert_eq!(g.update(&policy, 0.0, reading(0.9)), 1.0);
        assert_eq!(g.update(&policy, 1.0, reading(0.49)), 0.75, "lowered at once below 0.5");
        assert_eq!(g.update(&policy, 2.0, reading(0.51)), 0.75, "not lifted within the hysteresis");
        assert_eq!(g.update(&policy, 3.0, reading(0.525)), 0.75);
        assert_eq!(g.update(&policy, 4.0, reading(0.531)), 1.0, "lifted 3 points above");
        assert_eq!(g.update(&policy, 5.0, reading(0.1)), 0.25, "straight to the lowest step");
        assert_eq!(g.knowledge, BatteryKnowledge::Fresh);
    }

    #[test]
    fn percent_publishers_nan_negative_and_staleness() {
        let policy = BatteryPolicy::default();
        let mut g = BatteryGovernor::new();
        assert_eq!(g.update(&policy, 0.0, None), 0.5, "never read: the unknown cap");
        assert_eq!(g.knowledge, BatteryKnowledge::NeverRead);
        assert_eq!(g.update(&policy, 0.1, reading(40.0)), 0.75, "40 read as 40 %");
        assert_eq!(g.update(&policy, 0.2, reading(0.9)), 0.25, "then 0.9 from the same publisher is 0.9 %");
        assert_eq!(g.update(&policy, 0.3, reading(f32::NAN)), 0.25, "held after NaN");
        assert_eq!(g.update(&policy, 0.4, reading(-1.0)), 0.25);
        assert_eq!(g.update(&policy, 0.5, reading(250.0)), 0.25);
        assert_eq!(g.update(&policy, 5.2, None), 0.25);
        assert_eq!(g.knowledge, BatteryKnowledge::Fresh, "the last valid reading (0.2 s) is 5.0 s old");
        assert_eq!(g.update(&policy, 5.21, None), 0.25, "stale: min(unknown cap, last level)");
        assert_eq!(g.knowledge, BatteryKnowledge::Stale);
        assert_eq!(
            (g.counts.percent, g.counts.fraction, g.counts.nan, g.counts.invalid),
            (2, 0, 1, 2),
            "{:?}",
            g.counts
        );
    }

    #[test]
    fn charging_lifts_the_cap_while_fresh_and_stale_readings_are_ignored() {
        let policy = BatteryPolicy::default();
        let mut g = BatteryGovernor::new();
        assert_eq!(g.update(&policy, 0.0, reading(0.1)), 0.25);
        let charging = BatteryReading { percentage: 0.1, status: PowerSupplyStatus::Charging, age_s: 0.0 };
        assert_eq!(g.update(&policy, 0.1, Some(charging)), 1.0);
        assert_eq!(g.knowledge, BatteryKnowledge::OnPower);
        assert_eq!(g.update(&policy, 5.1, None), 1.0);
        assert_eq!(g.update(&policy, 5.2, None), 0.25, "charging message stale: back to the fallback");
        let old = BatteryReading { percentage: 0.9, status: PowerSupplyStatus::Discharging, age_s: 60.0 };
        assert_eq!(g.update(&policy, 6.0, Some(old)), 0.25, "a stale message changes nothing");
        assert_eq!(g.update(&BatteryPolicy::off(), 7.0, Some(old)), 1.0);
    }
}
