//! Images to score or complete: a dataset split or PNG files.

use anyhow::{bail, ensure};
use pixelcnn_runtime::data::{self, DatasetKind, Images, Split};
use pixelcnn_runtime::Arch;

use crate::cli::DataArgs;

/// Loads the images of `args` for `arch`, quantized to its levels; `class`
/// (the resolved `--class`) labels every image.
pub fn load(args: &DataArgs, arch: &Arch, class: Option<usize>) -> anyhow::Result<Images> {
    let mut images = if let Some(dir) = &args.data {
        let kind = data::detect(dir)?;
        let split = args.split.unwrap_or(match kind {
            DatasetKind::PngDir => Split::All,
            _ => Split::Test,
        });
        data::load(dir, kind, split, arch.levels)?
    } else if !args.images.is_empty() {
        let mut raw = Vec::new();
        for path in &args.images {
            let (h, w, pixels) = data::read_gray_image(path)?;
            ensure!(
                (h, w) == (arch.height, arch.width),
                "{} is {w}x{h} (width x height), the model expects {}x{}",
                path.display(),
                arch.width,
                arch.height
            );
            raw.extend(pixels);
        }
        Images {
            height: arch.height,
            width: arch.width,
            levels: arch.levels,
            classes: 0,
            pixels: data::to_levels(&raw, arch.levels, 0x5eed_0003),
            labels: None,
            class_names: Vec::new(),
        }
    } else {
        bail!("give images with --data DIR (IDX or PNG folder) or --images FILE.png ...");
    };
    if let Some(limit) = args.limit {
        let n = limit.min(images.len());
        images.pixels.truncate(n * arch.pixels());
        if let Some(labels) = &mut images.labels {
            labels.truncate(n);
        }
    }
    ensure!(!images.is_empty(), "no images to use");
    if let Some(class) = class {
        images.labels = Some(vec![class as u8; images.len()]);
        images.classes = arch.classes;
    }
    if images.labels.is_none() && arch.classes > 0 {
        // Unlabelled images for a conditional model: the caller decides
        // (eval scores under the best class, complete asks for --class).
        images.check_size(arch)?;
    } else {
        images.check_fits(arch)?;
    }
    Ok(images)
}
