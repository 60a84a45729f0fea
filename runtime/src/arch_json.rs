//! [`Arch`] as JSON: the `pixelcnn` metadata of exported ONNX files and the
//! architecture record of training runs. One definition for every tool.

use crate::arch::{Arch, Variant};
use alloc::string::{String, ToString};
use serde_json::{json, Value};

/// Version of the JSON description; bumped when a field changes meaning.
pub const ARCH_JSON_VERSION: u64 = 1;

impl Arch {
    /// The architecture as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "format": "pixelcnn-arch",
            "version": ARCH_JSON_VERSION,
            "variant": match self.variant { Variant::Gated => "gated", Variant::Plain => "plain" },
            "height": self.height,
            "width": self.width,
            "levels": self.levels,
            "classes": self.classes,
            "channels": self.channels,
            "blocks": self.blocks,
            "first_kernel": self.first_kernel,
            "kernel": self.kernel,
            "head": self.head,
        })
    }

    /// Parses and validates a description written by [`Arch::to_json`].
    ///
    /// # Errors
    /// A message naming the missing or invalid field.
    pub fn from_json(value: &Value) -> Result<Arch, String> {
        let field = |name: &str| -> Result<usize, String> {
            value
                .get(name)
                .and_then(Value::as_u64)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| {
                    alloc::format!(
                        "architecture field `{name}` is missing or not a non-negative integer"
                    )
                })
        };
        let version = value.get("version").and_then(Value::as_u64).unwrap_or(0);
        if version != ARCH_JSON_VERSION {
            return Err(alloc::format!(
                "architecture description version {version}, this build reads version {ARCH_JSON_VERSION}"
            ));
        }
        let variant = match value.get("variant").and_then(Value::as_str) {
            Some("gated") => Variant::Gated,
            Some("plain") => Variant::Plain,
            other => {
                return Err(alloc::format!(
                    "architecture field `variant` is {other:?}, expected \"gated\" or \"plain\""
                ))
            }
        };
        let arch = Arch {
            variant,
            height: field("height")?,
            width: field("width")?,
            levels: field("levels")?,
            classes: field("classes")?,
            channels: field("channels")?,
            blocks: field("blocks")?,
            first_kernel: field("first_kernel")?,
            kernel: field("kernel")?,
            head: field("head")?,
        };
        arch.validate().map_err(|e| e.to_string())?;
        Ok(arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let arch = Arch { classes: 0, variant: Variant::Plain, ..Arch::MNIST_GATED };
        assert_eq!(Arch::from_json(&arch.to_json()), Ok(arch));
        let mut bad = arch.to_json();
        bad["levels"] = json!(300);
        assert_eq!(Arch::from_json(&bad).unwrap_err(), "levels is 300, expected 2 to 256");
        bad.as_object_mut().unwrap().remove("levels");
        assert!(Arch::from_json(&bad).unwrap_err().contains("`levels` is missing"));
        bad["version"] = json!(9);
        assert!(Arch::from_json(&bad).unwrap_err().contains("version 9"));
    }
}
