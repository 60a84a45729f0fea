//! `pixelcnn decompress`: a `.pcnz` file back to its images, as MNIST-style
//! IDX files (`t10k-images-idx3-ubyte`, and the classes the streams carry as
//! `t10k-labels-idx1-ubyte`), and PNGs with `--png`.

use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::{bail, ensure, Context};
use pixelcnn_runtime::codec::{self, container};
use pixelcnn_runtime::IncrementalI8;

use crate::cli::DecompressArgs;
use crate::commands::compress::int8;
use crate::model_file;

/// The images' IDX file.
const IMAGES: &str = "t10k-images-idx3-ubyte";
/// The classes' IDX file.
const LABELS: &str = "t10k-labels-idx1-ubyte";

/// The PNG of image `i`.
fn png_name(i: usize) -> String {
    format!("image-{i:05}.png")
}

/// Every file name decompress writes into its folder.
fn output_names(count: usize, labels: bool, png: bool) -> Vec<String> {
    let mut names = vec![IMAGES.to_string()];
    if labels {
        names.push(LABELS.to_string());
    }
    if png {
        names.extend((0..count).map(png_name));
    }
    names
}

/// An IDX file: magic, dimensions (big-endian u32), then the bytes.
fn idx(kind: u8, dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, kind];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

pub fn run(args: &DecompressArgs) -> anyhow::Result<()> {
    let file = model_file::load(&args.model)?;
    let model = file.model()?;
    let q = int8(&model)?;
    let arch = *q.arch();
    let bytes = if args.input.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf).context("cannot read standard input")?;
        buf
    } else {
        std::fs::read(&args.input)
            .with_context(|| format!("cannot read {}", args.input.display()))?
    };
    let name = args.input.display();
    let parsed = container::parse(&bytes).with_context(|| format!("cannot decompress {name}"))?;
    parsed
        .header
        .check_model(&arch, container::model_id(file.pcnn_bytes()))
        .with_context(|| format!("cannot decompress {name} with {}", file.path.display()))?;
    let count = parsed.header.count as usize;
    // Before any decoding: the files it would write must not be there
    // already (a folder of MNIST files is a likely --out by mistake).
    let names = output_names(count, arch.classes > 0, args.png);
    if args.out.as_os_str() != "-" && !args.force {
        // An IDX file's gzip twin counts too: the data loaders read either,
        // so a folder holding both would hold two datasets.
        let taken = |n: &String| {
            let gz = format!("{n}.gz");
            if args.out.join(n).exists() {
                Some(n.clone())
            } else if !n.ends_with(".png") && args.out.join(&gz).exists() {
                Some(gz)
            } else {
                None
            }
        };
        let existing: Vec<String> = names.iter().filter_map(taken).collect();
        if let Some(first) = existing.first() {
            bail!(
                "{} already holds {first}{}: decompress would write {} there; choose another \
                 --out, or pass --force to write over {}",
                args.out.display(),
                match existing.len() {
                    1 => String::new(),
                    n => format!(" and {} more of its output names", n - 1),
                },
                if names.len() == 1 { "that file" } else { "files of those names" },
                if existing.len() == 1 { "it" } else { "them" }
            );
        }
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, count.max(1));
    let pixels = arch.pixels();
    let mut images = vec![0u8; count * pixels];
    let mut labels = vec![0u8; count];
    let bar = crate::progress::bar(count as u64, "decompressing");
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let streams: Vec<&[u8]> = parsed.streams().collect();
        let chunks = images.chunks_mut(pixels).zip(labels.iter_mut()).zip(streams).enumerate();
        let mut work: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, job) in chunks {
            work[i % threads].push(job);
        }
        let workers: Vec<_> = work
            .into_iter()
            .map(|jobs| {
                let bar = bar.clone();
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut state = vec![0i32; arch.quant_state_words_whole_rows()];
                    let first = (arch.classes > 0).then_some(0);
                    let mut exec = IncrementalI8::new(q, &mut state, first)?;
                    for ((image, label), stream) in jobs {
                        let class = codec::decode(&mut exec, stream, image)?;
                        *label = class.unwrap_or(0) as u8;
                        bar.inc(1);
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a decompression thread panicked")))?;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    // Levels back to 8-bit gray: 0 and 255 for a binary model.
    let k1 = (arch.levels - 1) as u32;
    let gray: Vec<u8> =
        images.iter().map(|&l| ((u32::from(l) * 255 + k1 / 2) / k1) as u8).collect();
    let image_file = idx(3, &[count, arch.height, arch.width], &gray);
    if args.out.as_os_str() == "-" {
        std::io::stdout()
            .lock()
            .write_all(&image_file)
            .context("cannot write to standard output")?;
        return Ok(());
    }
    let dir: &Path = &args.out;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, data: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, data).with_context(|| format!("cannot write {}", path.display()))
    };
    write(IMAGES, &image_file)?;
    if arch.classes > 0 {
        write(LABELS, &idx(1, &[count], &labels))?;
    }
    if args.png {
        for (i, g) in gray.chunks(pixels).enumerate() {
            let path = dir.join(png_name(i));
            save_gray_png(&path, arch.width, arch.height, g)?;
        }
    }
    ensure!(count > 0 || images.is_empty(), "no images");
    say!(
        "{} from {name} into {}{}",
        crate::text::count(count, "image"),
        dir.display(),
        if args.png { " (IDX and PNG)" } else { " (IDX)" }
    )?;
    Ok(())
}

fn save_gray_png(path: &Path, width: usize, height: usize, gray: &[u8]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(gray)?;
    Ok(())
}
