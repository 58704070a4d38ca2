//! Interop with an independent DDS implementation: a peer built on Eclipse Cyclone DDS
//! (tests/peer/peer.py) publishes camera images (every encoding, several sizes, padded rows)
//! and BatteryState into the node and subscribes to every output. The peer checks encodings,
//! sizes, steps, header passthrough, camera_info scaling, NaN/unit-normal handling, battery
//! handling and diagnostics; this test then checks that the label, depth, normal, colour and
//! ponder values it received equal the runtime's own outputs for the same input.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::cases::{check_outputs_equal_the_runtime, write_cases, Case};
use pag_runtime::{PagModel, Resolution};

#[test]
fn cyclone_peer_sees_every_output_with_the_runtimes_values() {
    interop(Resolution::Model, 0);
}

#[test]
fn cyclone_peer_sees_outputs_at_the_input_resolution() {
    interop(Resolution::Input, 5);
}

fn interop(resolution: Resolution, domain_k: u16) {
    if !common::cyclone_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases = write_cases(dir.path());
    let model = Arc::new(PagModel::load_with(common::model_path(), pag_runtime::Execution::Sparse).unwrap());
    let (mh, mw) = (model.info.input.height, model.info.input.width);
    let output_hw = match resolution {
        Resolution::Model => format!("[{mh}, {mw}]"),
        Resolution::Input => "\"input\"".to_owned(),
    };
    let spec = serde_json_like(&cases, &output_hw, model.info.class_names.len(), 4.0);
    std::fs::write(dir.path().join("cases.json"), spec).unwrap();

    let domain = common::domain(domain_k);
    // A depth limit inside the rooms' range, so that the depth images carry NaNs (REP 118 invalid).
    let max_depth_m = 4.0;
    let res_arg = if resolution == Resolution::Input { "input" } else { "model" };
    let mut node =
        common::NodeProcess::spawn(domain, &["--max-depth-m", "4.0", "--output-resolution", res_arg], dir.path());
    let (ok, out) = common::run_peer(
        &["interop", "--domain", &domain.to_string(), "--cases", dir.path().to_str().unwrap(), "--timeout", "90"],
        Duration::from_secs(300),
    );
    println!("{out}");
    assert!(node.is_running(), "node died:\n{}", node.log());
    assert!(ok, "Cyclone peer checks failed:\n{out}\nnode log:\n{}", node.log());
    check_outputs_equal_the_runtime(dir.path(), &cases, &model, resolution, max_depth_m);
}

/// cases.json for the peer (no serde_json dependency needed for this little document).
fn serde_json_like(cases: &[Case], output_hw: &str, classes: usize, max_depth_m: f64) -> String {
    let items: Vec<String> = cases
        .iter()
        .map(|c| format!(r#"{{"file": "{}", "encoding": "{}", "pad": {}}}"#, c.file, c.encoding, c.pad))
        .collect();
    format!(
        r#"{{"output_hw": {output_hw}, "num_classes": {classes}, "max_depth_m": {max_depth_m}, "cases": [{}]}}"#,
        items.join(", ")
    )
}
