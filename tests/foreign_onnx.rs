//! PixelCNNs trained in PyTorch and Keras (`tests/fixtures/foreign/`, made
//! by `scripts/foreign/make_fixtures.py`): imported from their ONNX files,
//! compiled into incremental schedules, and checked against tract's full
//! pass of the same files. No torch or TensorFlow at test time.

use pixelcnn_runtime::graph::plan::{Mode, Plan};
use pixelcnn_runtime::graph::{InputKind, Output};
use pixelcnn_runtime::onnx::{import_graph, verify_graph_with_tract, ForeignTract, ImportError};
use rand_core::RngCore;

const DIR: &str = "tests/fixtures/foreign";

/// (file, --input, K, classes, output kind)
const FIXTURES: [(&str, Option<InputKind>, usize, usize, Output); 6] = [
    ("torch_reduced_skips", Some(InputKind::Unit), 2, 0, Output::Bernoulli),
    ("torch_embed_classes", None, 4, 10, Output::Logits),
    ("torch_dilated_elu", None, 256, 0, Output::Logits),
    ("torch_plain_bn", Some(InputKind::Unit), 256, 0, Output::Logits),
    ("keras_gated_nhwc", Some(InputKind::Unit), 2, 0, Output::Logits),
    ("keras_gated_nhwc_approx", Some(InputKind::Unit), 2, 0, Output::Logits),
];

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}.onnx")).unwrap()
}

#[test]
fn every_fixture_compiles_and_equals_tracts_full_pass_at_every_pixel() {
    for (name, input, k, classes, kind) in FIXTURES {
        let b = bytes(name);
        let g = import_graph(&b, input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (g.graph.levels, g.graph.classes, g.graph.output_kind),
            (k, classes, kind),
            "{name}"
        );
        let plan = Plan::compile(&g.graph).unwrap();
        for seed in 0..2 {
            let worst = verify_graph_with_tract(&b, &g, &plan, seed).unwrap();
            assert!(worst <= 1e-4, "{name}: differs from tract by {worst}");
        }
        // Vertical stacks run a row at a time: every gated fixture has
        // row-mode convolutions (the plain PixelCNN has none: each of its
        // layers reads the current row), and no node keeps the whole image.
        let rows = plan.nodes.iter().filter(|p| p.mode == Mode::Row).count();
        assert_eq!(rows > 0, name != "torch_plain_bn", "{name}: {rows} row-mode nodes");
        assert!(plan.nodes.iter().all(|p| p.ring_rows < g.graph.height), "{name}");
    }
}

#[test]
fn the_fixtures_are_causal_under_perturbation_in_tract() {
    // The importer proves causality from the graph; tract confirms it on
    // the files: changing a pixel and every later one leaves the logits of
    // that pixel as they were.
    for (name, input, _, _, _) in FIXTURES {
        let b = bytes(name);
        let g = import_graph(&b, input).unwrap();
        let tract = ForeignTract::new(&b, &g.io, &g.graph).unwrap();
        let levels = g.graph.levels as u32;
        let mut rng = pixelcnn_runtime::rng::from_seed(7);
        let image: Vec<u8> =
            (0..g.graph.pixels()).map(|_| (rng.next_u32() % levels) as u8).collect();
        let class = (g.graph.classes > 0).then_some(1);
        let base = tract.run(&image, class).unwrap();
        let k = g.graph.output_channels();
        let w = g.graph.width;
        for p in [0, 1, 27, 28, 29, 400, 783] {
            let at_p = tract.pixel_outputs(&base, p, k, w).unwrap();
            let mut later = image.clone();
            for v in &mut later[p..] {
                *v = ((u32::from(*v) + 1 + rng.next_u32() % (levels - 1)) % levels) as u8;
            }
            let out = tract.run(&later, class).unwrap();
            let moved = tract.pixel_outputs(&out, p, k, w).unwrap();
            if name.ends_with("_approx") {
                // Its masked taps are only nearly zero: the file leaks a
                // little, which re-masking removes.
                for (a, b) in moved.iter().zip(&at_p) {
                    assert!((a - b).abs() < 1e-4, "{name}: pixel {p}: {moved:?} vs {at_p:?}");
                }
            } else {
                assert_eq!(moved, at_p, "{name}: pixel {p} sees later pixels");
            }
            // And it sees its left neighbour (or the pixel above, in the
            // first column).
            let seen = if p % w > 0 { Some(p - 1) } else { p.checked_sub(w) };
            if let Some(q) = seen {
                let mut before = image.clone();
                before[q] = ((u32::from(before[q]) + 1) % levels) as u8;
                let out = tract.run(&before, class).unwrap();
                assert_ne!(
                    tract.pixel_outputs(&out, p, k, w).unwrap(),
                    at_p,
                    "{name}: pixel {p} is blind to pixel {q}"
                );
            }
        }
    }
}

#[test]
fn a_float_input_without_input_kind_is_refused_naming_the_option() {
    let err = import_graph(&bytes("torch_reduced_skips"), None).unwrap_err();
    assert!(matches!(err, ImportError::NeedsInput), "{err}");
    assert!(err.to_string().contains("--input unit"), "{err}");
}

#[test]
fn nearly_zero_masked_taps_are_masked_again_and_said() {
    let g = import_graph(&bytes("keras_gated_nhwc_approx"), Some(InputKind::Unit)).unwrap();
    assert!(
        g.notes.iter().any(|n| n.contains("nearly-zero taps") && n.contains("masked again")),
        "{:?}",
        g.notes
    );
    let exact = import_graph(&bytes("keras_gated_nhwc"), Some(InputKind::Unit)).unwrap();
    assert!(!exact.notes.iter().any(|n| n.contains("masked again")));
}

#[test]
fn graphs_outside_the_family_are_refused_naming_the_node_and_the_reason() {
    let refuse = |name: &str| {
        let b = std::fs::read(format!("{DIR}/refuse/{name}.onnx")).unwrap();
        match import_graph(&b, Some(InputKind::Unit)) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => e.to_string(),
        }
    };
    let err = refuse("acausal_mask_b_first");
    assert!(
        err.contains("pixel (0, 0) depend on pixel (0, 0), itself: image -> conv `/a/Conv`"),
        "{err}"
    );
    assert!(err.contains("mask A"), "{err}");
    let err = refuse("unmasked_conv");
    assert!(err.contains("depend on pixel (1, 1), which comes later"), "{err}");
    let err = refuse("strided_upsampled");
    assert!(err.contains("node `/down/Conv`") && err.contains("stride [2, 2]"), "{err}");
    let err = refuse("max_pool");
    assert!(err.contains("node `/MaxPool`") && err.contains("pooling"), "{err}");
    let err = refuse("attention");
    assert!(err.contains("merges or splits the image's rows and columns"), "{err}");
    let err = refuse("grouped_conv");
    assert!(
        err.contains("node `/dw/Conv`") && err.contains("grouped convolution (4 groups)"),
        "{err}"
    );
}

#[test]
fn f16_weights_score_within_a_thousandth_of_f32() {
    use pixelcnn_runtime::graph::exec::{GraphExecutor, Weights};
    use pixelcnn_runtime::sampler;
    for (name, input, _, _, _) in FIXTURES {
        let g = import_graph(&bytes(name), input).unwrap();
        let plan = Plan::compile(&g.graph).unwrap();
        let class = (g.graph.classes > 0).then_some(2);
        let mut rng = pixelcnn_runtime::rng::from_seed(11);
        let mut f32s = GraphExecutor::new(&g.graph, &plan, class).unwrap();
        let mut image = vec![0u8; g.graph.pixels()];
        sampler::generate(&mut f32s, class, 1.0, &mut rng, &mut image).unwrap();
        let full = sampler::log_likelihood(&mut f32s, class, &image).unwrap();
        let mut f16s = GraphExecutor::with_weights(&g.graph, &plan, class, Weights::F16).unwrap();
        let half = sampler::log_likelihood(&mut f16s, class, &image).unwrap();
        assert!(
            (full - half).abs() <= 1e-3 * full.abs().max(1.0),
            "{name}: f32 {full}, f16 {half}"
        );
    }
}
