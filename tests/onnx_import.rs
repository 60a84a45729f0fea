//! ONNX import: what the exporter writes comes back bit for bit, tract agrees
//! with the reference executor on it, and broken files get clear errors.

// The runtime tests' helpers: architectures, random weights and images.
#[path = "../runtime/tests/common/mod.rs"]
mod common;

use common::*;
use pixelcnn_runtime::onnx::{import_bytes, to_onnx_bytes, verify_with_tract, ImportError};
use pixelcnn_runtime::{Arch, Weights};
use prost::Message;
use tract_onnx::pb;

fn archs() -> Vec<Arch> {
    let g = Arch { levels: 4, classes: 3, channels: 4, head: 5, ..gated(6, 7, 5, 3, 2) };
    vec![
        g,
        Arch { classes: 0, levels: 2, ..g },
        plain(g),
        Arch { classes: 0, ..plain(g) },
        Arch { kernel: 1, ..g },
    ]
}

#[test]
fn export_then_import_is_the_identity_and_tract_agrees() {
    for (seed, arch) in archs().into_iter().enumerate() {
        let params = params(&arch, seed as u64);
        let bytes = to_onnx_bytes(&Weights::new(arch, &params).unwrap());
        let imported = import_bytes(&bytes).unwrap();
        assert_eq!(imported.arch, arch);
        assert_eq!(imported.params, params, "{arch:?}");
        let worst = verify_with_tract(&bytes, &imported).unwrap();
        assert!(worst <= 1e-4, "{arch:?}: tract differs by {worst}");
    }
}

fn edit(bytes: &[u8], f: impl FnOnce(&mut pb::ModelProto)) -> Vec<u8> {
    let mut model = pb::ModelProto::decode(bytes).unwrap();
    f(&mut model);
    model.encode_to_vec()
}

fn error(bytes: &[u8]) -> String {
    import_bytes(bytes).unwrap_err().to_string()
}

#[test]
fn broken_files_are_refused_with_the_reason() {
    let arch = archs()[0];
    let params = params(&arch, 1);
    let good = to_onnx_bytes(&Weights::new(arch, &params).unwrap());

    assert!(matches!(
        import_bytes(b"definitely not protobuf \xff\xff"),
        Err(ImportError::Decode(_))
    ));
    assert!(import_bytes(&good[..good.len() / 2]).is_err(), "truncated file accepted");

    let no_meta = edit(&good, |m| m.metadata_props.clear());
    assert!(error(&no_meta).contains("no `pixelcnn` entry"), "{}", error(&no_meta));

    let bad_meta = edit(&good, |m| m.metadata_props[0].value = "{\"version\": 1}".into());
    assert!(error(&bad_meta).contains("`variant`"), "{}", error(&bad_meta));

    let missing = edit(&good, |m| {
        m.graph.as_mut().unwrap().initializer.retain(|t| t.name != "layer1.link.weight")
    });
    assert_eq!(error(&missing), "tensor `layer1.link.weight`: missing");

    // A nonzero mask-A centre tap would let pixel i see itself.
    let leak = edit(&good, |m| {
        let t = m
            .graph
            .as_mut()
            .unwrap()
            .initializer
            .iter_mut()
            .find(|t| t.name == "layer0.h.weight")
            .unwrap();
        let r = 2; // first kernel 5
        t.raw_data[4 * r..4 * r + 4].copy_from_slice(&1.0f32.to_le_bytes());
    });
    assert!(error(&leak).contains("masked tap is not zero"), "{}", error(&leak));

    let nan = edit(&good, |m| {
        let t = m
            .graph
            .as_mut()
            .unwrap()
            .initializer
            .iter_mut()
            .find(|t| t.name == "head2.bias")
            .unwrap();
        t.raw_data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert!(error(&nan).contains("NaN or infinite"), "{}", error(&nan));
    // As a command-line tool prints it (the whole chain): said once.
    let chain = format!("{:#}", anyhow::Error::from(import_bytes(&nan).unwrap_err()));
    assert_eq!(chain.matches("NaN or infinite").count(), 1, "{chain}");

    let reshaped = edit(&good, |m| {
        let t = m
            .graph
            .as_mut()
            .unwrap()
            .initializer
            .iter_mut()
            .find(|t| t.name == "layer0.v.bias")
            .unwrap();
        t.dims = vec![1, 8];
    });
    assert!(error(&reshaped).contains("shape [1, 8], expected [8]"), "{}", error(&reshaped));

    let renamed = edit(&good, |m| m.graph.as_mut().unwrap().output[0].name = "probs".into());
    assert!(error(&renamed).contains("expected [\"logits\"]"), "{}", error(&renamed));
}

#[test]
fn a_graph_that_differs_from_the_contract_is_refused() {
    let arch = archs()[0];
    let bytes = to_onnx_bytes(&Weights::new(arch, &params(&arch, 5)).unwrap());
    let tanh_to_relu = edit(&bytes, |m| {
        for node in &mut m.graph.as_mut().unwrap().node {
            if node.op_type == "Tanh" {
                node.op_type = "Relu".into();
            }
        }
    });
    let err = import_bytes(&tanh_to_relu).unwrap_err().to_string();
    assert!(err.contains("is Relu") && err.contains("the export contract has Tanh"), "{err}");
    assert!(err.contains("(their operators differ)"), "{err}");
    let dropped = edit(&bytes, |m| {
        m.graph.as_mut().unwrap().node.pop();
    });
    let err = import_bytes(&dropped).unwrap_err().to_string();
    assert!(err.contains("nodes, the export contract"), "{err}");
    let attribute = edit(&bytes, |m| {
        let node = m.graph.as_mut().unwrap().node.iter_mut().find(|n| !n.attribute.is_empty());
        let attr = &mut node.unwrap().attribute[0];
        attr.ints.iter_mut().for_each(|v| *v += 1);
        attr.i += 1;
    });
    let err = import_bytes(&attribute).unwrap_err().to_string();
    assert!(err.contains("attributes or names differ"), "{err}");
}

#[test]
fn int8_ranges_stored_at_export_come_back_and_bad_ones_are_refused() {
    use pixelcnn_runtime::onnx::to_onnx_bytes_calibrated;
    use pixelcnn_runtime::quant::calibrate::Calibration;
    let arch = archs()[0];
    let weights_params = params(&arch, 4);
    let weights = Weights::new(arch, &weights_params).unwrap();
    let images: Vec<_> = (0..3).map(|s| (random_image(&arch, s), label(&arch, s))).collect();
    let cal = Calibration::measure(&weights, &images, "3 random images".into(), || {}).unwrap();
    let good = to_onnx_bytes_calibrated(&weights, &cal);
    assert_eq!(import_bytes(&good).unwrap().calibration, Some(cal.clone()));
    assert_eq!(import_bytes(&to_onnx_bytes(&weights)).unwrap().calibration, None);

    let with_value = |value: String| {
        edit(&good, |m| {
            m.metadata_props.iter_mut().find(|p| p.key.ends_with("calibration")).unwrap().value =
                value
        })
    };
    let json = |v: &str, l: &str| {
        format!(
            r#"{{"vertical_pre": {v}, "layer_out": {l}, "head_hidden": 1.0, "images": 3, "source": ""}}"#
        )
    };
    let ok_list = format!("{:?}", cal.layer_out);
    let short = format!("{:?}", &cal.layer_out[1..]);
    let negative = ok_list.replacen(|c: char| c.is_ascii_digit(), "-1", 1);
    for (bad, why) in [
        ("not json".to_string(), "not JSON"),
        (json(&short, &ok_list), "ranges, the model has"),
        (json(&ok_list, "\"x\""), "`layer_out` is not a list"),
        (json(&negative, &ok_list), "not a finite range of 0 or more"),
    ] {
        let e = error(&with_value(bad));
        assert!(e.contains("int8 calibration") && e.contains(why), "{e}");
    }
}
