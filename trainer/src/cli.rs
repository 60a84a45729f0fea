//! Command-line arguments. The doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pixelcnn_runtime::{Arch, Variant};

use crate::backend::BackendKind;
use crate::data::{DatasetKind, Split};
use crate::numbers::at_least_one;

/// Train Gated PixelCNN models on MNIST-family data, evaluate their NLL and
/// export them as ONNX for the pixelcnn runtime.
#[derive(Debug, Parser)]
#[command(name = "trainer", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Each reads negative numbers as values, so `--epochs -1` gets the option's
// range message rather than clap's "unexpected argument '-1'".
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model; checkpoints, samples, curves and metrics go to --out.
    #[command(allow_negative_numbers = true)]
    Train(TrainArgs),
    /// Negative log-likelihood of a trained model over a whole split.
    #[command(allow_negative_numbers = true)]
    Eval(EvalArgs),
    /// Write a trained model as ONNX, masks baked into the weights.
    #[command(allow_negative_numbers = true)]
    Export(ExportArgs),
    /// Training speed: images per second of full steps (forward, backward,
    /// Adam) on random binary images, for a network shape and backend.
    #[command(allow_negative_numbers = true)]
    Bench(BenchArgs),
    /// Do class-conditional samples look like their class? A digit
    /// classifier trained on the training split labels samples of each class.
    #[command(allow_negative_numbers = true)]
    CheckSamples(CheckSamplesArgs),
}

/// Network variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchKind {
    /// Gated PixelCNN (vertical and horizontal stacks, no blind spot).
    Gated,
    /// Plain masked-convolution PixelCNN (the baseline with a blind spot).
    Pixelcnn,
}

/// The network's shape, shared by `train` and `bench`.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Network variant [default: gated].
    #[arg(long, value_enum)]
    pub arch: Option<ArchKind>,
    /// Gated channels (plain: feature maps) per layer [default: 32].
    #[arg(long)]
    pub channels: Option<usize>,
    /// Blocks after the first layer [default: 5].
    #[arg(long)]
    pub blocks: Option<usize>,
    /// Kernel size of the first (mask A) layer [default: 7].
    #[arg(long)]
    pub first_kernel: Option<usize>,
    /// Kernel size of the later layers [default: 3].
    #[arg(long)]
    pub kernel: Option<usize>,
    /// Width of the output head's hidden layer [default: --channels].
    #[arg(long)]
    pub head: Option<usize>,
}

impl NetworkArgs {
    /// The architecture these flags describe for images of the given size,
    /// levels and classes (not yet validated).
    pub fn arch(&self, height: usize, width: usize, levels: usize, classes: usize) -> Arch {
        let channels = self.channels.unwrap_or(32);
        Arch {
            variant: match self.arch.unwrap_or(ArchKind::Gated) {
                ArchKind::Gated => Variant::Gated,
                ArchKind::Pixelcnn => Variant::Plain,
            },
            height,
            width,
            levels,
            classes,
            channels,
            blocks: self.blocks.unwrap_or(5),
            first_kernel: self.first_kernel.unwrap_or(7),
            kernel: self.kernel.unwrap_or(3),
            head: self.head.unwrap_or(channels),
        }
    }

    /// The first flag given that differs from `arch`: (flag, given, saved).
    pub fn conflict(&self, arch: &Arch) -> Option<(&'static str, String, String)> {
        let variant = |v: Variant| match v {
            Variant::Gated => "gated",
            Variant::Plain => "pixelcnn",
        };
        if let Some(kind) = self.arch {
            let given = match kind {
                ArchKind::Gated => Variant::Gated,
                ArchKind::Pixelcnn => Variant::Plain,
            };
            if given != arch.variant {
                return Some(("arch", variant(given).into(), variant(arch.variant).into()));
            }
        }
        let sizes = [
            ("channels", self.channels, arch.channels),
            ("blocks", self.blocks, arch.blocks),
            ("first-kernel", self.first_kernel, arch.first_kernel),
            ("kernel", self.kernel, arch.kernel),
            ("head", self.head, arch.head),
        ];
        sizes.into_iter().find_map(|(flag, given, saved)| {
            given.filter(|&g| g != saved).map(|g| (flag, g.to_string(), saved.to_string()))
        })
    }
}

/// Arguments of `trainer train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Folder with the data: MNIST-style IDX files, or PNGs (one sub-folder
    /// per class; the PNG splits are train = 5 of every 6 images of each
    /// class, valid = every 6th).
    #[arg(long)]
    pub data: PathBuf,
    /// Run directory: checkpoint, samples, loss curve, metrics.
    #[arg(long)]
    pub out: PathBuf,
    /// Kind of data in --data (default: IDX files when the folder has them,
    /// else PNGs).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Intensity levels K (2 = binarized, 256 = full grey) [default: 2].
    #[arg(long)]
    pub levels: Option<usize>,
    /// Condition on the class label.
    #[arg(long)]
    pub conditional: bool,
    /// The network's shape.
    #[command(flatten)]
    pub net: NetworkArgs,
    /// Train this many epochs (the learning-rate schedule spans them).
    #[arg(long, conflicts_with = "minutes", value_parser = at_least_one)]
    pub epochs: Option<usize>,
    /// Train this many minutes (the schedule spans them).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Images per step [default: 32]. A resumed run keeps its own.
    #[arg(long, value_parser = at_least_one)]
    pub batch: Option<usize>,
    /// Peak learning rate (Adam), reached after a short warm-up, then cosine
    /// decay [default: 2e-3]. On --resume only with --restart-schedule.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Largest L2 norm of each parameter's gradient.
    #[arg(long, default_value_t = 1.0)]
    pub clip: f32,
    /// Keep an exponential moving average of the weights with this decay
    /// per step (Polyak averaging; 0 = none) [default: 0.9995 for a new run].
    /// Validation reports both; eval, export, check-samples and the sample
    /// grids use the average. On --resume, starts (or changes) the average.
    #[arg(long, value_name = "DECAY")]
    pub ema: Option<f64>,
    /// With --resume: start a new learning-rate cycle here (a warm-up, then
    /// cosine decay from --lr, default the run's peak) spanning --epochs or
    /// --minutes more: a warm restart (SGDR, Loshchilov & Hutter 2017).
    #[arg(long, requires = "resume")]
    pub restart_schedule: bool,
    /// Seed of initialization and shuffling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Continue the run in --out from its last checkpoint. With --epochs or
    /// --minutes the run's schedule gets the new length (a finished run is
    /// extended); architecture flags must match the run's.
    #[arg(long)]
    pub resume: bool,
    /// Minutes between checkpoints (also written at every epoch's end).
    #[arg(long, default_value_t = 5.0)]
    pub checkpoint_minutes: f64,
    /// Validate on at most this many images per epoch (default: all).
    #[arg(long, value_parser = at_least_one)]
    pub valid_images: Option<usize>,
    /// Stop after this many steps in this session (for tests and smoke runs).
    #[arg(long, hide = true)]
    pub max_steps: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = at_least_one)]
    pub threads: Option<usize>,
    /// Training backend: the CPU engine, or burn (a trainer built with the
    /// `burn` feature; `wgpu` or `cuda` for GPUs).
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    pub backend: BackendKind,
    /// Binarize the training images anew every epoch (Bernoulli of the grey
    /// level), instead of once; validation and test stay statically binarized.
    #[arg(long)]
    pub dynamic_binarization: bool,
}

/// Arguments of `trainer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run directory with a checkpoint.
    #[arg(long)]
    pub run: PathBuf,
    /// Folder with the data.
    #[arg(long)]
    pub data: PathBuf,
    /// Which split to score.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Kind of data (default: the one the run trained on).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Score only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Score the trained weights, not their moving average.
    #[arg(long)]
    pub raw_weights: bool,
}

/// Arguments of `trainer export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run directory with a checkpoint.
    #[arg(long)]
    pub run: PathBuf,
    /// Output ONNX file.
    #[arg(long)]
    pub out: PathBuf,
    /// Training images (MNIST-style IDX files or PNGs) to measure the int8
    /// activation ranges on; they are stored in the file, so converting it to
    /// int8 later needs no calibration pass. Default: samples of the model.
    #[arg(long, value_name = "DIR")]
    pub calib: Option<PathBuf>,
    /// Number of calibration images.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub calib_images: usize,
    /// Export the trained weights, not their moving average.
    #[arg(long)]
    pub raw_weights: bool,
}

/// Arguments of `trainer bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The network's shape.
    #[command(flatten)]
    pub net: NetworkArgs,
    /// Intensity levels K.
    #[arg(long, default_value_t = 2)]
    pub levels: usize,
    /// Classes (0: unconditional).
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Timed steps, after 3 warm-up steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Training backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    pub backend: BackendKind,
}

/// Arguments of `trainer check-samples`.
#[derive(Debug, Args)]
pub struct CheckSamplesArgs {
    /// Run directory with a checkpoint of a class-conditional model.
    #[arg(long)]
    pub run: PathBuf,
    /// Folder with the labelled data the classifier trains on.
    #[arg(long)]
    pub data: PathBuf,
    /// Samples per class.
    #[arg(long, default_value_t = 100)]
    pub per_class: usize,
    /// Seed of the samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Epochs of classifier training.
    #[arg(long, default_value_t = 5)]
    pub classifier_epochs: usize,
    /// Also save the first 10 samples of each class as a PNG grid (a row per class).
    #[arg(long)]
    pub grid: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Sample with the trained weights, not their moving average.
    #[arg(long)]
    pub raw_weights: bool,
}
