//! Adam with per-tensor gradient-norm clipping, fused into one pass over
//! each tensor. The same rule as burn's `Adam` with `GradientClipping::Norm`:
//! a tensor's gradient whose L2 norm exceeds `clip` is scaled to `clip`.

use std::ops::Range;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f32 = 1e-8;

/// Adam's moments and step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// First moments, one per parameter.
    pub m: Vec<f32>,
    /// Second moments, one per parameter.
    pub v: Vec<f32>,
    /// Updates done.
    pub steps: u64,
}

impl Adam {
    /// Fresh state for `n` parameters.
    pub fn new(n: usize) -> Self {
        Adam { m: vec![0.0; n], v: vec![0.0; n], steps: 0 }
    }

    /// One update of `params` from `grads`, tensor by tensor.
    ///
    /// # Panics
    /// If the lengths of `params`, `grads` and the state differ.
    pub fn step(
        &mut self,
        params: &mut [f32],
        grads: &[f32],
        tensors: &[Range<usize>],
        lr: f64,
        clip: f32,
    ) {
        assert!(params.len() == grads.len() && grads.len() == self.m.len());
        self.steps += 1;
        let t = self.steps as i32;
        let correct1 = (1.0 - BETA1.powi(t)) as f32;
        let correct2 = (1.0 - BETA2.powi(t)) as f32;
        let (b1, b2, lr) = (BETA1 as f32, BETA2 as f32, lr as f32);
        for range in tensors {
            let g = &grads[range.clone()];
            let norm = g.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt() as f32;
            let coef = (clip / (norm + f32::MIN_POSITIVE)).min(1.0);
            let (p, m, v) = (
                &mut params[range.clone()],
                &mut self.m[range.clone()],
                &mut self.v[range.clone()],
            );
            for i in 0..g.len() {
                let gi = g[i] * coef;
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                let m_hat = m[i] / correct1;
                let v_hat = v[i] / correct2;
                p[i] -= lr * m_hat / (v_hat.sqrt() + EPSILON);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_step_moves_each_parameter_by_lr_against_its_gradient_sign() {
        // After one step m̂ = g and v̂ = g², so the update is lr · g / |g|.
        let mut adam = Adam::new(3);
        let mut p = vec![1.0, 1.0, 1.0];
        let whole = [Range { start: 0, end: 3 }];
        adam.step(&mut p, &[0.5, -0.25, 0.0], &whole, 0.1, 10.0);
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6 && p[2] == 1.0, "{p:?}");
    }

    #[test]
    fn a_tensor_gradient_above_the_clip_is_scaled_to_it() {
        let (mut a, mut b) = (Adam::new(2), Adam::new(2));
        let (mut p, mut q) = (vec![0.0; 2], vec![0.0; 2]);
        let whole = [Range { start: 0, end: 2 }];
        a.step(&mut p, &[30.0, 40.0], &whole, 0.1, 5.0);
        b.step(&mut q, &[3.0, 4.0], &whole, 0.1, 5.0);
        assert_eq!(a.m, b.m);
        assert_eq!(p, q);
    }
}
