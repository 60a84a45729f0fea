//! Command-line arguments. The doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run Gated PixelCNN models with cached, per-pixel sampling.
#[derive(Debug, Parser)]
#[command(name = "pixelcnn", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Draw the receptive field of one pixel as a PNG: which earlier pixels
    /// change its prediction, measured by perturbing each pixel in turn.
    ///
    /// The gated network sees every earlier pixel within its reach; the
    /// plain masked-convolution PixelCNN misses a wedge above and to the
    /// right (its blind spot, drawn hatched).
    ReceptiveField(ReceptiveFieldArgs),
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
    /// A model file (ONNX from `trainer export`) instead of random weights;
    /// its architecture replaces --arch and the size options.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Network variant.
    #[arg(long, value_enum, default_value_t = ArchKind::Gated)]
    pub arch: ArchKind,
    /// Image height in pixels.
    #[arg(long, default_value_t = 16)]
    pub height: usize,
    /// Image width in pixels.
    #[arg(long, default_value_t = 16)]
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
    #[arg(long, default_value_t = 4)]
    pub images: u64,
    /// Size of one image pixel in the picture, in screen pixels.
    #[arg(long, default_value_t = 24)]
    pub cell: u32,
    /// Where to write the PNG.
    #[arg(long, short)]
    pub out: PathBuf,
}
