//! The exporter: runtime-layout parameters to an ONNX graph.

use std::path::Path;

use crate::host::calibrate::Calibration;
use crate::params::{Layer, TensorKind};
use crate::{Variant, Weights};
use prost::Message;
use tract_onnx::pb;

use super::OPSET;

/// Writes `weights` as an ONNX file at `path`, with the int8 activation
/// ranges when given (so int8 at load needs no calibration pass) and the
/// classes' names when the training data named them.
///
/// # Errors
/// The I/O error of writing the file.
pub fn export(
    weights: &Weights<'_>,
    calibration: Option<&Calibration>,
    class_names: &[String],
    path: &Path,
) -> std::io::Result<()> {
    std::fs::write(path, to_onnx_bytes_with(weights, calibration, class_names))
}

/// The ONNX model as bytes.
pub fn to_onnx_bytes(weights: &Weights<'_>) -> Vec<u8> {
    encode(weights, None, &[])
}

/// The ONNX model as bytes, carrying `calibration` in its metadata
/// ([`super::CALIBRATION_KEY`]).
pub fn to_onnx_bytes_calibrated(weights: &Weights<'_>, calibration: &Calibration) -> Vec<u8> {
    encode(weights, Some(calibration), &[])
}

/// The ONNX model as bytes, with the optional calibration and the classes'
/// names ([`super::CLASS_NAMES_KEY`], a JSON array; none when empty).
pub fn to_onnx_bytes_with(
    weights: &Weights<'_>,
    calibration: Option<&Calibration>,
    class_names: &[String],
) -> Vec<u8> {
    encode(weights, calibration, class_names)
}

fn encode(
    weights: &Weights<'_>,
    calibration: Option<&Calibration>,
    class_names: &[String],
) -> Vec<u8> {
    let arch = *weights.arch();
    let mut g = Graph::default();
    let dims = |n: &str| -> Vec<Dim> {
        vec![
            Dim::Param(n.into()),
            Dim::Value(1),
            Dim::Value(arch.height as i64),
            Dim::Value(arch.width as i64),
        ]
    };
    g.inputs.push(value_info("pixels", pb::tensor_proto::DataType::Float, dims("N")));
    if arch.classes > 0 {
        g.inputs.push(value_info(
            "label",
            pb::tensor_proto::DataType::Int64,
            vec![Dim::Param("N".into())],
        ));
    }
    let hidden = match arch.variant {
        Variant::Gated => gated(&mut g, weights),
        Variant::Plain => plain(&mut g, weights),
    };
    let head = weights.head();
    let a = g.op("Relu", &[&hidden], &[]);
    let a = g.conv1x1(
        &a,
        "head1",
        arch.head,
        arch.channels,
        &head,
        TensorKind::Head1Weight,
        TensorKind::Head1Bias,
    );
    let a = g.op("Relu", &[&a], &[]);
    let logits = g.conv1x1(
        &a,
        "head2",
        arch.levels,
        arch.head,
        &head,
        TensorKind::Head2Weight,
        TensorKind::Head2Bias,
    );
    g.nodes.push(node("Identity", &[&logits], &["logits"], vec![]));
    let mut out_dims = dims("N");
    out_dims[1] = Dim::Value(arch.levels as i64);
    g.outputs.push(value_info("logits", pb::tensor_proto::DataType::Float, out_dims));

    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "pixelcnn-edge".into(),
        producer_version: concat!("pixelcnn-runtime ", env!("CARGO_PKG_VERSION")).into(),
        doc_string: "Gated PixelCNN exported by pixelcnn-edge; masks baked into the weights".into(),
        graph: Some(pb::GraphProto {
            name: "pixelcnn".into(),
            node: g.nodes,
            initializer: g.initializers,
            input: g.inputs,
            output: g.outputs,
            ..Default::default()
        }),
        metadata_props: core::iter::once(pb::StringStringEntryProto {
            key: "pixelcnn".into(),
            value: arch.to_json().to_string(),
        })
        .chain(calibration.map(|c| pb::StringStringEntryProto {
            key: super::CALIBRATION_KEY.into(),
            value: super::calibration::to_json(c).to_string(),
        }))
        .chain((!class_names.is_empty()).then(|| pb::StringStringEntryProto {
            key: super::CLASS_NAMES_KEY.into(),
            value: serde_json::Value::from(class_names.to_vec()).to_string(),
        }))
        .collect(),
        ..Default::default()
    };
    model.encode_to_vec()
}

/// Gated stacks; returns the name of the last horizontal output.
fn gated(g: &mut Graph, weights: &Weights<'_>) -> String {
    let arch = *weights.arch();
    let (p, p2) = (arch.channels, 2 * arch.channels);
    let mut v = "pixels".to_string();
    let mut h = "pixels".to_string();
    for l in 0..arch.layers() {
        let layer = weights.layer(l);
        let (r, k, cin) = (arch.radius_of(l), arch.kernel_of(l), arch.input_channels_of(l));
        let name = format!("layer{l}");
        // Vertical: a (r+1)×k kernel over rows y−r..=y, columns x−r..=x+r.
        let vw = to_oihw(layer.get(TensorKind::VWeight), p2, r + 1, k, cin);
        let v_pre = g.conv(
            &v,
            &format!("{name}.v"),
            [p2, cin, r + 1, k],
            vw,
            layer.get(TensorKind::VBias),
            [r, r, 0, r],
        );
        let v_pre =
            g.add_class_bias(&v_pre, &format!("{name}.v.class"), &layer, TensorKind::VClass, p2);
        // Horizontal: 1×(r+1) over x−r..=x; mask A zeroes the centre tap.
        let hw_crop = layer.get(TensorKind::HWeight);
        let taps = if l == 0 { r } else { r + 1 };
        let mut hw = vec![0.0; p2 * cin * (r + 1)];
        for o in 0..p2 {
            for t in 0..taps {
                for c in 0..cin {
                    hw[(o * cin + c) * (r + 1) + t] = hw_crop[(o * taps + t) * cin + c];
                }
            }
        }
        let h_pre = g.conv(
            &h,
            &format!("{name}.h"),
            [p2, cin, 1, r + 1],
            hw,
            layer.get(TensorKind::HBias),
            [0, r, 0, 0],
        );
        let h_pre =
            g.add_class_bias(&h_pre, &format!("{name}.h.class"), &layer, TensorKind::HClass, p2);
        // Link on the down-shifted vertical pre-activation: a 2×1 kernel with
        // the link in its upper tap, padded one row on top.
        let lw = layer.get(TensorKind::LinkWeight);
        let mut link_w = vec![0.0; p2 * p2 * 2];
        for o in 0..p2 {
            for c in 0..p2 {
                link_w[(o * p2 + c) * 2] = lw[o * p2 + c];
            }
        }
        let link = g.conv(
            &v_pre,
            &format!("{name}.link"),
            [p2, p2, 2, 1],
            link_w,
            layer.get(TensorKind::LinkBias),
            [1, 0, 0, 0],
        );
        let h_pre = g.op("Add", &[&h_pre, &link], &[]);
        let gated_h = g.gate(&h_pre, p);
        h = if l == 0 {
            gated_h
        } else {
            let out = g.conv1x1(
                &gated_h,
                &format!("{name}.out"),
                p,
                p,
                &layer,
                TensorKind::OutWeight,
                TensorKind::OutBias,
            );
            g.op("Add", &[&h, &out], &[])
        };
        if l + 1 < arch.layers() {
            v = g.gate(&v_pre, p);
        }
    }
    h
}

/// Plain masked stack; returns the name of the last output.
fn plain(g: &mut Graph, weights: &Weights<'_>) -> String {
    let arch = *weights.arch();
    let p = arch.channels;
    let mut h = "pixels".to_string();
    for l in 0..arch.layers() {
        let layer = weights.layer(l);
        let (r, k, cin) = (arch.radius_of(l), arch.kernel_of(l), arch.input_channels_of(l));
        let name = format!("layer{l}");
        // The full k×k kernel: rows above from `above`, the current row's
        // left part (and centre for mask B) from `left`, zeros elsewhere.
        let above = layer.get(TensorKind::AboveWeight);
        let left = layer.get(TensorKind::LeftWeight);
        let taps = if l == 0 { r } else { r + 1 };
        let mut w = vec![0.0; p * cin * k * k];
        for o in 0..p {
            for c in 0..cin {
                for ky in 0..r {
                    for kx in 0..k {
                        w[((o * cin + c) * k + ky) * k + kx] =
                            above[((o * r + ky) * k + kx) * cin + c];
                    }
                }
                for kx in 0..taps {
                    w[((o * cin + c) * k + r) * k + kx] = left[(o * taps + kx) * cin + c];
                }
            }
        }
        let input = if l == 0 { h.clone() } else { g.op("Relu", &[&h], &[]) };
        let out =
            g.conv(&input, &name, [p, cin, k, k], w, layer.get(TensorKind::Bias), [r, r, r, r]);
        let out = g.add_class_bias(&out, &format!("{name}.class"), &layer, TensorKind::Class, p);
        h = if l == 0 { out } else { g.op("Add", &[&h, &out], &[]) };
    }
    h
}

/// Runtime layout `[out][kh][kw][in]` to ONNX `[out][in][kh][kw]`.
fn to_oihw(w: &[f32], out: usize, kh: usize, kw: usize, cin: usize) -> Vec<f32> {
    let mut o_w = vec![0.0; w.len()];
    for o in 0..out {
        for y in 0..kh {
            for x in 0..kw {
                for c in 0..cin {
                    o_w[((o * cin + c) * kh + y) * kw + x] = w[((o * kh + y) * kw + x) * cin + c];
                }
            }
        }
    }
    o_w
}

enum Dim {
    Value(i64),
    Param(String),
}

fn value_info(name: &str, ty: pb::tensor_proto::DataType, dims: Vec<Dim>) -> pb::ValueInfoProto {
    let dim = dims
        .into_iter()
        .map(|d| pb::tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Value(v) => pb::tensor_shape_proto::dimension::Value::DimValue(v),
                Dim::Param(s) => pb::tensor_shape_proto::dimension::Value::DimParam(s),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: ty as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: outputs[0].into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

/// A graph under construction, with fresh names for intermediate values.
#[derive(Default)]
struct Graph {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    counter: usize,
}

impl Graph {
    fn fresh(&mut self, op: &str) -> String {
        self.counter += 1;
        format!("{}_{}", op.to_lowercase(), self.counter)
    }

    fn op(&mut self, op: &str, inputs: &[&str], attribute: &[pb::AttributeProto]) -> String {
        let out = self.fresh(op);
        self.nodes.push(node(op, inputs, &[&out], attribute.to_vec()));
        out
    }

    fn floats(&mut self, name: &str, dims: &[usize], data: Vec<f32>) -> String {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{name}");
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.into()
    }

    fn int64s(&mut self, name: &str, data: &[i64]) -> String {
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: vec![data.len() as i64],
            data_type: pb::tensor_proto::DataType::Int64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.into()
    }

    /// Conv with `pads = [top, left, bottom, right]`.
    fn conv(
        &mut self,
        input: &str,
        name: &str,
        dims: [usize; 4],
        w: Vec<f32>,
        bias: &[f32],
        pads: [usize; 4],
    ) -> String {
        let w = self.floats(&format!("{name}.weight"), &dims, w);
        let b = self.floats(&format!("{name}.bias"), &[dims[0]], bias.to_vec());
        let pads: Vec<i64> = pads.iter().map(|&x| x as i64).collect();
        self.op(
            "Conv",
            &[input, &w, &b],
            &[ints("kernel_shape", &[dims[2] as i64, dims[3] as i64]), ints("pads", &pads)],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn conv1x1(
        &mut self,
        input: &str,
        name: &str,
        out: usize,
        cin: usize,
        layer: &Layer<'_>,
        w: TensorKind,
        b: TensorKind,
    ) -> String {
        self.conv(input, name, [out, cin, 1, 1], layer.get(w).to_vec(), layer.get(b), [0, 0, 0, 0])
    }

    /// Adds the per-class bias row `table[label]` when the model has classes.
    fn add_class_bias(
        &mut self,
        x: &str,
        name: &str,
        layer: &Layer<'_>,
        kind: TensorKind,
        n: usize,
    ) -> String {
        let table = layer.get(kind);
        if table.is_empty() {
            return x.into();
        }
        let t = self.floats(name, &[table.len() / n, n], table.to_vec());
        let rows = self.op("Gather", &[&t, "label"], &[int("axis", 0)]);
        let shape = self.int64s(&format!("{name}.shape"), &[-1, n as i64, 1, 1]);
        let bias = self.op("Reshape", &[&rows, &shape], &[]);
        self.op("Add", &[x, &bias], &[])
    }

    /// `tanh(x[:, :p]) * sigmoid(x[:, p:2p])`.
    fn gate(&mut self, x: &str, p: usize) -> String {
        let names =
            [self.fresh("axes"), self.fresh("starts"), self.fresh("ends"), self.fresh("ends")];
        let axes = self.int64s(&names[0], &[1]);
        let s0 = self.int64s(&names[1], &[0]);
        let e0 = self.int64s(&names[2], &[p as i64]);
        let e1 = self.int64s(&names[3], &[2 * p as i64]);
        let f = self.op("Slice", &[x, &s0, &e0, &axes], &[]);
        let gte = self.op("Slice", &[x, &e0, &e1, &axes], &[]);
        let f = self.op("Tanh", &[&f], &[]);
        let gte = self.op("Sigmoid", &[&gte], &[]);
        self.op("Mul", &[&f, &gte], &[])
    }
}
