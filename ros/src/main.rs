//! `pag-ros`: the pagrt ROS 2 node. `cargo run --release -p pag-ros -- --synthetic` runs it on a
//! bare machine with the built-in synthetic camera.
use std::time::Duration;

use clap::Parser;
use pag_ros::config::*;

use pag_ros::node::{run, Settings, SyntheticSettings};
use pag_ros::signals::SignalWatcher;
use pag_ros::stop::Stop;

/// As in the `pag` CLI: tract allocates every operator output afresh each frame, and mimalloc
/// keeps those pages mapped where glibc's malloc returned them to the kernel.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(version, about = "ROS 2 node for pagrt: PAG segmentation, depth and normals on camera images")]
struct Cli {
    /// Publish frames from the built-in synthetic camera (scene renderer, trajectory mode) on the
    /// camera topics.
    #[arg(long)]
    synthetic: bool,
    /// PAG ONNX model (parameter `model_path`).
    #[arg(long)]
    model: Option<String>,
    /// Node namespace; outputs are published under it.
    #[arg(long, default_value = "/pag")]
    namespace: String,
    #[arg(long, default_value = "pag_node")]
    node_name: String,
    /// `dense`, `native`, `budget` or `budget:ρ` (parameters `mode` and `rho`).
    #[arg(long, default_value = "dense")]
    mode: String,
    /// ρ in (0, 1] for budget mode (parameter `rho`).
    #[arg(long)]
    rho: Option<f64>,
    /// Frames whose receive → published time exceeds this count as deadline misses; with the
    /// controller on, the latency it plans each frame's `Session::run` for (parameter
    /// `deadline_ms`).
    #[arg(long, default_value_t = 100.0)]
    deadline_ms: f64,
    /// Let the ρ controller pick each frame's ρ from the measured latency, the deadline and the
    /// battery (parameter `controller`); `--mode` applies while it is off.
    #[arg(long)]
    controller: bool,
    /// Lowest ρ the controller may pick (parameter `rho_min`).
    #[arg(long)]
    rho_min: Option<f64>,
    /// A `pag profile` file for the controller; without one, a quick profile is measured when
    /// the controller is first switched on (parameter `controller_profile`).
    #[arg(long)]
    controller_profile: Option<String>,
    /// `off`, or `steps` (`scale` is read as `steps`): the battery caps ρ per `battery_steps`
    /// (parameter `battery_policy`).
    #[arg(long, default_value = "off")]
    battery_policy: String,
    /// Battery charge → ρ cap steps, `below:cap` pairs (parameter `battery_steps`).
    #[arg(long)]
    battery_steps: Option<String>,
    /// Inference threads; default: every core this process may use. Start-up only
    /// (parameter `threads`, read-only).
    #[arg(long)]
    threads: Option<usize>,
    /// What idle inference threads do during a frame: `sleep` (default: the synthetic camera and
    /// DDS share the cores) or `poll` for the frame's work (faster frames when the cores are
    /// otherwise free). Start-up only.
    #[arg(long, default_value = "sleep")]
    worker_wait: pag_runtime::WorkerWait,
    /// `model` (the model's own output size) or `input` (parameter `output_resolution`).
    #[arg(long, default_value = "model")]
    output_resolution: String,
    /// Depths beyond this many metres are published as NaN; 0 = no limit (parameter `max_depth_m`).
    #[arg(long, default_value_t = 0.0)]
    max_depth_m: f64,
    /// Publish per-frame timing on `<namespace>/frame_timing` (parameter `publish_timing`).
    #[arg(long)]
    timing: bool,
    /// Exit after this many processed frames.
    #[arg(long)]
    frames: Option<u64>,
    /// Synthetic camera frame rate.
    #[arg(long, default_value_t = 15.0)]
    rate_hz: f64,
    /// Synthetic camera size.
    #[arg(long, default_value_t = 320)]
    width: u32,
    #[arg(long, default_value_t = 240)]
    height: u32,
    /// Synthetic scene seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "/camera/image_raw")]
    image_topic: String,
    #[arg(long, default_value = "/camera/camera_info")]
    camera_info_topic: String,
    #[arg(long, default_value = "/battery_state")]
    battery_topic: String,
    /// DDS domain; defaults to $ROS_DOMAIN_ID, else 0.
    #[arg(long)]
    domain_id: Option<u16>,
    /// Seconds between `/diagnostics` messages.
    #[arg(long, default_value_t = 1.0)]
    diagnostics_period: f64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustdds=warn,ros2_client=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut config = Config::new(cli.model.clone().unwrap_or_else(pag_ros::default_model_path));
    let (kind, rho) = parse_cli_mode(&cli.mode).map_err(anyhow::Error::msg)?;
    let set = |c: &mut Config, name: &str, v: ros2_client::ParameterValue| {
        c.set(name, &v).map_err(|e| anyhow::anyhow!("--{}: {e}", name.replace('_', "-")))
    };

    use ros2_client::ParameterValue::{Boolean, Double, String as S};
    set(&mut config, P_MODE, S(kind.to_string()))?;
    if let Some(r) = cli.rho.or(rho) {
        set(&mut config, P_RHO, Double(r))?;
    }
    set(&mut config, P_DEADLINE_MS, Double(cli.deadline_ms))?;
    if let Some(s) = &cli.battery_steps {
        set(&mut config, P_BATTERY_STEPS, S(s.clone()))?;
    }
    if let Some(r) = cli.rho_min {
        set(&mut config, P_RHO_MIN, Double(r))?;
    }
    set(&mut config, P_BATTERY_POLICY, S(cli.battery_policy.clone()))?;
    if let Some(p) = &cli.controller_profile {
        set(&mut config, P_CONTROLLER_PROFILE, S(p.clone()))?;
    }
    set(&mut config, P_CONTROLLER, Boolean(cli.controller))?;
    config.set_threads(cli.threads).map_err(|e| anyhow::anyhow!("--threads: {e}"))?;
    config.worker_wait = cli.worker_wait;
    set(&mut config, P_OUTPUT_RESOLUTION, S(cli.output_resolution.clone()))?;
    set(&mut config, P_PUBLISH_TIMING, Boolean(cli.timing))?;
    set(&mut config, P_MAX_DEPTH_M, Double(cli.max_depth_m))?;
    let domain_id = match cli.domain_id {
        Some(d) => d,
        None => std::env::var("ROS_DOMAIN_ID").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0),
    };
    let settings = Settings {
        config,
        namespace: cli.namespace,
        node_name: cli.node_name,
        domain_id,
        image_topic: cli.image_topic,
        camera_info_topic: cli.camera_info_topic,
        battery_topic: cli.battery_topic,
        frames: cli.frames,
        synthetic: cli.synthetic.then_some(SyntheticSettings {
            width: cli.width,
            height: cli.height,
            rate_hz: cli.rate_hz,
            seed: cli.seed,
        }),
        diagnostics_period: Duration::from_secs_f64(cli.diagnostics_period.max(0.01)),
        stale_after: Duration::from_secs(5),
    };
    // SIGINT/SIGTERM stop the node cleanly: the frame in progress is finished, every thread is
    // joined, the DDS participants are disposed, and the process exits 0.
    let stop = Stop::new();
    let signals = SignalWatcher::start(stop.clone())?;
    let result = run(settings, &stop);
    signals.finish();
    let s = result?;
    eprintln!(
        "processed {} frames in {:.1} s ({:.1} fps); received {}, dropped {}, rejected {}, failed {}; stopped ({}), \
         shut down in {:.0} ms",
        s.processed,
        s.elapsed.as_secs_f64(),
        s.processed as f64 / s.elapsed.as_secs_f64().max(1e-9),
        s.received,
        s.dropped,
        s.rejected,
        s.inference_errors,
        s.reason,
        s.shutdown.as_secs_f64() * 1e3
    );
    Ok(())
}
