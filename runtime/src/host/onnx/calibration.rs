//! The int8 calibration as ONNX metadata: the largest activations measured on
//! calibration images, so a device converting ONNX to int8 need not run the
//! float model first.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};

use crate::host::calibrate::Calibration;
use crate::Arch;

/// The calibration as JSON.
pub(super) fn to_json(c: &Calibration) -> Value {
    json!({
        "vertical_pre": c.vertical_pre,
        "layer_out": c.layer_out,
        "head_hidden": c.head_hidden,
        "images": c.images,
        "source": c.source,
    })
}

/// Reads a calibration for `arch`, checking every range: one per layer,
/// finite and not negative.
pub(super) fn from_json(text: &str, arch: &Arch) -> Result<Calibration, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let ranges = |field: &str| -> Result<Vec<f32>, String> {
        let list = v[field].as_array().ok_or_else(|| format!("`{field}` is not a list"))?;
        if list.len() != arch.layers() {
            return Err(format!(
                "`{field}` has {} ranges, the model has {} layers",
                list.len(),
                arch.layers()
            ));
        }
        list.iter().map(|x| range(x, field)).collect()
    };
    Ok(Calibration {
        vertical_pre: ranges("vertical_pre")?,
        layer_out: ranges("layer_out")?,
        head_hidden: range(&v["head_hidden"], "head_hidden")?,
        images: v["images"].as_u64().ok_or("`images` is not a count")? as usize,
        source: v["source"].as_str().unwrap_or_default().into(),
    })
}

fn range(x: &Value, field: &str) -> Result<f32, String> {
    match x.as_f64() {
        Some(r) if r.is_finite() && r >= 0.0 && r <= f64::from(f32::MAX) => Ok(r as f32),
        _ => Err(format!("`{field}` holds {x}, not a finite range of 0 or more")),
    }
}
