//! `pixelcnn inspect`: what a model costs on a device.

use pixelcnn_runtime::format;
use pixelcnn_runtime::kernels::{cpu, FloatKernel, Int8Kernel, Operation};
use pixelcnn_runtime::{Model, Precision, StateLayout, Variant};

use crate::cli::InspectArgs;
use crate::model_file;

pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    if args.kernels {
        return kernels(args);
    }
    let file = model_file::load(&args.model)?;
    if let Some(g) = &file.graph {
        return graph(args, &file, g);
    }
    let model = file.model()?;
    let arch = *model.arch();
    let state = 4 * model.state_words();
    // Scratch is per pixel; the rest (rings, links, windows, biases) are caches.
    let scratch = match model {
        Model::F32(_) | Model::F16(_) => StateLayout::checked(&arch).map_or(0, |l| 4 * l.scratch),
        Model::Int8(_) => 4 * pixelcnn_runtime::quant::QuantStateLayout::of(&arch).scratch_words,
    };
    let notes = format::notes(file.pcnn_bytes()).unwrap_or("");
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "model": file.path.display().to_string(),
                "origin": file.origin,
                "precision": model.precision().name(),
                "variant": match arch.variant { Variant::Gated => "gated", Variant::Plain => "plain" },
                "height": arch.height, "width": arch.width, "levels": arch.levels,
                "classes": arch.classes, "class_names": file.class_names,
                "channels": arch.channels, "blocks": arch.blocks,
                "first_kernel": arch.first_kernel, "kernel": arch.kernel, "head": arch.head,
                "parameters": arch.param_count(),
                "file_bytes": file.file_len,
                "flash_bytes": file.pcnn_bytes().len(),
                "weight_bytes": model.weight_bytes(),
                "ram_bytes": state,
                "ram_cache_bytes": state - scratch,
                "ram_scratch_bytes": scratch,
                "macs_per_pixel": arch.macs_per_pixel(),
            })
        )?;
        return Ok(());
    }
    say!("model        {} ({})", file.path.display(), file.origin)?;
    say!(
        "network      {} PixelCNN, {}x{} pixels, {} levels, {}",
        match arch.variant {
            Variant::Gated => "gated",
            Variant::Plain => "plain",
        },
        arch.height,
        arch.width,
        arch.levels,
        match arch.classes {
            0 => "unconditional".into(),
            n if file.class_names.is_empty() => format!("{n} classes"),
            n => format!(
                "{n} classes: {}",
                (0..n).map(|c| file.describe_class(c)).collect::<Vec<_>>().join(", ")
            ),
        }
    )?;
    say!(
        "layers       {}x{} mask A, then {} blocks of {}x{}; {} channels, head {}",
        arch.first_kernel,
        arch.first_kernel,
        arch.blocks,
        arch.kernel,
        arch.kernel,
        arch.channels,
        arch.head
    )?;
    say!("parameters   {}", arch.param_count())?;
    say!(
        "flash        {} bytes as .pcnn {} ({} of weights)",
        file.pcnn_bytes().len(),
        model.precision(),
        model.weight_bytes()
    )?;
    say!("RAM          {state} bytes: {} of caches, {scratch} of scratch", state - scratch)?;
    say!("MACs/pixel   {}", arch.macs_per_pixel())?;
    if model.precision() == Precision::Int8 && !notes.is_empty() {
        say!("notes")?;
        for line in notes.lines() {
            say!("  {line}")?;
        }
    }
    Ok(())
}

/// `inspect --kernels`: the CPU's features, the kernels that can run, and
/// what runs each operation under the chosen ones.
fn kernels(args: &InspectArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.kernel {
        super::kernel_choice::prefer_any(name)?;
    }
    let int8 = Int8Kernel::best();
    let float = FloatKernel::best();
    let resolved = int8.resolve().expect("the chosen kernel runs here");
    let features: Vec<(&str, bool)> = cpu::report().iter().map(|&(n, f)| (n, f())).collect();
    let int8_ops = resolved.operations();
    let float_ops = float.operations();
    if args.json {
        let ops = |ops: &[Operation]| -> Vec<serde_json::Value> {
            ops.iter().map(|o| serde_json::json!({"operation": o.name, "runs": o.runs})).collect()
        };
        say!(
            "{}",
            serde_json::json!({
                "arch": std::env::consts::ARCH,
                "features": features.iter().map(|&(n, on)| (n.to_string(), on.into())).collect::<serde_json::Map<_, _>>(),
                "int8_kernels": Int8Kernel::available().map(|k| k.name()).collect::<Vec<_>>(),
                "float_kernels": FloatKernel::available().map(|k| k.name()).collect::<Vec<_>>(),
                "int8": {"kernel": int8.name(), "operations": ops(&int8_ops)},
                "float": {"kernel": float.name(), "operations": ops(&float_ops)},
            })
        )?;
        return Ok(());
    }
    let list = |on: bool| -> String {
        let names: Vec<&str> = features.iter().filter(|f| f.1 == on).map(|f| f.0).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    };
    say!("cpu          {} with {}; without {}", std::env::consts::ARCH, list(true), list(false))?;
    let names = |it: &mut dyn Iterator<Item = &'static str>| it.collect::<Vec<_>>().join(", ");
    say!("int8         can run {}", names(&mut Int8Kernel::available().map(|k| k.name())))?;
    say!("float        can run {}", names(&mut FloatKernel::available().map(|k| k.name())))?;
    say!("")?;
    say!("int8 kernel {}:", int8.name())?;
    for o in &int8_ops {
        say!("  {:<48} {}", o.name, o.runs)?;
    }
    say!("float kernel {}:", float.name())?;
    for o in &float_ops {
        say!("  {:<48} {}", o.name, o.runs)?;
    }
    Ok(())
}

/// `inspect` of a foreign ONNX graph: what the importer recognised, the
/// layers, each node's mode and cached rows, the work per pixel.
fn graph(
    args: &InspectArgs,
    file: &model_file::ModelFile,
    g: &model_file::GraphModel,
) -> anyhow::Result<()> {
    use pixelcnn_runtime::graph::plan::Mode;
    let graph = &g.graph;
    let nodes: Vec<serde_json::Value> = graph
        .nodes
        .iter()
        .zip(&g.plan.nodes)
        .map(|(n, p)| {
            let mut v = serde_json::json!({
                "name": n.name,
                "op": n.op.kind(),
                "channels": n.shape.channels,
                "height": n.shape.height,
                "width": n.shape.width,
                "mode": match p.mode { Mode::Row => "row", Mode::Position => "position" },
                "cached_rows": p.ring_rows,
            });
            if let pixelcnn_runtime::graph::Op::Conv { taps, .. } = &n.op {
                v["taps"] =
                    serde_json::json!(taps.iter().map(|t| [t.dy, t.dx]).collect::<Vec<_>>());
            }
            v
        })
        .collect();
    let state_bytes = 4 * g.plan.state_len;
    let full_bytes: usize =
        graph.nodes.iter().map(|n| 4 * n.shape.positions() * n.shape.channels).sum();
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "model": file.path.display().to_string(),
                "origin": file.origin,
                "precision": "f32",
                "height": graph.height, "width": graph.width, "levels": graph.levels,
                "classes": graph.classes,
                "input": graph.encoding.name(),
                "output": match graph.output_kind {
                    pixelcnn_runtime::graph::Output::Logits => "logits",
                    pixelcnn_runtime::graph::Output::Bernoulli => "bernoulli",
                },
                "nodes": nodes,
                "macs_per_pixel": graph.macs_per_pixel(),
                "ram_bytes": state_bytes,
                "full_pass_activation_bytes": full_bytes,
                "notes": g.notes,
            })
        )?;
        return Ok(());
    }
    say!("model        {} ({})", file.path.display(), file.origin)?;
    say!(
        "network      {}x{} pixels, {} levels, {}; input {} ({} per pixel), output {}",
        graph.width,
        graph.height,
        graph.levels,
        if graph.classes > 0 {
            format!("{} classes", graph.classes)
        } else {
            "unconditional".into()
        },
        graph.encoding.name(),
        graph.encoding.channels(),
        match graph.output_kind {
            pixelcnn_runtime::graph::Output::Logits => "logits",
            pixelcnn_runtime::graph::Output::Bernoulli => "one Bernoulli logit",
        }
    )?;
    let convs = graph.nodes.iter().filter(|n| n.op.kind() == "conv").count();
    say!("layers       {} nodes, {convs} convolutions", graph.nodes.len())?;
    say!("MACs/pixel   {}", graph.macs_per_pixel())?;
    say!(
        "RAM          {state_bytes} bytes of cached rows ({:.1}% of a full pass's {full_bytes} bytes of activations)",
        100.0 * state_bytes as f64 / full_bytes.max(1) as f64
    )?;
    say!("nodes        name, operation, channels, mode, cached rows (conv: taps as (dy, dx))")?;
    for (n, p) in graph.nodes.iter().zip(&g.plan.nodes) {
        let taps = match &n.op {
            pixelcnn_runtime::graph::Op::Conv { taps, .. } => format!(
                "  taps {}",
                taps.iter().map(|t| format!("({},{})", t.dy, t.dx)).collect::<Vec<_>>().join(" ")
            ),
            _ => String::new(),
        };
        say!(
            "  {:<40} {:<8} {:>4}  {:<8} {}{taps}",
            n.name,
            n.op.kind(),
            n.shape.channels,
            match p.mode {
                Mode::Row => "row",
                Mode::Position => "position",
            },
            p.ring_rows
        )?;
    }
    say!("notes")?;
    for line in &g.notes {
        say!("  {line}")?;
    }
    Ok(())
}
