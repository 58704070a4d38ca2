//! Graph surgery: each supported module of a typed tract model replaced by one pagrt op.
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use super::contract::ModelInfo;
use super::extract::{extract_pointwise, extract_qconvs, extract_with_shapes, outlet_of};
use crate::error::{tract_err, PagError, Result};
use crate::kernels::cpu_f32::PerforatedConv;
use crate::ops::{ConvOp, GatedBlockOp, L2NormOp, MultiPoolOp, PagOp, QConvOp, ResizeOp};

/// Replaces every supported gated block and MultiPool of `model` (typed, not yet decluttered,
/// so that ONNX tensor names are still outlet labels) by one sparse op; returns why each other
/// module stays dense.
pub(super) fn install_sparse_ops(
    model: &mut TypedModel,
    proto: &ModelProto,
    info: &ModelInfo,
    rho: Option<OutletId>,
) -> Result<Vec<String>> {
    let plan = extract_with_shapes(proto, info, Ok(&*model));
    let qconvs = extract_qconvs(proto, Ok(&*model));
    let pointwise = extract_pointwise(proto, Ok(&*model));
    let mut fallbacks = Vec::new();
    let find = |model: &TypedModel, name: &str| {
        outlet_of(model, name).ok_or_else(|| PagError::Tract {
            stage: "install sparse ops in",
            reason: format!("no tensor `{name}` in the typed model"),
        })
    };
    for entry in plan.gated {
        let b = match entry {
            Ok(b) => b,
            Err(e) => {
                fallbacks.push(e.to_string());
                continue;
            }
        };
        let Some(rho) = rho else {
            fallbacks.push(format!("gated block `{}` runs densely: the model has no ρ input", b.spec.name));
            continue;
        };
        let (input, output) = (find(model, &b.spec.input)?, find(model, &b.spec.output)?);
        if let crate::kernels::AnyGatedBlock::I8(block) = &b.block {
            let kernel = block.kernel();
            let note = if matches!(kernel, crate::kernels::cpu_i8::I8Kernel::Avx2) {
                "int8 blocks run on pagrt's exact AVX2 kernel: this CPU has no dot-product int8 \
                 instructions (VNNI, AVX-VNNI, AMX, SDOT), so int8 runs at about the float model's speed"
                    .to_string()
            } else {
                format!(
                    "int8 blocks run on tract-linalg's `{}`, a kernel without dot-product int8 instructions \
                     (VNNI, AVX-VNNI, AMX, SDOT): on it the float model is faster",
                    kernel.name()
                )
            };
            if !kernel.has_dot_product() && !fallbacks.contains(&note) {
                fallbacks.push(note);
            }
        }
        let op = PagOp::new(GatedBlockOp::new(b.spec.name.clone(), b.block));
        replace_subgraph(model, &[input, rho], output, format!("pag_gated.{}", b.spec.name), op)?;
    }
    for entry in plan.multipools {
        let m = match entry {
            Ok(m) => m,
            Err(e) => {
                fallbacks.push(e.to_string());
                continue;
            }
        };
        let (input, output) = (find(model, &m.spec.input)?, find(model, &m.spec.output)?);
        let op = PagOp::new(MultiPoolOp { name: m.spec.name.clone(), module: m.module });
        replace_subgraph(model, &[input], output, format!("pag_multipool.{}", m.spec.name), op)?;
    }
    // The quantized convs outside the blocks just installed (theirs are dead now, and gone
    // once the model is compacted): each with its Q/DQ pairs as one int8 op.
    model.compact().map_err(tract_err("compact"))?;
    let produced: Vec<String> = qconvs.iter().flatten().map(|q| q.activation.clone()).collect();
    for entry in qconvs {
        let q = match entry {
            Ok(q) => q,
            Err(e) => {
                fallbacks.push(e.to_string());
                continue;
            }
        };
        // Read the float tensor itself (its Q/DQ pair then dies), unless another int8 op will
        // produce it: then its dequantized form, which that op outputs.
        let source = if produced.contains(&q.input) { &q.input_dequantized } else { &q.input };
        let (Some(input), Some(output)) = (outlet_of(model, source), outlet_of(model, &q.output)) else {
            continue;
        };
        let op = PagOp::new(QConvOp { name: q.name.clone(), conv: q.conv });
        replace_subgraph(model, &[input], output, format!("pag_qconv.{}", q.name), op)?;
    }
    for p in pointwise {
        let (Some(input), Some(output)) = (outlet_of(model, &p.input), outlet_of(model, &p.output)) else {
            continue;
        };
        let op = PagOp::new(ConvOp { conv: p.conv, relu: p.relu });
        replace_subgraph(model, &[input], output, format!("{}.pag_conv", p.name), op)?;
    }
    Ok(fallbacks)
}

/// Fuses each f32 `Add` of a [`ResizeOp`]'s output (read by nothing else) and a tensor of the
/// same shape into that resize (the decoder's upsampled lateral plus the skip connection): the
/// add happens as the resize stores, one pass over the output instead of three. Same bits: the
/// resize's value plus the other operand, as the two ops computed it. Returns how many it fused.
pub(super) fn install_fused_resize_adds(model: &mut TypedModel) -> Result<usize> {
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    let outputs = model.output_outlets().map_err(tract_err("read the outputs of"))?.to_vec();
    let candidates: Vec<(usize, OutletId, OutletId, ResizeOp)> = model
        .nodes()
        .iter()
        .filter_map(|n| {
            let add = n.op_as::<TypedBinOp>()?;
            if add.0.name() != "Add" || n.inputs.len() != 2 {
                return None;
            }
            let out_shape = n.outputs.first()?.fact.shape.as_concrete()?.to_vec();
            (0..2).find_map(|i| {
                let (r, other) = (n.inputs[i], n.inputs[1 - i]);
                let resize = model.node(r.node).op_as::<PagOp<ResizeOp>>()?;
                let other_fact = model.outlet_fact(other).ok()?;
                let fits = !resize.0.add
                    && model.outlet_successors(r).len() == 1
                    && !outputs.contains(&r)
                    && other_fact.datum_type == f32::datum_type()
                    && other_fact.shape.as_concrete()? == out_shape.as_slice()
                    && model.outlet_fact(r).ok()?.shape.as_concrete()? == out_shape.as_slice();
                let input = *model.node(r.node).inputs.first()?;
                fits.then(|| (n.id, input, other, ResizeOp { add: true, ..resize.0.as_ref().clone() }))
            })
        })
        .collect();
    for (id, input, other, op) in &candidates {
        let name = model.node(*id).name.clone();
        replace_subgraph(
            model,
            &[*input, *other],
            OutletId::new(*id, 0),
            format!("{name}.pag_resize_add"),
            PagOp::new(op.clone()),
        )?;
    }
    Ok(candidates.len())
}

/// Lets each gated block of the final `model` work in its input's tensor when that tensor comes
/// from one of pagrt's ops (each returns its [`crate::ops::OutputSlot`]'s tensor, or its own
/// input passed on in place) and the block is its only reader, not a model output: then the
/// plan's reference and the producer's slot are its only holders at run time, and the block
/// need not copy it (a gated block chain used to copy its input at every block).
pub(super) fn mark_borrowable_inputs(model: &TypedModel) -> Result<()> {
    let outputs = model.output_outlets().map_err(tract_err("read the outputs of"))?;
    for node in model.nodes() {
        let Some(op) = node.op_as::<PagOp<GatedBlockOp>>() else { continue };
        let Some(&input) = node.inputs.first() else { continue };
        let p = model.node(input.node);
        let ours = p.op_is::<PagOp<GatedBlockOp>>()
            || p.op_is::<PagOp<ConvOp>>()
            || p.op_is::<PagOp<QConvOp>>()
            || p.op_is::<PagOp<ResizeOp>>()
            || p.op_is::<PagOp<L2NormOp>>()
            || p.op_is::<PagOp<MultiPoolOp>>();
        let only_reader = model.outlet_successors(input).len() == 1 && !outputs.contains(&input);
        op.0.set_input_borrowable(ours && only_reader);
    }
    Ok(())
}

/// Wire `op` on `inputs` and make it produce what `output` produced; the subgraph it replaces
/// becomes dead and is pruned by the next declutter.
fn replace_subgraph(
    model: &mut TypedModel,
    inputs: &[OutletId],
    output: OutletId,
    name: String,
    op: impl Into<Box<dyn TypedOp>>,
) -> Result<()> {
    let mut patch = TypedModelPatch::default();
    let wired = (|| -> TractResult<()> {
        let taps = inputs.iter().map(|&i| patch.tap_model(model, i)).collect::<TractResult<TVec<_>>>()?;
        let y = patch.wire_node(name, op, &taps)?[0];
        patch.shunt_outside(model, output, y)?;
        patch.apply(model)
    })();
    wired.map_err(tract_err("install pagrt ops in"))
}

/// The output size `(oh, ow)` of a `Resize` node [`ResizeOp`] computes exactly: linear,
/// `half_pixel` (or `pytorch_half_pixel` with outputs longer than 1), f32 `[N, C, h, w]` in with
/// a concrete shape, only the last two axes resized, and any constant scales equal to the size
/// ratios.
fn fast_resize_size(model: &TypedModel, node: &TypedNode) -> Option<(usize, usize)> {
    use tract_onnx::tract_core::ops::nn::resize::{CoordTransformer, Interpolator, Resize};
    let op = node.op_as::<Resize>()?;
    let input = model.outlet_fact(*node.inputs.first()?).ok()?;
    let output = node.outputs.first()?.fact.shape.as_concrete()?.to_vec();
    let in_shape = input.shape.as_concrete()?;
    if input.datum_type != f32::datum_type()
        || in_shape.len() != 4
        || output.len() != 4
        || in_shape[..2] != output[..2]
        || in_shape[2] == 0
        || in_shape[3] == 0
        || !matches!(op.interpolator, Interpolator::Linear)
    {
        return None;
    }
    let (oh, ow) = (output[2], output[3]);
    match op.coord_transformer {
        CoordTransformer::HalfPixel => (),
        CoordTransformer::PytorchHalfPixel if oh > 1 && ow > 1 => (),
        _ => return None,
    }
    if let Some(ix) = op.optional_scales_input {
        if let Some(scales) = node.inputs.get(ix).and_then(|o| model.outlet_fact(*o).ok()?.konst.clone()) {
            if scales.len() == 4 {
                let scales = scales.cast_to::<f32>().ok()?;
                let s = scales.to_plain_array_view::<f32>().ok()?;
                let want = [1.0, 1.0, oh as f32 / in_shape[2] as f32, ow as f32 / in_shape[3] as f32];
                if s.iter().zip(want).any(|(a, b)| *a != b) {
                    return None;
                }
            }
        }
    }
    Some((oh, ow))
}

/// Replaces every `Resize` node of `model` that [`ResizeOp`] computes exactly (see
/// [`fast_resize_size`]) by that op; returns how many it replaced.
pub(super) fn install_fast_resizes(model: &mut TypedModel) -> Result<usize> {
    let candidates: Vec<(usize, usize, usize)> =
        model.nodes().iter().filter_map(|n| fast_resize_size(model, n).map(|(oh, ow)| (n.id, oh, ow))).collect();
    for &(id, oh, ow) in &candidates {
        let node = model.node(id);
        let (input, name) = (node.inputs[0], node.name.clone());
        replace_subgraph(
            model,
            &[input],
            OutletId::new(id, 0),
            format!("{name}.pag_resize"),
            PagOp::new(ResizeOp { oh, ow, channels: None, add: false }),
        )?;
    }
    Ok(candidates.len())
}

/// Moves each channel `Slice` (batch 1, axis 1) of a [`ResizeOp`]'s output before the resize:
/// one `ResizeOp` of just those channels of the small input replaces the slice, which copied
/// channels of the large output (the heads' full-resolution maps: 0.15 ms a frame on the shipped
/// model). The full resize disappears once nothing else reads it. Returns how many it moved.
pub(super) fn install_sliced_resizes(model: &mut TypedModel) -> Result<usize> {
    use tract_onnx::tract_core::ops::array::Slice;
    let candidates: Vec<(usize, OutletId, ResizeOp)> = model
        .nodes()
        .iter()
        .filter_map(|n| {
            let slice = n.op_as::<Slice>()?;
            let source = model.node(n.inputs.first()?.node);
            let resize = source.op_as::<PagOp<ResizeOp>>()?;
            let input = *source.inputs.first()?;
            let shape = model.outlet_fact(input).ok()?.shape.as_concrete()?.to_vec();
            let (c0, c1) = (slice.start.to_i64().ok()? as usize, slice.end.to_i64().ok()? as usize);
            let fits = slice.axis == 1 && shape.len() == 4 && shape[0] == 1 && c0 < c1 && c1 <= shape[1];
            (fits && resize.0.channels.is_none() && !resize.0.add).then(|| {
                (n.id, input, ResizeOp { oh: resize.0.oh, ow: resize.0.ow, channels: Some((c0, c1)), add: false })
            })
        })
        .collect();
    for (id, input, op) in &candidates {
        let name = format!("{}.pag_resize", model.node(*id).name);
        replace_subgraph(model, &[*input], OutletId::new(*id, 0), name, PagOp::new(op.clone()))?;
    }
    Ok(candidates.len())
}

/// Replaces tract's ungated spatial convs (f32 NCHW, batch 1, groups 1, k×k with k > 1, stride 1,
/// ≥ 16 input channels, equal dilations, explicit padding, constant weights and bias) with [`ConvOp`], fusing
/// a following ReLU. Returns how many were replaced.
pub(super) fn install_fast_convs(model: &mut TypedModel) -> Result<usize> {
    let candidates: Vec<(usize, PerforatedConv, Option<usize>)> =
        model.nodes().iter().filter_map(|n| fast_conv(model, n).map(|(c, relu)| (n.id, c, relu))).collect();
    for (id, conv, relu) in &candidates {
        let node = model.node(*id);
        let (input, name) = (node.inputs[0], node.name.clone());
        let output = OutletId::new(relu.unwrap_or(*id), 0);
        let op = PagOp::new(ConvOp { conv: conv.clone(), relu: relu.is_some() });
        replace_subgraph(model, &[input], output, format!("{name}.pag_conv"), op)?;
    }
    Ok(candidates.len())
}

/// The [`PerforatedConv`] computing `node` when it is a conv [`ConvOp`] supports, with the id
/// of a ReLU (`Max` with a constant 0) that is its only consumer.
fn fast_conv(model: &TypedModel, node: &TypedNode) -> Option<(PerforatedConv, Option<usize>)> {
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
    use tract_onnx::tract_core::ops::nn::DataFormat;
    let op = node.op_as::<Conv>()?;
    let spec = &op.pool_spec;
    if op.q_params.is_some()
        || op.group != 1
        || op.kernel_fmt != KernelFormat::OIHW
        || spec.data_format != DataFormat::NCHW
        || spec.kernel_shape.len() != 2
        || spec.kernel_shape.iter().all(|&k| k == 1)
        || node.inputs.len() != 3
    {
        return None;
    }
    let equal = |v: &Option<TVec<usize>>| match v {
        None => Some(1),
        Some(v) if v.len() == 2 && v[0] == v[1] => Some(v[0]),
        _ => None,
    };
    let (stride, dilation) = (equal(&spec.strides)?, equal(&spec.dilations)?);
    if stride > 2 {
        return None;
    }
    let padding = match &spec.padding {
        PaddingSpec::Valid => [0; 4],
        PaddingSpec::Explicit(b, a) | PaddingSpec::ExplicitOnnxPool(b, a, false) if b.len() == 2 && a.len() == 2 => {
            [b[0], b[1], a[0], a[1]]
        }
        _ => return None,
    };
    let fact = |i: usize| model.outlet_fact(node.inputs[i]).ok();
    let x = fact(0)?;
    let shape = x.shape.as_concrete()?;
    let kernel = fact(1)?.konst.clone()?;
    let bias = fact(2)?.konst.clone()?;
    if x.datum_type != f32::datum_type()
        || shape.len() != 4
        || shape[0] != 1
        || kernel.datum_type() != f32::datum_type()
    {
        return None;
    }
    let k = kernel.shape();
    if k.len() != 4 || k[1] != shape[1] || bias.datum_type() != f32::datum_type() {
        return None;
    }
    let floats = |t: &Tensor| t.to_plain_array_view::<f32>().ok().map(|v| v.iter().copied().collect::<Vec<f32>>());
    let bias = floats(&bias)?;
    let bias: Vec<f32> = match bias.len() {
        1 => vec![bias[0]; k[0]],
        n if n == k[0] => bias.to_vec(),
        _ => return None,
    };
    let conv = PerforatedConv::new(
        &floats(&kernel)?,
        [k[0], k[1], k[2], k[3]],
        Some(&bias),
        stride,
        dilation,
        padding,
        (shape[2], shape[3]),
    )
    .ok()?;
    // Measured on the shipped model (`pag bench --profile`): inputs of few channels (a short GEMM
    // depth) run faster in tract's own conv than on im2col + GEMM (stem 3→24 s2: 1.40 ms vs
    // 0.70 ms in tract), but not than on the direct stride-2 kernel where the CPU has one
    // (stem 3→16 3×3 s2: 0.35 ms in tract, 0.15 ms direct; AMD EPYC Zen 5, AVX-512).
    if k[1] < 16 && !conv.is_direct() {
        return None;
    }
    let want = node.outputs[0].fact.shape.as_concrete()?;
    let g = conv.geometry();
    if want != [1, k[0], g.out_height(), g.out_width()] {
        return None;
    }
    let relu = (|| {
        let [succ] = &node.outputs[0].successors[..] else { return None };
        let next = model.node(succ.node);
        let other = next.inputs.iter().find(|o| o.node != node.id)?;
        let zero = model
            .outlet_fact(*other)
            .ok()?
            .konst
            .as_ref()
            .is_some_and(|c| c.len() == 1 && c.cast_to_scalar::<f32>().is_ok_and(|v| v == 0.0));
        let is_max = next.op_as::<TypedBinOp>().is_some_and(|b| b.0.name() == "Max");
        (is_max && zero && next.inputs.len() == 2).then_some(next.id)
    })();
    Some((conv, relu))
}

/// Replaces the decluttered form of a channel-wise L2 normalisation,
/// `Mul(x, Rsqrt(Add(Reduce<Sum, axis 1>(Square(x)), ε)))` on a 4-D f32 `x`, with one
/// [`L2NormOp`]. Returns how many were replaced.
pub(super) fn install_fast_l2norms(model: &mut TypedModel) -> Result<usize> {
    let candidates: Vec<(usize, OutletId, f32)> =
        model.nodes().iter().filter_map(|n| fast_l2norm(model, n).map(|(x, eps)| (n.id, x, eps))).collect();
    for &(id, x, eps) in &candidates {
        let name = model.node(id).name.clone();
        replace_subgraph(
            model,
            &[x],
            OutletId::new(id, 0),
            format!("{name}.pag_l2norm"),
            PagOp::new(L2NormOp { eps }),
        )?;
    }
    Ok(candidates.len())
}

/// `(x, ε)` when `node` is the final multiply of a channel-wise L2 normalisation of `x`.
fn fast_l2norm(model: &TypedModel, node: &TypedNode) -> Option<(OutletId, f32)> {
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
    use tract_onnx::tract_core::ops::nn::{Reduce, Reducer};
    let is_bin = |n: &TypedNode, name: &str| n.op_as::<TypedBinOp>().is_some_and(|b| b.0.name() == name);
    let is_ew = |n: &TypedNode, name: &str| n.op_as::<ElementWiseOp>().is_some_and(|e| e.0.name() == name);
    if !is_bin(node, "Mul") || node.inputs.len() != 2 {
        return None;
    }
    for (xi, ri) in [(0, 1), (1, 0)] {
        let (x, r) = (node.inputs[xi], node.inputs[ri]);
        let rsqrt = model.node(r.node);
        if !is_ew(rsqrt, "Rsqrt") {
            continue;
        }
        let add = model.node(rsqrt.inputs[0].node);
        if !is_bin(add, "Add") || add.inputs.len() != 2 {
            continue;
        }
        let Some((reduce_in, eps)) = (0..2).find_map(|i| {
            let k = model.outlet_fact(add.inputs[1 - i]).ok()?.konst.clone()?;
            (k.len() == 1).then_some(())?;
            Some((add.inputs[i], k.cast_to_scalar::<f32>().ok()?))
        }) else {
            continue;
        };
        let reduce = model.node(reduce_in.node);
        let sums_channels =
            reduce.op_as::<Reduce>().is_some_and(|r| matches!(r.reducer, Reducer::Sum) && r.axes[..] == [1]);
        if !sums_channels {
            continue;
        }
        let square = model.node(reduce.inputs[0].node);
        if !is_ew(square, "Square") || square.inputs[0] != x {
            continue;
        }
        let fact = model.outlet_fact(x).ok()?;
        if fact.datum_type != f32::datum_type() || fact.rank() != 4 || !eps.is_finite() || eps < 0.0 {
            return None;
        }
        return Some((x, eps));
    }
    None
}
