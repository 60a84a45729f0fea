//! A small digit classifier, a 784 → 256 → 10 MLP on binarized images, that
//! checks whether class-conditional samples look like the class they were
//! drawn for. It trains in seconds on the engine's `gemm` and Adam, from a
//! fixed seed, so its verdicts are repeatable.

use pixelcnn_runtime::rng;
use rand_core::RngCore;

use crate::data::{self, Images};
use crate::engine::linalg::{add_column_sums, add_row_vector, matmul, Mat};
use crate::engine::Adam;

const HIDDEN: usize = 256;
const BATCH: usize = 128;
const LR: f64 = 1e-3;

/// An MLP over `pixels` inputs (levels scaled to `0..=1`) with `classes` outputs.
#[derive(Clone, Debug)]
pub struct Classifier {
    pixels: usize,
    classes: usize,
    /// `[w1: HIDDEN × pixels][b1: HIDDEN][w2: classes × HIDDEN][b2: classes]`.
    params: Vec<f32>,
}

impl Classifier {
    fn ranges(&self) -> [std::ops::Range<usize>; 4] {
        let (a, b) = (HIDDEN * self.pixels, HIDDEN * self.pixels + HIDDEN);
        let c = b + self.classes * HIDDEN;
        [0..a, a..b, b..c, c..c + self.classes]
    }

    /// Trains on grey `images` (256 levels, labelled) for `epochs` epochs.
    /// Every epoch binarizes each image anew (Bernoulli of its grey level)
    /// and shifts it by up to two pixels, so the classifier judges shapes,
    /// not one draw of stroke noise or one position.
    ///
    /// # Errors
    /// When the images have no labels or are not grey.
    pub fn train(images: &Images, epochs: usize, seed: u64) -> anyhow::Result<Classifier> {
        anyhow::ensure!(images.levels == 256, "the classifier trains on grey images");
        let labels = images
            .labels
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the classifier needs labelled images"))?;
        let (pixels, classes) = (images.height * images.width, images.classes.max(1));
        let mut r = rng::from_seed(seed);
        let mut c = Classifier { pixels, classes, params: Vec::new() };
        for (fan_in, n) in
            [(pixels, HIDDEN * pixels), (1, HIDDEN), (HIDDEN, classes * HIDDEN), (1, classes)]
        {
            let scale = if fan_in == 1 { 0.0 } else { (3.0 / fan_in as f32).sqrt() };
            c.params.extend((0..n).map(|_| (rng::uniform_f32(&mut r) * 2.0 - 1.0) * scale));
        }
        let ranges = c.ranges();
        let mut adam = Adam::new(c.params.len());
        let mut grads = vec![0.0f32; c.params.len()];
        let mut order: Vec<usize> = (0..images.len()).collect();
        let mut x = vec![0.0f32; BATCH * pixels];
        let (mut h, mut dh) = (vec![0.0f32; BATCH * HIDDEN], vec![0.0f32; BATCH * HIDDEN]);
        let mut z = vec![0.0f32; BATCH * classes];
        for _ in 0..epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, (r.next_u32() as usize) % (i + 1));
            }
            for chunk in order.chunks_exact(BATCH) {
                c.fill_inputs(images, chunk, &mut x, &mut r);
                c.forward(&x, &mut h, &mut z);
                // z becomes d(mean cross-entropy)/dz.
                for (row, &i) in z.chunks_exact_mut(classes).zip(chunk) {
                    softmax(row);
                    row[usize::from(labels[i])] -= 1.0;
                    row.iter_mut().for_each(|v| *v /= BATCH as f32);
                }
                grads.fill(0.0);
                let [w1, _, w2, _] = ranges.clone();
                let (g1, rest) = grads.split_at_mut(w1.end);
                let (gb1, rest) = rest.split_at_mut(HIDDEN);
                let (g2, gb2) = rest.split_at_mut(w2.len());
                matmul(
                    g2,
                    Mat::dense(&z, BATCH, classes).t(),
                    Mat::dense(&h, BATCH, HIDDEN),
                    false,
                );
                add_column_sums(gb2, &z);
                matmul(
                    &mut dh,
                    Mat::dense(&z, BATCH, classes),
                    Mat::dense(&c.params[w2], classes, HIDDEN),
                    false,
                );
                for (d, &v) in dh.iter_mut().zip(&h) {
                    if v <= 0.0 {
                        *d = 0.0;
                    }
                }
                matmul(
                    g1,
                    Mat::dense(&dh, BATCH, HIDDEN).t(),
                    Mat::dense(&x, BATCH, pixels),
                    false,
                );
                add_column_sums(gb1, &dh);
                adam.step(&mut c.params, &grads, &ranges, LR, f32::INFINITY);
            }
        }
        Ok(c)
    }

    /// Binarized, shifted copies of grey images `indices` as inputs.
    fn fill_inputs(&self, images: &Images, indices: &[usize], x: &mut [f32], r: &mut rng::Rng) {
        let (h, w) = (images.height as isize, images.width as isize);
        for (row, &i) in x.chunks_exact_mut(self.pixels).zip(indices) {
            let binary = data::to_levels(
                images.image(i),
                2,
                u64::from(r.next_u32()) << 32 | u64::from(r.next_u32()),
            );
            let (dy, dx) = ((r.next_u32() % 5) as isize - 2, (r.next_u32() % 5) as isize - 2);
            for y in 0..h {
                for x in 0..w {
                    let (sy, sx) = (y - dy, x - dx);
                    let inside = (0..h).contains(&sy) && (0..w).contains(&sx);
                    row[(y * w + x) as usize] =
                        if inside { f32::from(binary[(sy * w + sx) as usize]) } else { 0.0 };
                }
            }
        }
    }

    fn forward(&self, x: &[f32], h: &mut [f32], z: &mut [f32]) {
        let [w1, b1, w2, b2] = self.ranges();
        let n = x.len() / self.pixels;
        matmul(
            h,
            Mat::dense(x, n, self.pixels),
            Mat::dense(&self.params[w1], HIDDEN, self.pixels).t(),
            false,
        );
        add_row_vector(h, &self.params[b1]);
        h.iter_mut().for_each(|v| *v = v.max(0.0));
        matmul(
            z,
            Mat::dense(h, n, HIDDEN),
            Mat::dense(&self.params[w2], self.classes, HIDDEN).t(),
            false,
        );
        add_row_vector(z, &self.params[b2]);
    }

    /// The most likely class of each image (levels of `levels` levels).
    pub fn predict(&self, images: &[Vec<u8>], levels: usize) -> Vec<usize> {
        let scale = 1.0 / (levels - 1) as f32;
        let x: Vec<f32> =
            images.iter().flat_map(|i| i.iter().map(move |&l| f32::from(l) * scale)).collect();
        let n = images.len();
        let (mut h, mut z) = (vec![0.0f32; n * HIDDEN], vec![0.0f32; n * self.classes]);
        self.forward(&x, &mut h, &mut z);
        z.chunks_exact(self.classes)
            .map(|row| {
                row.iter().enumerate().fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
            })
            .collect()
    }

    /// The share of `images` whose predicted class is their label.
    pub fn accuracy(&self, images: &Images) -> f64 {
        let all: Vec<Vec<u8>> = (0..images.len()).map(|i| images.image(i).to_vec()).collect();
        let predicted = self.predict(&all, images.levels);
        let right =
            predicted.iter().enumerate().filter(|&(i, &p)| images.label(i) == Some(p)).count();
        right as f64 / images.len().max(1) as f64
    }
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}
