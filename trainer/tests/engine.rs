//! The CPU training engine against the two independent implementations of
//! the same network: its logits equal the runtime's reference executor, and
//! its loss and every parameter's gradient equal burn's autodiff (with the
//! `burn` feature, as CI runs them), on small random architectures of both
//! variants, with and without classes, K = 2 and K > 2.

#[cfg(feature = "burn")]
use burn::tensor::Device;
use pixelcnn_runtime::random_weights::random_params;
use pixelcnn_runtime::{reference, Arch, Variant, Weights};
use pixelcnn_trainer::engine::{Engine, Example};
#[cfg(feature = "burn")]
use pixelcnn_trainer::model::{forward, nats_per_image, Batch, Layout, Net};

fn archs() -> Vec<Arch> {
    let base = Arch {
        variant: Variant::Gated,
        height: 7,
        width: 6,
        levels: 3,
        classes: 4,
        channels: 5,
        blocks: 2,
        first_kernel: 5,
        kernel: 3,
        head: 6,
    };
    vec![
        base,
        Arch { classes: 0, levels: 2, first_kernel: 3, ..base },
        Arch { kernel: 1, blocks: 3, levels: 2, ..base },
        Arch { kernel: 5, blocks: 1, levels: 16, height: 4, width: 9, ..base },
        Arch { variant: Variant::Plain, ..base },
        Arch { variant: Variant::Plain, classes: 0, levels: 2, blocks: 1, first_kernel: 7, ..base },
    ]
}

struct Case {
    arch: Arch,
    params: Vec<f32>,
    images: Vec<Vec<u8>>,
    labels: Vec<Option<usize>>,
}

fn case(arch: Arch, seed: usize) -> Case {
    let images = (0..5)
        .map(|b| {
            (0..arch.pixels())
                .map(|i| ((i * 7 + b * 5 + seed + i / 3) % arch.levels) as u8)
                .collect()
        })
        .collect();
    let labels = (0..5).map(|b| (arch.classes > 0).then(|| (b + seed) % arch.classes)).collect();
    Case { arch, params: random_params(&arch, seed as u64), images, labels }
}

impl Case {
    fn examples(&self) -> Vec<Example<'_>> {
        self.images
            .iter()
            .zip(&self.labels)
            .map(|(i, &label)| Example { levels: i, label })
            .collect()
    }

    /// burn's mean NLL and flat gradient on the same batch.
    #[cfg(feature = "burn")]
    fn burn(&self) -> (f64, Vec<f32>) {
        let device = Device::flex().autodiff();
        let net = Net::from_flat(&self.arch, &self.params, &device);
        let refs: Vec<&[u8]> = self.images.iter().map(|i| i.as_slice()).collect();
        let labels = (self.arch.classes > 0)
            .then(|| self.labels.iter().map(|l| l.unwrap() as i64).collect());
        let batch = Batch::new(&self.arch, &refs, labels, &device);
        let loss = nats_per_image(
            forward(&Layout::new(self.arch), &net, batch.x, batch.labels),
            batch.levels,
        );
        let value = f64::from(loss.clone().into_scalar::<f32>());
        (value, net.grads_to_flat(&loss.backward()))
    }
}

#[test]
fn engine_logits_equal_the_runtime_reference() {
    for (seed, arch) in archs().into_iter().enumerate() {
        let c = case(arch, seed);
        let weights = Weights::new(arch, &c.params).unwrap();
        let mut engine = Engine::new(arch, 1).unwrap();
        for ex in c.examples() {
            let got = engine.logits(&c.params, ex).unwrap();
            let want = reference::forward(&weights, ex.levels, ex.label).unwrap();
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst <= 1e-5, "{arch:?}: logits differ by {worst}");
        }
    }
}

#[cfg(feature = "burn")]
#[test]
fn engine_gradients_equal_burn_autodiff() {
    for (seed, arch) in archs().into_iter().enumerate() {
        let c = case(arch, seed);
        let (burn_loss, burn_grads) = c.burn();
        for threads in [1, 2] {
            let mut engine = Engine::new(arch, threads).unwrap();
            let index = engine.index().tensors().to_vec();
            let (loss, grads) = engine.gradient(&c.params, &c.examples()).unwrap();
            assert!(
                (loss - burn_loss).abs() <= 1e-4 * burn_loss.abs().max(1.0),
                "{arch:?}: loss {loss} vs burn {burn_loss}"
            );
            for (spec, range) in arch.tensors().zip(index) {
                let (a, b) = (&grads[range.clone()], &burn_grads[range]);
                let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                assert!(
                    worst <= 1e-4 * scale.max(1e-2),
                    "{arch:?} {:?} {:?}: gradient differs by {worst} (largest {scale})",
                    spec.layer,
                    spec.kind
                );
                assert!(scale > 0.0, "{:?} {:?} has no gradient at all", spec.layer, spec.kind);
            }
        }
    }
}

/// The gradient against central finite differences of the loss: an
/// oracle that needs no second implementation, so it runs in every build
/// (burn's autodiff, above, checks every entry to 1e-4 with the `burn`
/// feature). Each tensor's three largest-gradient entries are checked; the
/// network has ReLUs, and an entry next to a kink gets a meaningless
/// difference, so the median of the three must agree (to 6%: ReLU kinks near a bias
/// bend the differences of this small random network by a few percent).
#[test]
fn engine_gradients_match_finite_differences() {
    const H: f32 = 1e-3;
    for (seed, arch) in archs().into_iter().enumerate() {
        let c = case(arch, seed);
        let mut engine = Engine::new(arch, 1).unwrap();
        let index = engine.index().tensors().to_vec();
        let grads = engine.gradient(&c.params, &c.examples()).unwrap().1.to_vec();
        let mut difference = |at: usize| {
            let mut loss_at = |v: f32| {
                let mut p = c.params.clone();
                p[at] = v;
                let nll = engine.nll(&p, &c.examples()).unwrap();
                nll.iter().sum::<f64>() / nll.len() as f64
            };
            let (up, down) = (loss_at(c.params[at] + H), loss_at(c.params[at] - H));
            ((up - down) / (2.0 * f64::from(H))) as f32
        };
        for (spec, range) in arch.tensors().zip(index) {
            let mut order: Vec<usize> = range.clone().collect();
            order.sort_by(|&a, &b| grads[b].abs().total_cmp(&grads[a].abs()));
            let mut errors: Vec<(f32, usize, f32)> = order
                .iter()
                .take(3)
                .map(|&at| {
                    let (g, fd) = (grads[at], difference(at));
                    ((fd - g).abs() / (g.abs() + 0.05), at, fd)
                })
                .collect();
            errors.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (error, at, fd) = errors[errors.len() / 2];
            assert!(
                error <= 0.06,
                "{arch:?} {:?} {:?}[{}]: gradient {}, finite difference {fd}",
                spec.layer,
                spec.kind,
                at - range.start,
                grads[at]
            );
        }
    }
}

#[test]
fn threads_split_the_batch_without_changing_the_result() {
    let c = case(archs()[0], 9);
    let (l1, g1) = {
        let mut e = Engine::new(c.arch, 1).unwrap();
        let (l, g) = e.gradient(&c.params, &c.examples()).unwrap();
        (l, g.to_vec())
    };
    let mut e = Engine::new(c.arch, 3).unwrap();
    let (l3, g3) = e.gradient(&c.params, &c.examples()).unwrap();
    assert!((l1 - l3).abs() < 1e-9 * l1.abs());
    let worst = g1.iter().zip(g3).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{worst}");
    let nll = e.nll(&c.params, &c.examples()).unwrap();
    assert_eq!(nll.len(), 5);
    assert!((nll.iter().sum::<f64>() / 5.0 - l1).abs() < 1e-6 * l1);
}

#[test]
fn bad_examples_get_an_error_not_a_panic() {
    let c = case(archs()[0], 1);
    let mut e = Engine::new(c.arch, 2).unwrap();
    let short = vec![0u8; 3];
    let err = e.nll(&c.params, &[Example { levels: &short, label: Some(0) }]).unwrap_err();
    assert!(err.to_string().contains("has 3 pixels, the model expects 42"), "{err}");
    let img = &c.images[0];
    let err = e.nll(&c.params, &[Example { levels: img, label: Some(4) }]).unwrap_err();
    assert!(err.to_string().contains("label 4; the model knows classes 0 to 3"), "{err}");
    let err = e.nll(&c.params, &[Example { levels: img, label: None }]).unwrap_err();
    assert!(err.to_string().contains("no label"), "{err}");
    let high = vec![3u8; 42];
    let err = e.nll(&c.params, &[Example { levels: &high, label: Some(0) }]).unwrap_err();
    assert!(err.to_string().contains("level 3 at pixel 0"), "{err}");
    let err = e.nll(&c.params[1..], &[Example { levels: img, label: Some(0) }]).unwrap_err();
    assert!(err.to_string().contains("parameters"), "{err}");
}
