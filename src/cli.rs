//! Command-line arguments. The doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::numbers::{at_least_one, at_least_one_u64, temperature, whole};
use pixelcnn_runtime::data::Split;
use pixelcnn_runtime::graph::InputKind;
use pixelcnn_runtime::Precision;

/// Run Gated PixelCNN models with cached, per-pixel sampling.
#[derive(Debug, Parser)]
#[command(name = "pixelcnn", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Each reads negative numbers as values, so `--count -1` gets the option's
// range message rather than clap's "unexpected argument '-1'".
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Draw the receptive field of one pixel as a PNG: which earlier pixels
    /// change its prediction, measured by perturbing each pixel in turn.
    ///
    /// The gated network sees every earlier pixel within its reach; the
    /// plain masked-convolution PixelCNN misses a wedge above and to the
    /// right (its blind spot, drawn hatched).
    #[command(allow_negative_numbers = true)]
    ReceptiveField(ReceptiveFieldArgs),
    /// Convert a model (ONNX from `trainer export`, or an f32 .pcnn) to the
    /// device format, in f32, f16 or integer-only int8.
    #[command(allow_negative_numbers = true)]
    Convert(ConvertArgs),
    /// Sample images and save them as a PNG grid.
    #[command(allow_negative_numbers = true)]
    Sample(SampleArgs),
    /// Fill in the lower part of given images (the seed blog's occluded
    /// digits): original, what the model was given, and its completions.
    #[command(allow_negative_numbers = true)]
    Complete(CompleteArgs),
    /// Negative log-likelihood of a dataset split, in nats per image and
    /// bits per dimension.
    #[command(allow_negative_numbers = true)]
    Eval(EvalArgs),
    /// Measure per-pixel sampling latency (p50/p99 per pixel, per row, per
    /// image), MACs per pixel and GMAC/s; with --baseline, also the full
    /// forward pass per pixel of the runtime's naive path and of tract-onnx.
    #[command(allow_negative_numbers = true)]
    Bench(BenchArgs),
    /// Describe a model: architecture, parameters, flash and RAM bytes, MACs
    /// per pixel.
    #[command(allow_negative_numbers = true)]
    Inspect(InspectArgs),
    /// Compress images losslessly with the int8 model as the entropy model
    /// (an arithmetic coder on its integer probabilities) into a .pcnz file
    /// that decodes the same on every machine.
    #[command(allow_negative_numbers = true)]
    #[command(mut_arg("model", |a| a.default_value(DEFAULT_INT8)))]
    Compress(CompressArgs),
    /// Decompress a .pcnz file to MNIST-style IDX files (and PNGs with --png).
    #[command(allow_negative_numbers = true)]
    #[command(mut_arg("model", |a| a.default_value(DEFAULT_INT8)))]
    Decompress(DecompressArgs),
}

/// Arguments of `pixelcnn compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Code each image under the class that gives the shortest stream (the
    /// default for unlabelled images); else under its label.
    #[arg(long)]
    pub best_class: bool,
    /// Decode every stream right after coding it and check it gives the
    /// image back (twice the work).
    #[arg(long)]
    pub verify: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = at_least_one)]
    pub threads: Option<usize>,
    /// Where to write the .pcnz file (`-`: standard output).
    #[arg(long, short, default_value = "images.pcnz")]
    pub out: PathBuf,
    /// Print one JSON object: images, bytes, bytes_per_image,
    /// nll_bits_per_image.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `pixelcnn decompress`.
#[derive(Debug, Args)]
pub struct DecompressArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The .pcnz file (`-`: standard input).
    pub input: PathBuf,
    /// Folder for t10k-images-idx3-ubyte (and t10k-labels-idx1-ubyte, the
    /// classes); `-` writes the images' IDX file to standard output.
    #[arg(long, short, default_value = "decompressed")]
    pub out: PathBuf,
    /// Also write one PNG per image.
    #[arg(long)]
    pub png: bool,
    /// Write over files of the same names already in the --out folder
    /// (without it, decompress refuses before decoding anything).
    #[arg(long)]
    pub force: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = at_least_one)]
    pub threads: Option<usize>,
}

/// The bundled float model: the default where ONNX can be read.
pub const DEFAULT_ONNX: &str = "models/gated-mnist.onnx";
/// The bundled int8 model: the default of `compress` and `decompress` (the
/// coder runs integer-only) and of builds without the `onnx` feature.
pub const DEFAULT_INT8: &str = "models/gated-mnist-int8.pcnn";

/// Which model to run, in which precision.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model file: ONNX (from `trainer export`) or .pcnn (from `convert`).
    #[cfg_attr(feature = "onnx", arg(long, short, default_value = DEFAULT_ONNX))]
    #[cfg_attr(not(feature = "onnx"), arg(long, short, default_value = DEFAULT_INT8))]
    pub model: PathBuf,
    /// Precision to run in. An ONNX or f32 .pcnn model is converted at load;
    /// default: the file's own precision (f32 for ONNX).
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// For an ONNX graph from another trainer whose float input does not
    /// say how a level becomes its value: unit = level/(K−1), signed =
    /// 2·level/(K−1) − 1, levels = the level as a number, index = the
    /// integer level (an int64 input needs none: it is the level).
    // Its own id: `decompress` has a positional argument named `input`.
    #[arg(long = "input", id = "input_kind", value_name = "KIND", value_enum)]
    pub input: Option<InputKind>,
    /// Run an ONNX file from `trainer export` as a generic graph, as files
    /// from other trainers run (to compare it with its specialised
    /// executor).
    #[arg(long)]
    pub as_graph: bool,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
}

/// Where int8 calibration images come from.
#[derive(Debug, Args)]
pub struct CalibrationArgs {
    /// Folder of training images (MNIST-style IDX files or PNGs) to calibrate
    /// int8 activation ranges on. Default: the ranges an ONNX file from
    /// `trainer export` carries (no calibration pass), else samples drawn
    /// from the float model.
    #[arg(long, value_name = "DIR")]
    pub calib: Option<PathBuf>,
    /// Number of calibration images [default: 100]; given without --calib,
    /// the model's own samples replace the ranges stored in an ONNX file.
    #[arg(long, value_name = "N")]
    pub calib_images: Option<usize>,
}

impl CalibrationArgs {
    /// Images to calibrate on.
    pub fn count(&self) -> usize {
        self.calib_images.unwrap_or(100)
    }
}

/// Arguments of `pixelcnn convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input model: ONNX from `trainer export`, or an f32 .pcnn.
    pub input: PathBuf,
    /// Precision of the output.
    #[arg(long, value_enum, default_value_t = Precision::Int8)]
    pub precision: Precision,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    /// Where to write the .pcnn file.
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Arguments of `pixelcnn sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of images.
    #[arg(long, short = 'n', default_value_t = 10, value_parser = at_least_one)]
    pub count: usize,
    /// Class of every image (class-conditional models): its number, or its
    /// name when the model names its classes (`inspect` lists them);
    /// default: cycle through the classes.
    #[arg(long)]
    pub class: Option<String>,
    /// Random seed: the same seed gives the same images.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sampling temperature: below 1 sharper, above 1 more varied.
    #[arg(long, default_value_t = 1.0, value_parser = temperature)]
    pub temperature: f32,
    /// Images per row of the grid.
    #[arg(long, default_value_t = 10, value_parser = at_least_one)]
    pub columns: usize,
    /// Screen pixels per image pixel (1 to 64).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub scale: u32,
    /// Sample the images on this many threads, each with its own executor
    /// (default: all cores). Image i is the same whatever the count.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Advance this many images together (int8 models): each weight load
    /// then serves the whole batch. The images are the same as one at a time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch: u16,
    /// Where to write the PNG grid.
    #[arg(long, short, default_value = "samples.png")]
    pub out: PathBuf,
}

/// Where images to score or complete come from.
#[derive(Clone, Debug, Args)]
pub struct DataArgs {
    /// Folder with MNIST-style IDX files (gz or raw) or PNGs.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Which split of --data (default: test for IDX folders, all for PNG
    /// folders, which have no test split).
    #[arg(long, value_enum)]
    pub split: Option<Split>,
    /// Image files instead of --data (unlabelled): grayscale PNG or PBM
    /// (bi-level), `-` for standard input.
    #[arg(long, num_args = 1.., conflicts_with = "data")]
    pub images: Vec<PathBuf>,
    /// Use only the first N images.
    #[arg(long, value_parser = at_least_one)]
    pub limit: Option<usize>,
    /// Class of every image, for class-conditional models, by number or
    /// name (overrides the data's labels; needed for unlabelled images in
    /// `complete`).
    #[arg(long)]
    pub class: Option<String>,
}

/// Arguments of `pixelcnn complete`.
#[derive(Debug, Args)]
pub struct CompleteArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Image rows given to the model, from the top (default: half).
    #[arg(long, value_parser = whole)]
    pub rows: Option<usize>,
    /// Completions drawn per image.
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    pub samples: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0, value_parser = temperature)]
    pub temperature: f32,
    /// Screen pixels per image pixel (1 to 64).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub scale: u32,
    /// Where to write the PNG.
    #[arg(long, short, default_value = "completions.png")]
    pub out: PathBuf,
}

/// Arguments of `pixelcnn eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = at_least_one)]
    pub threads: Option<usize>,
    /// Kernel to use instead of the default, as in `bench` (such as
    /// neon-fp16, to score an f16 model in f16 arithmetic).
    #[arg(long)]
    pub kernel: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `pixelcnn bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Images to generate while timing every pixel (after one warm-up image).
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    pub images: usize,
    /// Also measure throughput on this many threads at once (each samples
    /// --images digits with its own executor): digits per second in all,
    /// and per thread.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Measure throughput with lockstep batches of this many digits (int8
    /// models; each weight load serves the batch): each thread then samples
    /// --images batches.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch: u16,
    /// Also time the naive paths: one full forward pass per pixel in the
    /// runtime's reference executor and in tract-onnx, on the float model.
    #[arg(long)]
    pub baseline: bool,
    /// The float ONNX model for --baseline (default: --model when it is
    /// ONNX, else models/gated-mnist.onnx); it must have the same
    /// architecture.
    #[arg(long)]
    pub baseline_onnx: Option<PathBuf>,
    /// Kernel to use instead of the fastest one: int8 (generic, arm-dsp,
    /// avx2, avx-vnni, avx512-vnni-256, avx512-vnni, amx, neon, neon-dotprod)
    /// or float (portable, avx, neon-float, neon-fp16); every one gives the
    /// same bits but neon-fp16, which computes f16 models in f16.
    #[arg(long)]
    pub kernel: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `pixelcnn inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Instead of the model: this CPU's features and, for the int8 and float
    /// kernels chosen here (or --kernel), the code that runs each operation.
    #[arg(long)]
    pub kernels: bool,
    /// With --kernels: report this kernel instead of the default one.
    #[arg(long, requires = "kernels")]
    pub kernel: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Which network to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchKind {
    /// Gated PixelCNN: vertical and horizontal stacks, no blind spot.
    Gated,
    /// Plain PixelCNN: a mask-A layer, then mask-B layers; has a blind spot.
    Plain,
}

/// Arguments of `pixelcnn receptive-field`.
#[derive(Debug, Args)]
pub struct ReceptiveFieldArgs {
    /// A model file instead of random weights: ONNX from `trainer export`,
    /// or an f32 or f16 .pcnn. Its architecture replaces --arch and the
    /// size options.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Network variant.
    #[arg(long, value_enum, default_value_t = ArchKind::Gated)]
    pub arch: ArchKind,
    /// Image height in pixels.
    #[arg(long, default_value_t = 16, value_parser = at_least_one)]
    pub height: usize,
    /// Image width in pixels.
    #[arg(long, default_value_t = 16, value_parser = at_least_one)]
    pub width: usize,
    /// Row of the pixel whose field is drawn (default: two thirds down).
    #[arg(long)]
    pub row: Option<usize>,
    /// Column of the pixel whose field is drawn (default: the middle).
    #[arg(long)]
    pub col: Option<usize>,
    /// Blocks after the first layer (the depth).
    #[arg(long, default_value_t = 3)]
    pub blocks: usize,
    /// Kernel size of the first (mask A) layer.
    #[arg(long, default_value_t = 7)]
    pub first_kernel: usize,
    /// Kernel size of the later layers.
    #[arg(long, default_value_t = 3)]
    pub kernel: usize,
    /// Channels of the random network.
    #[arg(long, default_value_t = 8)]
    pub channels: usize,
    /// Seed of the random weights and images.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Random images to perturb; a pixel counts as influencing when it moves
    /// the prediction on any of them (one image can hide a path behind a ReLU).
    #[arg(long, default_value_t = 4, value_parser = at_least_one_u64)]
    pub images: u64,
    /// Size of one image pixel in the picture, in screen pixels (4 to 256).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(4..=256))]
    pub cell: u32,
    /// Where to write the PNG.
    #[arg(long, short)]
    pub out: PathBuf,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn model_of(args: &[&str]) -> PathBuf {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Sample(a) => a.model.model,
            Command::Compress(a) => a.model.model,
            Command::Decompress(a) => a.model.model,
            other => panic!("not a model command: {other:?}"),
        }
    }

    #[test]
    fn the_default_model_is_one_the_command_and_this_build_can_run() {
        // Compression is integer-only: the int8 model, whatever the build.
        assert_eq!(model_of(&["pixelcnn", "compress"]), Path::new(DEFAULT_INT8));
        assert_eq!(model_of(&["pixelcnn", "decompress", "x.pcnz"]), Path::new(DEFAULT_INT8));
        // Elsewhere the float model, where this build reads ONNX.
        let sample = if cfg!(feature = "onnx") { DEFAULT_ONNX } else { DEFAULT_INT8 };
        assert_eq!(model_of(&["pixelcnn", "sample"]), Path::new(sample));
        assert_eq!(model_of(&["pixelcnn", "sample", "-m", "x.pcnn"]), Path::new("x.pcnn"));
    }

    #[test]
    fn decompress_takes_its_file_and_input_kind_is_another_option() {
        let cli =
            Cli::try_parse_from(["pixelcnn", "decompress", "x.pcnz", "--input", "unit"]).unwrap();
        let Command::Decompress(a) = cli.command else { panic!("decompress") };
        assert_eq!(a.input, Path::new("x.pcnz"));
        assert_eq!(a.model.input, Some(InputKind::Unit));
    }

    #[test]
    fn negative_numbers_get_the_range_message() {
        let err = Cli::try_parse_from(["pixelcnn", "sample", "--count", "-1"]).unwrap_err();
        assert!(err.to_string().contains("must be at least 1, got -1"), "{err}");
        let err = Cli::try_parse_from(["pixelcnn", "sample", "--temperature", "-1"]).unwrap_err();
        assert!(err.to_string().contains("must be a positive number"), "{err}");
        let err = Cli::try_parse_from(["pixelcnn", "complete", "--rows", "-3"]).unwrap_err();
        assert!(err.to_string().contains("must be 0 or more, got -3"), "{err}");
    }
}
