//! Sample grids drawn with the runtime's incremental sampler: what a user
//! will get from the exported model.

use std::path::Path;

use pixelcnn_runtime::{rng, sampler, Arch, Incremental, Weights};

use crate::plot::save_grid;

/// Samples `per_row` images for each class (one row per class, or four rows
/// for unconditional models) and saves them as a PNG grid.
pub fn save_sample_grid(
    arch: &Arch,
    params: &[f32],
    path: &Path,
    per_row: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let weights = Weights::new(*arch, params)?;
    let mut state = vec![0.0f32; arch.state_len()];
    let classes: Vec<Option<usize>> =
        if arch.classes > 0 { (0..arch.classes).map(Some).collect() } else { vec![None; 4] };
    let mut inc = Incremental::new(&weights, &mut state, classes[0])?;
    let mut rows = Vec::new();
    for (r, &class) in classes.iter().enumerate() {
        let mut row = Vec::new();
        for i in 0..per_row {
            let mut image = vec![0u8; arch.pixels()];
            let mut g =
                rng::from_seed(seed.wrapping_mul(1000).wrapping_add((r * per_row + i) as u64));
            sampler::generate(&mut inc, class, 1.0, &mut g, &mut image)?;
            row.push(image);
        }
        rows.push(row);
    }
    save_grid(path, &rows, arch.height, arch.width, arch.levels, 2)
}
