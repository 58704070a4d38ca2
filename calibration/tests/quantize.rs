//! `pag calibrate` (pag_calibration::quantize): the QDQ model's structure, its numbers against
//! the float model (tract), the statistics cache, and every refused input.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pag_calibration::quantize::{calibrate, CacheStatus, CalibrateOptions, CalibrateReport, ImageSource, Method};
use pag_calibration::CalibrationError;
use pag_runtime::generic::{IntoTensor, Tensor};
use tract_onnx::pb::{self, ModelProto, NodeProto, TensorProto};

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/shipped/pag_multitask.onnx")
}

fn options(out: &Path, count: usize) -> CalibrateOptions {
    let mut o = CalibrateOptions::new(shipped(), out);
    o.images = ImageSource::Render { count, seed: 500_000 };
    o
}

/// The shipped model calibrated once on 8 rendered scenes (shared by the tests).
fn calibrated() -> &'static (PathBuf, CalibrateReport) {
    static ONCE: OnceLock<(PathBuf, CalibrateReport)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let out = dir.join("int8.onnx");
        let report = calibrate(&options(&out, 8), &mut |_| {}).expect("calibrates");
        (out, report)
    })
}

fn decode(path: &Path) -> ModelProto {
    pag_runtime::decode_onnx(&std::fs::read(path).unwrap(), "test").unwrap()
}

struct Index<'a> {
    producer: HashMap<&'a str, &'a NodeProto>,
    init: HashMap<&'a str, &'a TensorProto>,
}

impl<'a> Index<'a> {
    fn new(m: &'a ModelProto) -> Index<'a> {
        let g = m.graph.as_ref().unwrap();
        Index {
            producer: g.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect(),
            init: g.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
        }
    }
    /// The DequantizeLinear producing `t` (named `<x>_dequantized`) and its three initializers
    /// or tensors.
    fn dq(&self, t: &str) -> &'a NodeProto {
        let n = self.producer[t];
        assert_eq!(n.op_type, "DequantizeLinear", "{t} is produced by {}", n.op_type);
        let base = t.strip_suffix("_dequantized").unwrap_or_else(|| panic!("{t} is not named `*_dequantized`"));
        assert_eq!(n.input, [format!("{base}_quantized"), format!("{base}_scale"), format!("{base}_zero_point")]);
        n
    }
}

fn dt(t: &TensorProto) -> pb::tensor_proto::DataType {
    pb::tensor_proto::DataType::try_from(t.data_type).unwrap()
}

fn axis(n: &NodeProto) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == "axis").map(|a| a.i)
}

fn meta(m: &ModelProto) -> HashMap<String, String> {
    m.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect()
}

#[test]
fn every_quantized_conv_reads_dequantized_int8_per_channel_weights_and_int32_biases() {
    use pb::tensor_proto::DataType;
    let (out, report) = calibrated();
    let float = decode(&shipped());
    let q = decode(out);
    let ix = Index::new(&q);
    let fx = Index::new(&float);
    let g = q.graph.as_ref().unwrap();
    let convs: Vec<&NodeProto> = g.node.iter().filter(|n| n.op_type == "Conv").collect();
    assert_eq!(convs.len(), 47);
    let mut quantized = 0;
    for c in convs {
        let keep = ["gate", "selector", "head"].iter().any(|k| c.name.contains(k));
        if keep {
            assert!(ix.init.contains_key(c.input[1].as_str()), "{} kept float reads its float weight", c.name);
            continue;
        }
        quantized += 1;
        // Data input: DQ(Q(x)) with u8 scalar parameters.
        let dx = ix.dq(&c.input[0]);
        let qx = ix.producer[dx.input[0].as_str()];
        assert_eq!(qx.op_type, "QuantizeLinear");
        assert_eq!(dt(ix.init[dx.input[2].as_str()]), DataType::Uint8);
        assert!(ix.init[dx.input[1].as_str()].dims.is_empty(), "activation scale is a scalar");
        // Weight: s8 per output channel, zero points 0, −128 never used.
        let dw = ix.dq(&c.input[1]);
        assert_eq!(axis(dw), Some(0));
        let (wq, ws, wz) =
            (ix.init[dw.input[0].as_str()], ix.init[dw.input[1].as_str()], ix.init[dw.input[2].as_str()]);
        let wname = c.input[1].strip_suffix("_dequantized").unwrap();
        let wf = fx.init[wname];
        assert_eq!(dt(wq), DataType::Int8);
        assert_eq!(wq.dims, wf.dims);
        let o = wf.dims[0] as usize;
        assert_eq!((ws.dims.as_slice(), dt(ws)), (&[o as i64][..], DataType::Float));
        assert_eq!((wz.dims.as_slice(), dt(wz)), (&[o as i64][..], DataType::Int8));
        assert!(wz.raw_data.iter().all(|&z| z == 0));
        assert!(wq.raw_data.iter().all(|&b| b as i8 != i8::MIN), "{wname}: −128 used");
        let scales: Vec<f32> = ws.raw_data.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let wfv: Vec<f32> = wf.raw_data.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let per = wfv.len() / o;
        for (i, (&qv, &fv)) in wq.raw_data.iter().zip(&wfv).enumerate() {
            let s = scales[i / per];
            assert!(((qv as i8) as f32 * s - fv).abs() <= s * 0.5 + 1e-6, "{wname}[{i}] off the grid");
        }
        for row in wq.raw_data.chunks(per) {
            assert!(
                row.iter().all(|&b| b == 0) || row.iter().any(|&b| (b as i8).abs() == 127),
                "{wname}: a channel misses ±127"
            );
        }
        // Bias: int32, scale = s_x · s_w.
        let db = ix.dq(&c.input[2]);
        assert_eq!(axis(db), Some(0));
        let (bq, bs, bz) =
            (ix.init[db.input[0].as_str()], ix.init[db.input[1].as_str()], ix.init[db.input[2].as_str()]);
        assert_eq!((dt(bq), dt(bs), dt(bz)), (DataType::Int32, DataType::Float, DataType::Int32));
        let sx = f32::from_le_bytes(ix.init[dx.input[1].as_str()].raw_data[..4].try_into().unwrap());
        let bsv: Vec<f32> = bs.raw_data.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        for (b, s) in bsv.iter().zip(&scales) {
            assert_eq!(*b, sx * s);
        }
        assert!(bz.raw_data.iter().all(|&z| z == 0));
    }
    assert_eq!(quantized, 36);
    assert_eq!(report.quantized_convs.len(), 36);
    // No float weight of a quantized conv is left behind.
    assert!(!ix.init.contains_key("net.stem.0.conv.weight"));
    assert!(q.ir_version <= 8);
    assert_eq!(q.opset_import.iter().find(|o| o.domain.is_empty()).map(|o| o.version), Some(17));
}

#[test]
fn conv_outputs_are_rewired_and_metadata_follows() {
    let (out, _) = calibrated();
    let q = decode(out);
    let ix = Index::new(&q);
    let g = q.graph.as_ref().unwrap();
    let m = meta(&q);
    assert_eq!(m["pag.contract_version"], "2");
    let quant: serde_json::Value = serde_json::from_str(&m["pag.quantization"]).unwrap();
    assert_eq!(quant["format"], "qdq");
    assert_eq!(quant["activations"], "u8 per-tensor asymmetric");
    assert_eq!(quant["weights"], "s8 per-channel symmetric");
    assert_eq!(quant["method"], "percentile");
    assert_eq!(quant["kept_float"], serde_json::json!(["gate", "selector", "head"]));
    assert_eq!(quant["images"]["count"], 8);
    assert_eq!(quant["calibration_sha256"].as_str().unwrap().len(), 64);
    // A quantized conv's Relu output: nobody reads it but its QuantizeLinear.
    let relu = "/net/stem/stem.1/Relu_output_0";
    let readers: Vec<&str> =
        g.node.iter().filter(|n| n.input.iter().any(|i| i == relu)).map(|n| n.op_type.as_str()).collect();
    assert_eq!(readers, ["QuantizeLinear"]);
    // The residual stream (an Add, not a conv) keeps its float readers: the gate reads it.
    let add = "/net/stage1.0/Add_output_0";
    let gate = g.node.iter().find(|n| n.name == "/net/stage1.1/gate/Conv").unwrap();
    assert_eq!(gate.input[0], add);
    let reduce = g.node.iter().find(|n| n.name == "/net/stage1.1/reduce/conv/Conv").unwrap();
    assert_eq!(reduce.input[0], format!("{add}_dequantized"));
    let blocks: Vec<pag_runtime::GatedBlockSpec> = serde_json::from_str(&m["pag.gated_blocks"]).unwrap();
    assert_eq!(blocks[0].input, format!("{relu}_dequantized"));
    assert_eq!(blocks[1].input, add);
    for b in &blocks {
        assert!(b.branch.ends_with("_dequantized"), "branch {} (an expand conv's output)", b.branch);
        assert!(ix.producer.contains_key(b.branch.as_str()));
    }
    // MultiPool: input, conv branches and output share one scale and zero point.
    let mps: Vec<pag_runtime::MultiPoolSpec> = serde_json::from_str(&m["pag.multipools"]).unwrap();
    let mp = &mps[0];
    assert!(mp.input.ends_with("_dequantized"));
    assert!(mp.branches[1..].iter().all(|b| b.ends_with("_dequantized")));
    assert_eq!(mp.branches[0], mp.input);
    let params = |t: &str| {
        let base = t.strip_suffix("_dequantized").unwrap_or(t);
        (
            ix.init[format!("{base}_scale").as_str()].raw_data.clone(),
            ix.init[format!("{base}_zero_point").as_str()].raw_data.clone(),
        )
    };
    let first = params(&mp.input);
    for t in mp.branches.iter().chain([&mp.output]) {
        assert_eq!(params(t), first, "{t} has its own parameters");
    }
}

fn scene_input(seed: u64) -> Tensor {
    use pag_models::{CameraMount, Intrinsics, Scene};
    let scene = Scene::random(seed);
    let mount =
        CameraMount { height_m: 0.6, height_play_m: 0.03, pitch_deg: -5.0, pitch_play_deg: 3.0, roll_play_deg: 2.0 };
    let rgb = scene.render(&Intrinsics::with_hfov(320, 240, 70.0), &scene.mount_pose(seed, &mount)).rgb;
    let model = decode(&shipped());
    let info = pag_runtime::ModelInfo::from_proto(&model).unwrap();
    let mut x = ndarray::Array4::<f32>::zeros((1, 3, 240, 320));
    pag_runtime::fill_input(rgb.view(), &info.input, x.view_mut());
    x.into_tensor()
}

fn labels(outs: &[(String, Tensor)]) -> Vec<usize> {
    let seg = outs.iter().find(|o| o.0 == "seg_logits").unwrap().1.to_plain_array_view::<f32>().unwrap().to_owned();
    let (k, h, w) = (seg.shape()[1], seg.shape()[2], seg.shape()[3]);
    (0..h * w)
        .map(|p| (0..k).max_by(|&a, &b| seg[[0, a, p / w, p % w]].total_cmp(&seg[[0, b, p / w, p % w]])).unwrap())
        .collect()
}

#[test]
fn tract_runs_the_qdq_model_close_to_the_float_model() {
    let (out, _) = calibrated();
    let rho = || pag_runtime::generic::IntoTensor::into_tensor(ndarray::arr1(&[1.0f32]));
    let x = scene_input(900_007);
    let f = pag_runtime::generic::run_onnx(&shipped(), vec![x.clone(), rho()]).unwrap();
    let q = pag_runtime::generic::run_onnx(out, vec![x, rho()]).unwrap();
    let (lf, lq) = (labels(&f), labels(&q));
    let agree = lf.iter().zip(&lq).filter(|(a, b)| a == b).count() as f64 / lf.len() as f64;
    println!("seg label agreement QDQ (tract) vs float: {:.2} %", 100.0 * agree);
    // Measured 99.0 % (8 calibration images, percentile); the bound leaves margin.
    assert!(agree >= 0.95, "seg labels agree on {:.2} % of pixels", 100.0 * agree);
}

/// The runtime loads what `pag calibrate` writes and runs it on its int8 kernels: every gated
/// block int8, every ungated quantized conv one int8 op, nothing left to run densely.
#[test]
fn the_runtime_loads_the_qdq_model_onto_its_int8_kernels() {
    let (out, _) = calibrated();
    let model = pag_runtime::PagModel::load(out).unwrap_or_else(|e| panic!("{e}"));
    let notes: Vec<&String> = model.dense_fallbacks.iter().filter(|n| !n.starts_with("int8 blocks run on")).collect();
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(model.sparse_op_counts(), (9, 0));
    assert_eq!(model.op_count("PagQConv"), 4, "stem.0, stem.1, down2 and the lateral conv");
}

#[test]
fn a_valid_cache_is_reused_and_a_changed_model_or_image_set_invalidates_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.onnx");
    let first = calibrate(&options(&out, 8), &mut |_| {}).unwrap();
    assert_eq!(first.cache_status, CacheStatus::Missing);
    assert_eq!(first.frames_run, 16);
    assert!(dir.path().join("q.onnx.calib.json").is_file());
    let fresh = std::fs::read(&out).unwrap();
    let again = calibrate(&options(&out, 8), &mut |_| {}).unwrap();
    assert_eq!(again.cache_status, CacheStatus::Hit);
    assert!(std::fs::read(&out).unwrap() == fresh, "the model from the cache differs from the fresh one");
    let mut frames = 0;
    let mut o = options(&out, 8);
    o.method = Method::Entropy;
    let second = calibrate(&o, &mut |_| frames += 1).unwrap();
    assert_eq!(second.cache_status, CacheStatus::Hit);
    assert_eq!((second.frames_run, frames), (0, 0));
    // Another image set: one more scene.
    let third = calibrate(&options(&out, 9), &mut |_| {}).unwrap();
    match &third.cache_status {
        CacheStatus::Invalid(why) => assert!(why.contains("image set"), "{why}"),
        s => panic!("{s:?}"),
    }
    assert_eq!(third.frames_run, 18);
    // Another model: same graph, one more metadata entry (other bytes).
    let mut m = decode(&shipped());
    m.metadata_props.push(pb::StringStringEntryProto { key: "note".into(), value: "x".into() });
    let other = dir.path().join("other.onnx");
    std::fs::write(&other, prost::Message::encode_to_vec(&m)).unwrap();
    let mut o = options(&out, 9);
    o.model = other;
    let fourth = calibrate(&o, &mut |_| {}).unwrap();
    match &fourth.cache_status {
        CacheStatus::Invalid(why) => assert!(why.contains("another model"), "{why}"),
        s => panic!("{s:?}"),
    }
}

fn write_scenes(dir: &Path, n: usize) {
    use pag_models::{Intrinsics, Scene};
    for i in 0..n {
        let scene = Scene::random(i as u64);
        let rgb = scene.render(&Intrinsics::with_hfov(160, 120, 70.0), &scene.random_pose(i as u64)).rgb;
        let img = image::RgbImage::from_raw(160, 120, rgb.into_raw_vec_and_offset().0).unwrap();
        img.save(dir.join(format!("img{i:02}.png"))).unwrap();
    }
}

fn error_of(o: &CalibrateOptions) -> String {
    match calibrate(o, &mut |_| {}) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("calibration should have failed"),
    }
}

#[test]
fn a_folder_of_images_calibrates_and_bad_folders_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    let out = dir.path().join("q.onnx");
    let mut o = options(&out, 8);
    o.images = ImageSource::Folder(imgs.clone());
    let e = error_of(&o);
    assert!(e.contains("has no PNG or JPEG images") && e.contains("imgs"), "{e}");
    write_scenes(&imgs, 7);
    std::fs::write(imgs.join("notes.txt"), "not an image").unwrap();
    let e = error_of(&o);
    assert!(e.contains("too few calibration images") && e.contains("has 7"), "{e}");
    write_scenes(&imgs, 8);
    let ok = calibrate(&o, &mut |_| {}).unwrap();
    assert_eq!(ok.frames_run, 16);
    std::fs::write(imgs.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let e = error_of(&o);
    assert!(e.contains("broken.png"), "{e}");
    let mut few = options(&out, 7);
    few.images = ImageSource::Render { count: 7, seed: 1 };
    assert!(error_of(&few).contains("--count 7"));
}

#[test]
fn a_model_without_the_pag_contract_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = decode(&shipped());
    m.metadata_props.retain(|p| p.key != "pag.contract_version");
    let plain = dir.path().join("plain.onnx");
    std::fs::write(&plain, prost::Message::encode_to_vec(&m)).unwrap();
    let mut o = options(&dir.path().join("q.onnx"), 8);
    o.model = plain;
    let e = error_of(&o);
    assert!(e.contains("not a PAG model"), "{e}");
    o.model = dir.path().join("missing.onnx");
    let e = error_of(&o);
    assert!(e.contains("missing.onnx"), "{e}");
}

#[test]
fn an_unwritable_output_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(&dir.path().join("no/such/dir/q.onnx"), 8);
    let e = error_of(&o);
    assert!(e.contains("no/such/dir") && e.contains("does not exist"), "{e}");
    let o = options(dir.path(), 8);
    let e = error_of(&o);
    assert!(e.contains("is a directory"), "{e}");
    assert!(matches!(calibrate(&o, &mut |_| {}), Err(CalibrationError::Output(_))));
}

/// `--reduce-range`: every weight within ±63 with each channel reaching it (7-bit weights, for
/// onnxruntime on x86 without VNNI), the metadata says so, the statistics cache of the same
/// model and images is reused, and the runtime loads it onto its int8 kernels.
#[test]
fn reduced_range_weights_stay_within_seven_bits() {
    use pb::tensor_proto::DataType;
    let (full, first) = calibrated();
    let out = full.with_file_name("int8_rr.onnx");
    let mut o = options(&out, 8);
    o.cache = Some(first.cache_path.clone());
    o.reduce_range = true;
    let report = calibrate(&o, &mut |_| {}).expect("calibrates");
    assert!(report.cache_status.is_hit(), "same model and images: {:?}", report.cache_status);
    let q = decode(&out);
    let g = q.graph.as_ref().unwrap();
    let weights: Vec<&TensorProto> =
        g.initializer.iter().filter(|t| dt(t) == DataType::Int8 && t.dims.len() == 4).collect();
    assert_eq!(weights.len(), 36);
    for w in weights {
        let per = w.raw_data.len() / w.dims[0] as usize;
        for row in w.raw_data.chunks(per) {
            assert!(row.iter().all(|&b| (b as i8).abs() <= 63), "{}: a weight beyond ±63", w.name);
            assert!(row.iter().all(|&b| b == 0) || row.iter().any(|&b| (b as i8).abs() == 63), "{}", w.name);
        }
    }
    assert!(meta(&q)["pag.quantization"].contains("7-bit"), "{}", meta(&q)["pag.quantization"]);
    let model = pag_runtime::PagModel::load(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.sparse_op_counts(), (9, 0));
}
