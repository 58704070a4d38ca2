//! Energy per frame, only where the platform exposes it to a program:
//! - x86 RAPL: `/sys/class/powercap/intel-rapl:N/energy_uj` (cumulative µJ per package; root-only
//!   since Linux 5.10; absent in most VMs);
//! - Jetson INA3221: `/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_input` (mV) and
//!   `curr*_input` (mA) per rail, `in*_label` naming it (`VDD_IN` is the module's input).
//!
//! Nothing found → `None` and a note saying what was looked for; never an estimate.
use std::path::{Path, PathBuf};

/// A readable energy or power source.
#[derive(Debug, Clone, PartialEq)]
pub enum EnergyMeter {
    /// Cumulative counters (µJ) of every top-level RAPL package, with their wrap ranges.
    Rapl { counters: Vec<(PathBuf, u64)> },
    /// Instantaneous power of one or more rails: (label, millivolt file, milliamp file).
    Ina3221 { rails: Vec<(String, PathBuf, PathBuf)> },
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

impl EnergyMeter {
    /// Looks under `root` (`/` on a real system) for RAPL, then INA3221. Returns the meter, if
    /// any, and a note on what was found.
    pub fn probe(root: &Path) -> (Option<EnergyMeter>, String) {
        let mut notes = Vec::new();
        let powercap = root.join("sys/class/powercap");
        let mut counters = Vec::new();
        let mut unreadable = 0;
        if let Ok(dir) = std::fs::read_dir(&powercap) {
            let mut names: Vec<_> = dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            // Top-level packages only (intel-rapl:0, not intel-rapl:0:0, which they include).
            for n in names.iter().filter(|n| n.starts_with("intel-rapl:") && n.matches(':').count() == 1) {
                let f = powercap.join(n).join("energy_uj");
                match read_u64(&f) {
                    Some(_) => {
                        let range = read_u64(&powercap.join(n).join("max_energy_range_uj")).unwrap_or(u64::MAX);
                        counters.push((f, range));
                    }
                    None if f.exists() => unreadable += 1,
                    None => {}
                }
            }
        }
        if !counters.is_empty() {
            let note =
                format!("RAPL: {} package counter(s), CPU package energy (not DRAM, not the board)", counters.len());
            return (Some(EnergyMeter::Rapl { counters }), note);
        }
        notes.push(if unreadable > 0 {
            format!("RAPL energy_uj exists but is unreadable ({unreadable} package(s); root-only since Linux 5.10)")
        } else {
            format!("no RAPL ({}/intel-rapl:*/energy_uj absent)", powercap.display())
        });
        let ina = root.join("sys/bus/i2c/drivers/ina3221");
        let mut rails = Vec::new();
        for dev in std::fs::read_dir(&ina).into_iter().flatten().flatten() {
            for hw in std::fs::read_dir(dev.path().join("hwmon")).into_iter().flatten().flatten() {
                for ch in 1..=3 {
                    let (v, i) = (hw.path().join(format!("in{ch}_input")), hw.path().join(format!("curr{ch}_input")));
                    if read_u64(&v).is_some() && read_u64(&i).is_some() {
                        let label = std::fs::read_to_string(hw.path().join(format!("in{ch}_label")))
                            .map(|s| s.trim().to_owned())
                            .unwrap_or_else(|_| format!("{}:in{ch}", dev.file_name().to_string_lossy()));
                        rails.push((label, v, i));
                    }
                }
            }
        }
        rails.sort();
        if let Some(total) = rails.iter().find(|r| r.0 == "VDD_IN").cloned() {
            return (Some(EnergyMeter::Ina3221 { rails: vec![total] }), "INA3221: VDD_IN (module input power)".into());
        }
        if !rails.is_empty() {
            let names: Vec<_> = rails.iter().map(|r| r.0.clone()).collect();
            let note = format!("INA3221: sum of rails {} (no VDD_IN rail)", names.join(", "));
            return (Some(EnergyMeter::Ina3221 { rails }), note);
        }
        notes.push(format!("no INA3221 ({}/*/hwmon/hwmon*/in*_input absent)", ina.display()));
        (None, notes.join("; ") + ": energy per frame not measured")
    }

    /// A name for the profile's `energy.source`.
    pub fn source(&self) -> String {
        match self {
            EnergyMeter::Rapl { counters } => {
                let paths: Vec<_> = counters.iter().map(|c| c.0.display().to_string()).collect();
                format!("rapl:{}", paths.join(","))
            }
            EnergyMeter::Ina3221 { rails } => {
                let names: Vec<_> = rails.iter().map(|r| r.0.clone()).collect();
                format!("ina3221:{}", names.join("+"))
            }
        }
    }

    /// A reading: cumulative µJ per counter (RAPL) or instantaneous mW (INA3221).
    pub fn read(&self) -> Option<Reading> {
        match self {
            EnergyMeter::Rapl { counters } => {
                counters.iter().map(|c| read_u64(&c.0)).collect::<Option<Vec<u64>>>().map(Reading::Counters)
            }
            EnergyMeter::Ina3221 { rails } => {
                let mut mw = 0.0;
                for (_, v, i) in rails {
                    mw += read_u64(v)? as f64 * read_u64(i)? as f64 / 1000.0;
                }
                Some(Reading::PowerMw(mw))
            }
        }
    }

    /// Millijoules between two readings `seconds` apart (counters: difference with wrap;
    /// power: the mean of the two × the time).
    pub fn millijoules(&self, a: &Reading, b: &Reading, seconds: f64) -> Option<f64> {
        match (self, a, b) {
            (EnergyMeter::Rapl { counters }, Reading::Counters(x), Reading::Counters(y)) => {
                let mut uj = 0u64;
                for ((x, y), (_, range)) in x.iter().zip(y).zip(counters) {
                    uj += if y >= x { y - x } else { range - x + y };
                }
                Some(uj as f64 / 1000.0)
            }
            (EnergyMeter::Ina3221 { .. }, Reading::PowerMw(p), Reading::PowerMw(q)) => Some((p + q) / 2.0 * seconds),
            _ => None,
        }
    }
}

/// One meter reading.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Counters(Vec<u64>),
    PowerMw(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn nothing_exposed_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (m, note) = EnergyMeter::probe(dir.path());
        assert!(m.is_none());
        assert!(note.contains("no RAPL") && note.contains("no INA3221") && note.contains("not measured"), "{note}");
    }

    #[test]
    fn rapl_packages_with_wrap() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/class/powercap/intel-rapl:0/energy_uj", "1000\n");
        write(dir.path(), "sys/class/powercap/intel-rapl:0/max_energy_range_uj", "262143328850\n");
        write(dir.path(), "sys/class/powercap/intel-rapl:0:0/energy_uj", "5\n");
        let (m, note) = EnergyMeter::probe(dir.path());
        let m = m.unwrap();
        assert!(note.starts_with("RAPL: 1 package"), "{note}");
        let a = m.read().unwrap();
        write(dir.path(), "sys/class/powercap/intel-rapl:0/energy_uj", "251000\n");
        let b = m.read().unwrap();
        assert_eq!(m.millijoules(&a, &b, 0.1), Some(250.0));
        let wrapped = Reading::Counters(vec![100]);
        assert_eq!(m.millijoules(&b, &wrapped, 0.1), Some((262143328850u64 - 251000 + 100) as f64 / 1000.0));
    }

    #[test]
    fn ina3221_prefers_vdd_in() {
        let dir = tempfile::tempdir().unwrap();
        let hw = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3";
        for (ch, label, mv, ma) in [(1, "VDD_IN", 5000, 1200), (2, "VDD_CPU_GPU_CV", 5000, 400)] {
            write(dir.path(), &format!("{hw}/in{ch}_label"), label);
            write(dir.path(), &format!("{hw}/in{ch}_input"), &mv.to_string());
            write(dir.path(), &format!("{hw}/curr{ch}_input"), &ma.to_string());
        }
        let (m, note) = EnergyMeter::probe(dir.path());
        let m = m.unwrap();
        assert!(note.contains("VDD_IN"), "{note}");
        assert_eq!(m.source(), "ina3221:VDD_IN");
        let r = m.read().unwrap();
        assert_eq!(r, Reading::PowerMw(6000.0));
        assert_eq!(m.millijoules(&r, &r, 0.01), Some(60.0));
    }
}
