//! Training data: IDX files (MNIST, Fashion-MNIST) and folders of PNGs,
//! quantized to K levels, with the binarized-MNIST protocol's splits.
//!
//! Splits of IDX data: `train` is the first 5/6 of the training file and
//! `valid` the last 1/6 (50,000 and 10,000 of MNIST's 60,000), `test` is the
//! t10k file. PNG folders: see [`Split`]. With K = 2 every pixel is binarized once, Bernoulli(v / 255),
//! from a fixed seed per file (static binarization), so train and valid come
//! from the same draw whichever is loaded. Images already binary (every pixel
//! 0 or 255) stay as they are. With K > 2 a pixel becomes
//! `floor(v * K / 256)`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::rng;
use anyhow::{bail, ensure, Context};
use rand_core::RngCore;

/// Where the images come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum DatasetKind {
    /// MNIST IDX files (`train-images-idx3-ubyte[.gz]`, …): classes 0 to 9.
    Mnist,
    /// Fashion-MNIST: the same IDX files, read the same way, with the
    /// classes named (T-shirt/top, Trouser, … Ankle boot).
    FashionMnist,
    /// A folder of grayscale PNGs; sub-folders, if any, are the classes,
    /// numbered from 0 in the sorted order of their names.
    PngDir,
}

/// Which part of the data.
///
/// IDX folders: `train` is the first 5/6 of the training file, `valid` the
/// last 1/6, `test` the t10k file. PNG folders have no test split: `valid`
/// is every 6th image of each class folder (in file-name order), `train` the
/// other 5 of every 6, and `all` every image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Split {
    /// Training images.
    Train,
    /// Validation images (held out of the training images).
    Valid,
    /// Test images (IDX folders).
    Test,
    /// Every image (PNG folders).
    All,
}

/// Seeds of the static binarization, one per source file.
const BINARIZE_SEED_TRAIN: u64 = 0x5eed_0001;
const BINARIZE_SEED_TEST: u64 = 0x5eed_0002;

/// Images quantized to `levels` levels, row-major, with optional labels.
#[derive(Clone, Debug)]
pub struct Images {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Number of levels K.
    pub levels: usize,
    /// Number of classes (0 when unlabelled).
    pub classes: usize,
    /// `len × height × width` levels.
    pub pixels: Vec<u8>,
    /// One label per image, when labelled.
    pub labels: Option<Vec<u8>>,
    /// The classes' names (PNG sub-folders, Fashion-MNIST's garments); empty
    /// when the classes are only numbers (MNIST digits).
    pub class_names: Vec<String>,
}

impl Images {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / (self.height * self.width)
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Image `i`'s levels.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Checks that these images fit `arch`: same size, labels when the
    /// model is class-conditional.
    pub fn check_fits(&self, arch: &crate::Arch) -> anyhow::Result<()> {
        self.check_size(arch)?;
        ensure!(
            arch.classes == 0 || self.labels.is_some(),
            "the model is class-conditional but the data has no labels"
        );
        if let (true, Some(labels)) = (arch.classes > 0, &self.labels) {
            if let Some(i) = labels.iter().position(|&l| usize::from(l) >= arch.classes) {
                bail!(
                    "image {i} has label {}, but the model knows only classes 0 to {}",
                    labels[i],
                    arch.classes - 1
                );
            }
        }
        Ok(())
    }

    /// The first `n` images (or all, if fewer), each with its label as a
    /// model of `arch` takes it: none for an unconditional model.
    pub fn first_labelled(&self, n: usize, arch: &crate::Arch) -> Vec<(Vec<u8>, Option<usize>)> {
        (0..n.min(self.len()))
            .map(|i| (self.image(i).to_vec(), self.label(i).filter(|_| arch.classes > 0)))
            .collect()
    }

    /// Checks that these images have `arch`'s size (labels unchecked).
    pub fn check_size(&self, arch: &crate::Arch) -> anyhow::Result<()> {
        ensure!(
            (self.height, self.width) == (arch.height, arch.width),
            "the data's images are {}x{} (width x height), the model expects {}x{}",
            self.width,
            self.height,
            arch.width,
            arch.height
        );
        Ok(())
    }

    /// Image `i`'s label.
    pub fn label(&self, i: usize) -> Option<usize> {
        self.labels.as_ref().map(|l| usize::from(l[i]))
    }
}

/// Raw 8-bit images with labels, as read from disk.
#[derive(Debug)]
struct Raw {
    height: usize,
    width: usize,
    pixels: Vec<u8>,
    labels: Option<Vec<u8>>,
    classes: usize,
    class_names: Vec<String>,
}

/// Fashion-MNIST's classes, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Loads one split of a dataset, quantized to `levels`.
pub fn load(dir: &Path, kind: DatasetKind, split: Split, levels: usize) -> anyhow::Result<Images> {
    ensure!((2..=256).contains(&levels), "--levels must be 2 to 256, got {levels}");
    check_folder(dir)?;
    let (raw, seed) = match kind {
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            let (prefix, seed) = match split {
                Split::Train | Split::Valid => ("train", BINARIZE_SEED_TRAIN),
                Split::Test => ("t10k", BINARIZE_SEED_TEST),
                Split::All => bail!(
                    "--split all is for PNG folders; {} holds IDX files: choose train, valid or test",
                    dir.display()
                ),
            };
            let mut raw = read_idx_pair(dir, prefix)?;
            if kind == DatasetKind::FashionMnist && raw.classes == FASHION_MNIST_CLASSES.len() {
                raw.class_names = FASHION_MNIST_CLASSES.map(String::from).to_vec();
            }
            (raw, seed)
        }
        DatasetKind::PngDir => (read_png_dir(dir)?, BINARIZE_SEED_TRAIN),
    };
    let n = raw.pixels.len() / (raw.height * raw.width);
    let chosen: Vec<usize> = match (kind, split) {
        (DatasetKind::PngDir, Split::Test) => bail!(
            "{} is a folder of PNGs: it has the splits train (5 of every 6 images of each class), \
             valid (every 6th) and all, but no test split",
            dir.display()
        ),
        (DatasetKind::PngDir, Split::All) => (0..n).collect(),
        (DatasetKind::PngDir, _) => stratified(raw.labels.as_deref(), n, split == Split::Valid),
        (_, Split::Train) => (0..n - n / 6).collect(),
        (_, Split::Valid) => (n - n / 6..n).collect(),
        // IDX folders refused `All` above.
        (_, Split::Test | Split::All) => (0..n).collect(),
    };
    ensure!(!chosen.is_empty(), "the {split:?} split of {} is empty", dir.display());
    let pixels = to_levels(&raw.pixels, levels, seed);
    let size = raw.height * raw.width;
    Ok(Images {
        height: raw.height,
        width: raw.width,
        levels,
        classes: raw.classes,
        pixels: chosen.iter().flat_map(|&i| &pixels[i * size..(i + 1) * size]).copied().collect(),
        labels: raw.labels.map(|l| chosen.iter().map(|&i| l[i]).collect()),
        class_names: raw.class_names,
    })
}

/// Every 6th image of each class (of all images when unlabelled) for
/// validation, the others for training: every class is in both.
fn stratified(labels: Option<&[u8]>, n: usize, valid: bool) -> Vec<usize> {
    let mut seen = [0usize; 256];
    (0..n)
        .filter(|&i| {
            let class = labels.map_or(0, |l| usize::from(l[i]));
            seen[class] += 1;
            (seen[class] % 6 == 0) == valid
        })
        .collect()
}

/// Refuses a `--data` path that is not a folder, saying what it is.
fn check_folder(dir: &Path) -> anyhow::Result<()> {
    ensure!(dir.exists(), "data folder {} does not exist", dir.display());
    ensure!(
        dir.is_dir(),
        "{} is a file: --data takes a folder of MNIST-style IDX files or of PNGs",
        dir.display()
    );
    Ok(())
}

/// What a data folder holds: MNIST-style IDX files when it has an
/// `*-idx3-ubyte[.gz]` file, else PNGs.
///
/// # Errors
/// When `dir` is not a readable folder.
pub fn detect(dir: &Path) -> anyhow::Result<DatasetKind> {
    check_folder(dir)?;
    let entries =
        fs::read_dir(dir).with_context(|| format!("cannot read data folder {}", dir.display()))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().contains("-idx3-ubyte") {
            return Ok(DatasetKind::Mnist);
        }
    }
    Ok(DatasetKind::PngDir)
}

/// Quantizes 8-bit intensities to `levels` levels; see the module docs.
pub fn to_levels(raw: &[u8], levels: usize, seed: u64) -> Vec<u8> {
    if levels == 2 {
        if raw.iter().all(|&v| v == 0 || v == 255) {
            return raw.iter().map(|&v| u8::from(v == 255)).collect();
        }
        let mut rng = rng::from_seed(seed);
        // One draw per pixel in file order: u < v/255 with u uniform in [0, 255).
        raw.iter()
            .map(|&v| {
                let u = (u64::from(rng.next_u32()) * 255) >> 32;
                u8::from(u < u64::from(v))
            })
            .collect()
    } else {
        raw.iter().map(|&v| ((usize::from(v) * levels) >> 8) as u8).collect()
    }
}

fn find(dir: &Path, names: &[String]) -> anyhow::Result<PathBuf> {
    for name in names {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!("none of {} found in {}", names.join(", "), dir.display())
}

fn idx_names(prefix: &str, what: &str, dims: u8) -> Vec<String> {
    let base =
        [format!("{prefix}-{what}-idx{dims}-ubyte"), format!("{prefix}-{what}.idx{dims}-ubyte")];
    base.iter().flat_map(|b| [format!("{b}.gz"), b.clone()]).collect()
}

fn read_idx_pair(dir: &Path, prefix: &str) -> anyhow::Result<Raw> {
    let images_path = find(dir, &idx_names(prefix, "images", 3))?;
    let labels_path = find(dir, &idx_names(prefix, "labels", 1))?;
    let (dims, pixels) = read_idx(&images_path, 3)?;
    let (ldims, labels) = read_idx(&labels_path, 1)?;
    ensure!(
        ldims[0] == dims[0],
        "{} has {} labels but {} has {} images",
        labels_path.display(),
        ldims[0],
        images_path.display(),
        dims[0]
    );
    let classes = labels.iter().map(|&l| usize::from(l) + 1).max().unwrap_or(0).max(10);
    Ok(Raw {
        height: dims[1],
        width: dims[2],
        pixels,
        labels: Some(labels),
        classes,
        class_names: Vec::new(),
    })
}

/// Reads an unsigned-byte IDX file (gzip or raw) of `rank` dimensions.
pub fn read_idx(path: &Path, rank: u8) -> anyhow::Result<(Vec<usize>, Vec<u8>)> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{} is not a valid gzip file", path.display()))?;
        out
    } else {
        bytes
    };
    let expected = [0, 0, 0x08, rank];
    ensure!(
        bytes.len() >= 4 && bytes[..4] == expected,
        "{} is not an unsigned-byte IDX file of rank {rank}: magic {:02x?}, expected {:02x?}",
        path.display(),
        &bytes[..bytes.len().min(4)],
        expected
    );
    let header = 4 + 4 * usize::from(rank);
    ensure!(bytes.len() >= header, "{} is truncated inside its header", path.display());
    let dims: Vec<usize> = (0..usize::from(rank))
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let size = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    ensure!(
        size == Some(bytes.len() - header),
        "{} declares dimensions {dims:?} ({size:?} bytes) but holds {} bytes of data",
        path.display(),
        bytes.len() - header
    );
    ensure!(dims.iter().all(|&d| d > 0), "{} has an empty dimension: {dims:?}", path.display());
    Ok((dims, bytes[header..].to_vec()))
}

fn read_png_dir(dir: &Path) -> anyhow::Result<Raw> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    let class_dirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let mut files: Vec<(PathBuf, Option<u8>)> = Vec::new();
    if class_dirs.is_empty() {
        files.extend(entries.iter().filter(|p| is_png(p)).map(|p| (p.clone(), None)));
    } else {
        ensure!(class_dirs.len() <= 256, "{} has more than 256 class folders", dir.display());
        for (class, sub) in class_dirs.iter().enumerate() {
            let mut pngs: Vec<PathBuf> = fs::read_dir(sub)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|p| is_png(p))
                .collect();
            pngs.sort();
            files.extend(pngs.into_iter().map(|p| (p, Some(class as u8))));
        }
    }
    ensure!(!files.is_empty(), "no .png files in {}", dir.display());
    let mut size: Option<(usize, usize, PathBuf)> = None;
    let mut pixels = Vec::new();
    for (path, _) in &files {
        let (h, w, gray) = read_gray_png(path)?;
        match &size {
            None => size = Some((h, w, path.clone())),
            Some((h0, w0, first)) => ensure!(
                (h, w) == (*h0, *w0),
                "images have different sizes: {} is {h0}x{w0}, {} is {h}x{w}",
                first.display(),
                path.display()
            ),
        }
        pixels.extend(gray);
    }
    let (height, width, _) = size.expect("at least one file");
    let labels: Option<Vec<u8>> = files.iter().map(|(_, l)| *l).collect();
    let class_names = class_dirs
        .iter()
        .map(|d| d.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()))
        .collect();
    Ok(Raw { height, width, pixels, labels, classes: class_dirs.len(), class_names })
}

fn is_png(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

/// Decodes a PNG to 8-bit gray (luma of colour images, alpha ignored).
pub fn read_gray_png(path: &Path) -> anyhow::Result<(usize, usize, Vec<u8>)> {
    let bytes = fs::read(path).with_context(|| format!("cannot open {}", path.display()))?;
    decode_gray_png(&bytes, &path.display().to_string())
}

/// Reads a grayscale image: a PNG or a PBM (bi-level, `P4` or `P1`),
/// recognised by its first bytes; `-` reads standard input. Height, width
/// and 8-bit gray levels; a PBM's 1 bits (ink) become 255.
pub fn read_gray_image(path: &Path) -> anyhow::Result<(usize, usize, Vec<u8>)> {
    let name = path.display().to_string();
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
            .context("cannot read an image from standard input")?;
        buf
    } else {
        fs::read(path).with_context(|| format!("cannot open {name}"))?
    };
    if bytes.starts_with(b"P4") || bytes.starts_with(b"P1") {
        decode_pbm(&bytes, &name)
    } else {
        decode_gray_png(&bytes, &name)
    }
}

/// Decodes a PBM: `P4` (rows of bits, most significant first, each row
/// padded to a byte) or `P1` (ASCII digits).
pub fn decode_pbm(bytes: &[u8], name: &str) -> anyhow::Result<(usize, usize, Vec<u8>)> {
    let bad = || anyhow::anyhow!("{name} is not a valid PBM");
    let mut at = 2;
    let mut header = [0usize; 2];
    for value in header.iter_mut() {
        loop {
            match bytes.get(at) {
                Some(b'#') => {
                    while bytes.get(at).is_some_and(|&b| b != b'\n') {
                        at += 1;
                    }
                }
                Some(b) if b.is_ascii_whitespace() => at += 1,
                Some(b) if b.is_ascii_digit() => break,
                _ => return Err(bad()),
            }
        }
        let start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        *value = std::str::from_utf8(&bytes[start..at])
            .ok()
            .and_then(|t| t.parse().ok())
            .filter(|&v: &usize| (1..=65_535).contains(&v))
            .ok_or_else(bad)?;
    }
    let [w, h] = header;
    if !bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        return Err(bad());
    }
    at += 1;
    let mut gray = Vec::with_capacity(w * h);
    if bytes[1] == b'4' {
        let row = w.div_ceil(8);
        let data = bytes
            .get(at..at + row * h)
            .ok_or_else(|| anyhow::anyhow!("{name}: the PBM is truncated"))?;
        for r in data.chunks_exact(row) {
            gray.extend((0..w).map(|x| if r[x / 8] >> (7 - x % 8) & 1 == 1 { 255 } else { 0 }));
        }
    } else {
        for &b in &bytes[at..] {
            match b {
                b'0' => gray.push(0),
                b'1' => gray.push(255),
                b if b.is_ascii_whitespace() => {}
                _ => return Err(bad()),
            }
            if gray.len() == w * h {
                break;
            }
        }
        if gray.len() != w * h {
            anyhow::bail!("{name}: the PBM is truncated");
        }
    }
    Ok((h, w, gray))
}

/// Decodes PNG bytes to 8-bit gray; `name` is for errors.
fn decode_gray_png(bytes: &[u8], name: &str) -> anyhow::Result<(usize, usize, Vec<u8>)> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader =
        decoder.read_info().with_context(|| format!("{name} is not a valid PNG or PBM"))?;
    let mut buf = vec![0; reader.output_buffer_size().context("PNG too large")?];
    let info = reader.next_frame(&mut buf).with_context(|| format!("{name} is not a valid PNG"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let gray = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|px| match channels {
            1 | 2 => px[0],
            _ => {
                ((u32::from(px[0]) * 299 + u32::from(px[1]) * 587 + u32::from(px[2]) * 114) / 1000)
                    as u8
            }
        })
        .collect();
    Ok((h, w, gray))
}
