//! Receptive fields: measured by perturbation, derived from the structure,
//! and the full field a network without a blind spot would have.
//!
//! These reproduce the seed blog's figures from the networks themselves: the
//! gated network's field is the full field; the plain PixelCNN misses a wedge
//! above and to the right of the pixel (the blind spot).

use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::exec::gated::Incremental;
use crate::exec::plain::PlainIncremental;
use crate::exec::raster::{Network, Raster};
use crate::host::reference::forward;
use crate::params::Weights;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

/// A pixel position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pixel {
    /// Row, from the top.
    pub row: usize,
    /// Column, from the left.
    pub col: usize,
}

/// How much each pixel moves the prediction at each other pixel, measured by
/// perturbation with the reference executor.
#[derive(Clone, Debug, PartialEq)]
pub struct Influence {
    pixels: usize,
    width: usize,
    /// `data[target * pixels + source]`: max abs change of the target's logits.
    data: Vec<f32>,
}

impl Influence {
    /// For every pixel, how much changing it moves the logits of `target`
    /// (max abs difference); zero means no influence at all.
    ///
    /// # Panics
    /// If `target` is outside the image.
    pub fn on(&self, target: Pixel) -> &[f32] {
        let t = target.row * self.width + target.col;
        &self.data[t * self.pixels..(t + 1) * self.pixels]
    }
}

/// Measures the influence of every pixel on every other: each pixel in turn
/// is changed to the level farthest from its own (0 ↔ K − 1 at the ends) and
/// the whole image is run again, one full forward pass per pixel.
///
/// # Errors
/// As [`forward`].
pub fn measure_influence(
    weights: &Weights<'_>,
    image: &[u8],
    class: Option<usize>,
) -> Result<Influence, Error> {
    let arch = *weights.arch();
    let (k, n) = (arch.levels, arch.pixels());
    let base = forward(weights, image, class)?;
    let mut data = vec![0.0f32; n * n];
    let mut perturbed = image.to_vec();
    for source in 0..n {
        let level = image[source];
        perturbed[source] = if usize::from(level) * 2 < k { (k - 1) as u8 } else { 0 };
        let logits = forward(weights, &perturbed, class)?;
        for target in 0..n {
            data[target * n + source] = logits[target * k..(target + 1) * k]
                .iter()
                .zip(&base[target * k..(target + 1) * k])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
        }
        perturbed[source] = level;
    }
    Ok(Influence { pixels: n, width: arch.width, data })
}

/// How much each pixel moves the logits of one `target` pixel (max abs
/// difference; zero: no influence), measured with the incremental executor.
///
/// Each pixel before the target in raster order is changed in turn, as in
/// [`measure_influence`], and the executor runs the image only up to the
/// target: the model is causal, so a pixel at or after the target cannot
/// reach it and is not perturbed (its entry is zero). That is `t` runs of at
/// most `t` pixels each for target index `t`, against `h × w` full forward
/// passes for [`measure_influence`]: hundreds of times less work on MNIST.
/// Where a pixel's change does not reach the target, every operation the
/// executor does is the same as on the unchanged image, so its entry is
/// exactly zero, as with [`measure_influence`].
///
/// `progress` is called once per perturbed pixel.
///
/// # Errors
/// [`Error::ImageSize`] when `target` is outside the image or `image` has
/// the wrong size; otherwise as the executor.
pub fn measure_influence_on(
    weights: &Weights<'_>,
    image: &[u8],
    class: Option<usize>,
    target: Pixel,
    mut progress: impl FnMut(),
) -> Result<Vec<f32>, Error> {
    let arch = *weights.arch();
    let n = arch.pixels();
    if image.len() != n {
        return Err(Error::ImageSize { expected: n, found: image.len() });
    }
    if target.row >= arch.height || target.col >= arch.width {
        return Err(Error::ImageSize { expected: n, found: target_index(&arch, target) + 1 });
    }
    let t = target_index(&arch, target);
    let mut state = vec![0.0f32; arch.executor_state_len()];
    let mut logits_at_target = |prefix: &[u8]| -> Result<Vec<f32>, Error> {
        match arch.variant {
            Variant::Gated => run_prefix(Incremental::new(weights, &mut state, class)?, prefix),
            Variant::Plain => {
                run_prefix(PlainIncremental::new(weights, &mut state, class)?, prefix)
            }
        }
    };
    let base = logits_at_target(&image[..t])?;
    let mut perturbed = image[..t].to_vec();
    let mut out = vec![0.0f32; n];
    let k = arch.levels;
    for source in 0..t {
        let level = perturbed[source];
        perturbed[source] = if usize::from(level) * 2 < k { (k - 1) as u8 } else { 0 };
        let logits = logits_at_target(&perturbed)?;
        out[source] = logits.iter().zip(&base).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        perturbed[source] = level;
        progress();
    }
    Ok(out)
}

/// The logits after pushing `prefix` into a fresh executor.
fn run_prefix<N: Network<Logit = f32>>(
    mut exec: Raster<N>,
    prefix: &[u8],
) -> Result<Vec<f32>, Error> {
    for &level in prefix {
        exec.push(level)?;
    }
    Ok(exec.logits()?.to_vec())
}

fn target_index(arch: &Arch, target: Pixel) -> usize {
    target.row.saturating_mul(arch.width).saturating_add(target.col)
}

/// A set of pixels as a row-major boolean grid.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Grid {
    height: usize,
    width: usize,
    cells: Vec<bool>,
}

impl Grid {
    fn empty(arch: &Arch) -> Self {
        Grid { height: arch.height, width: arch.width, cells: vec![false; arch.pixels()] }
    }

    /// Every pixel that a position of `self` reads through one of `taps`
    /// (row and column offsets).
    fn reads(&self, taps: impl Iterator<Item = (isize, isize)> + Clone) -> Grid {
        let mut out = Grid { cells: vec![false; self.cells.len()], ..*self };
        for (pos, _) in self.cells.iter().enumerate().filter(|(_, &c)| c) {
            let (y, x) = ((pos / self.width) as isize, (pos % self.width) as isize);
            for (dy, dx) in taps.clone() {
                let (ty, tx) = (y + dy, x + dx);
                if ty >= 0 && tx >= 0 && (ty as usize) < self.height && (tx as usize) < self.width {
                    out.cells[ty as usize * self.width + tx as usize] = true;
                }
            }
        }
        out
    }

    fn union(&mut self, other: &Grid) {
        for (a, &b) in self.cells.iter_mut().zip(&other.cells) {
            *a |= b;
        }
    }
}

/// Kernel taps as (row, column) offsets: every pair of the two ranges.
fn taps(
    dys: RangeInclusive<isize>,
    dxs: RangeInclusive<isize>,
) -> impl Iterator<Item = (isize, isize)> + Clone {
    dys.flat_map(move |dy| dxs.clone().map(move |dx| (dy, dx)))
}

/// The pixels that reach `target` through the network's connections: the
/// field derived from the architecture alone, by walking the layers backwards
/// over their (cropped) kernels.
pub fn structural_field(arch: &Arch, target: Pixel) -> Vec<bool> {
    let mut input = Grid::empty(arch);
    let mut hidden = Grid::empty(arch);
    hidden.cells[target_index(arch, target)] = true;
    // Positions of layer l's vertical pre-activation that matter (gated).
    let mut vertical = Grid::empty(arch);
    for l in (0..arch.layers()).rev() {
        let r = arch.radius_of(l) as isize;
        let left_end = if l == 0 { -1 } else { 0 };
        let left_taps = taps(0..=0, -r..=left_end);
        let mut below = if l == 0 { Grid::empty(arch) } else { hidden.clone() };
        let reads_left = hidden.reads(left_taps);
        match arch.variant {
            Variant::Gated => {
                // The link reads the vertical pre-activation one row up.
                vertical.union(&hidden.reads(taps(-1..=-1, 0..=0)));
                let reads_up = vertical.reads(taps(-r..=0, -r..=r));
                if l == 0 {
                    input.union(&reads_left);
                    input.union(&reads_up);
                } else {
                    below.union(&reads_left);
                }
                vertical = reads_up;
            }
            Variant::Plain => {
                let reads_above = hidden.reads(taps(-r..=-1, -r..=r));
                if l == 0 {
                    input.union(&reads_left);
                    input.union(&reads_above);
                } else {
                    below.union(&reads_left);
                    below.union(&reads_above);
                }
            }
        }
        hidden = below;
    }
    input.cells
}

/// The full field that the network's kernels span, as a network without a
/// blind spot would see it: the [`Arch::reach_up`] rows above the target,
/// [`Arch::reach`] columns to either side, and the `reach` pixels to its left.
pub fn full_field(arch: &Arch, target: Pixel) -> Vec<bool> {
    let reach = arch.reach();
    let mut cells = vec![false; arch.pixels()];
    for y in target.row.saturating_sub(arch.reach_up())..=target.row {
        for x in target.col.saturating_sub(reach)..arch.width.min(target.col + reach + 1) {
            if y < target.row || x < target.col {
                cells[y * arch.width + x] = true;
            }
        }
    }
    cells
}
