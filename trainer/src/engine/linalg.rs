//! Matrix views over slices, the one matrix product every layer uses (the
//! `gemm` crate, single-threaded: threads split the batch instead), and the
//! im2col / col2im moves of cropped convolutions.
//!
//! Activations are pixel-major (HWC): row `pos = y * width + x` of a
//! `pixels × channels` matrix holds one pixel's channels.

/// A read-only `rows × cols` matrix: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major, rows `stride` elements apart.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Self {
        Mat { data, rows, cols, rs: stride, cs: 1 }
    }

    /// Dense row-major.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// The transpose (a view, nothing moves).
    pub fn t(self) -> Self {
        Mat { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    fn assert_in_bounds(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst = a · b`, or `dst += a · b` when `accumulate`; `dst` is dense
/// row-major `a.rows × b.cols`.
///
/// # Panics
/// On mismatched shapes or a view that reaches past its slice.
pub fn matmul(dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, accumulate: bool) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert_eq!(dst.len(), m * n, "destination size");
    a.assert_in_bounds();
    b.assert_in_bounds();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    // Safety: both views were checked to stay inside their slices, `dst`
    // holds exactly m × n elements written with row stride n, and the
    // borrow checker keeps `dst` apart from `a` and `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `dst[i][j] += bias[j]` for every row of a dense `rows × bias.len()` matrix.
pub fn add_row_vector(dst: &mut [f32], bias: &[f32]) {
    for row in dst.chunks_exact_mut(bias.len()) {
        for (d, b) in row.iter_mut().zip(bias) {
            *d += b;
        }
    }
}

/// `sums[j] += Σ_i m[i][j]` over a dense `rows × sums.len()` matrix.
pub fn add_column_sums(sums: &mut [f32], m: &[f32]) {
    for row in m.chunks_exact(sums.len()) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
}

/// A cropped convolution window: tap `(ky, kx)` of output pixel `(y, x)`
/// reads input pixel `(y + top + ky, x + left + kx)`, zero outside the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Input channels.
    pub channels: usize,
    /// Kernel rows.
    pub rows: usize,
    /// Kernel columns.
    pub cols: usize,
    /// Row offset of the first tap (≤ 0 for causal windows).
    pub top: isize,
    /// Column offset of the first tap.
    pub left: isize,
}

impl Window {
    /// Length of one im2col row: `rows · cols · channels`, in the weights'
    /// `[kh][kw][in]` order.
    pub fn patch(&self) -> usize {
        self.rows * self.cols * self.channels
    }

    /// For output column `x`: the first valid tap column, the number of valid
    /// taps, and the first input column they read.
    fn valid_cols(&self, x: usize) -> (usize, usize, usize) {
        let start = x as isize + self.left;
        let lo = start.max(0);
        let hi = (start + self.cols as isize).min(self.width as isize);
        if hi <= lo {
            return (0, 0, 0);
        }
        ((lo - start) as usize, (hi - lo) as usize, lo as usize)
    }

    /// Fills `col` (`pixels × patch`) with every output pixel's input patch.
    pub fn im2col(&self, input: &[f32], col: &mut [f32]) {
        let (c, patch, run) = (self.channels, self.patch(), self.cols * self.channels);
        assert_eq!(input.len(), self.height * self.width * c);
        assert_eq!(col.len(), self.height * self.width * patch);
        for y in 0..self.height {
            for x in 0..self.width {
                let out = &mut col[(y * self.width + x) * patch..][..patch];
                let (first, count, ix) = self.valid_cols(x);
                for ky in 0..self.rows {
                    let dst = &mut out[ky * run..][..run];
                    let iy = y as isize + self.top + ky as isize;
                    if iy < 0 || iy >= self.height as isize || count == 0 {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &input[(iy as usize * self.width + ix) * c..][..count * c];
                    dst[..first * c].fill(0.0);
                    dst[first * c..(first + count) * c].copy_from_slice(src);
                    dst[(first + count) * c..].fill(0.0);
                }
            }
        }
    }

    /// The adjoint of [`Window::im2col`]: adds every patch gradient in `dcol`
    /// back onto the input pixels it was read from.
    pub fn col2im_add(&self, dcol: &[f32], dinput: &mut [f32]) {
        let (c, patch, run) = (self.channels, self.patch(), self.cols * self.channels);
        assert_eq!(dinput.len(), self.height * self.width * c);
        assert_eq!(dcol.len(), self.height * self.width * patch);
        for y in 0..self.height {
            for x in 0..self.width {
                let src = &dcol[(y * self.width + x) * patch..][..patch];
                let (first, count, ix) = self.valid_cols(x);
                if count == 0 {
                    continue;
                }
                for ky in 0..self.rows {
                    let iy = y as isize + self.top + ky as isize;
                    if iy < 0 || iy >= self.height as isize {
                        continue;
                    }
                    let dst = &mut dinput[(iy as usize * self.width + ix) * c..][..count * c];
                    for (d, s) in dst.iter_mut().zip(&src[ky * run + first * c..]) {
                        *d += s;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_matches_the_definition_with_transposed_views() {
        let a: Vec<f32> = (0..6).map(|i| i as f32).collect(); // 2×3
        let b: Vec<f32> = (0..12).map(|i| (i as f32) * 0.5 - 2.0).collect(); // 4×3, used as 3×4 via t()
        let mut dst = vec![1.0; 8];
        matmul(&mut dst, Mat::dense(&a, 2, 3), Mat::dense(&b, 4, 3).t(), true);
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[i * 3 + k] * b[j * 3 + k]).sum::<f32>();
                assert_eq!(dst[i * 4 + j], want);
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), d> == <x, col2im(d)> for every window shape.
        for (rows, cols, top, left) in [(2, 3, -1, -1), (1, 2, 0, -2), (4, 7, -3, -3), (1, 1, 0, 0)]
        {
            let w = Window { height: 5, width: 6, channels: 2, rows, cols, top, left };
            let x: Vec<f32> = (0..60).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
            let d: Vec<f32> = (0..30 * w.patch()).map(|i| ((i * 5 % 13) as f32) - 6.0).collect();
            let mut col = vec![0.0; d.len()];
            w.im2col(&x, &mut col);
            let mut dx = vec![0.0; x.len()];
            w.col2im_add(&d, &mut dx);
            let lhs: f32 = col.iter().zip(&d).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "window {w:?}");
        }
    }

    #[test]
    fn im2col_reads_zero_outside_the_image() {
        let w = Window { height: 2, width: 3, channels: 1, rows: 2, cols: 3, top: -1, left: -1 };
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut col = vec![9.0; 6 * 6];
        w.im2col(&x, &mut col);
        // Pixel (1, 0): the row above reads [0, 1, 2], its own row [0, 4, 5].
        assert_eq!(&col[3 * 6..4 * 6], &[0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
        // Pixel (0, 2): no row above; its own row reads [2, 3, 0].
        assert_eq!(&col[2 * 6..3 * 6], &[0.0, 0.0, 0.0, 2.0, 3.0, 0.0]);
    }
}
