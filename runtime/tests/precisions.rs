//! f16 and int8 executors against the float reference: f16 computes the
//! same function as f32 on f16-rounded weights; int8 is causal and tracks
//! the float logits.

use pixelcnn_runtime::quant::calibrate::{quantize, Calibration};
use pixelcnn_runtime::random_weights::random_params;
use pixelcnn_runtime::{f16, reference, Arch, Incremental, IncrementalI8, Variant, Weights};

fn archs() -> Vec<Arch> {
    let a = Arch {
        variant: Variant::Gated,
        height: 6,
        width: 7,
        levels: 4,
        classes: 3,
        channels: 4,
        blocks: 2,
        first_kernel: 5,
        kernel: 3,
        head: 5,
    };
    vec![
        a,
        Arch { classes: 0, levels: 2, ..a },
        Arch { kernel: 1, blocks: 3, ..a },
        Arch { height: 2, width: 3, first_kernel: 7, ..a },
    ]
}

fn image(arch: &Arch, seed: usize) -> Vec<u8> {
    (0..arch.pixels()).map(|p| ((p * 7 + seed * 13) % 11 % arch.levels) as u8).collect()
}

fn class(arch: &Arch) -> Option<usize> {
    (arch.classes > 0).then(|| arch.classes - 1)
}

#[test]
fn f16_incremental_equals_the_reference_on_rounded_weights() {
    for (seed, arch) in archs().into_iter().enumerate() {
        let params = random_params(&arch, seed as u64);
        let halves: Vec<f16> = params.iter().map(|&w| f16::from_f32(w)).collect();
        let rounded: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
        let want = reference::forward(
            &Weights::new(arch, &rounded).unwrap(),
            &image(&arch, 1),
            class(&arch),
        )
        .unwrap();
        let weights = Weights::new(arch, &halves).unwrap();
        let mut state = vec![0.0f32; arch.state_len()];
        let mut inc = Incremental::new(&weights, &mut state, class(&arch)).unwrap();
        for (pos, &level) in image(&arch, 1).iter().enumerate() {
            let got = inc.logits().unwrap();
            for (k, g) in got.iter().enumerate() {
                let w = want[pos * arch.levels + k];
                assert!((g - w).abs() < 1e-4, "{arch:?} pixel {pos}: {g} vs {w}");
            }
            inc.push(level).unwrap();
        }
    }
}

fn quantized(arch: &Arch, seed: u64) -> (Vec<f32>, pixelcnn_runtime::quant::calibrate::QuantModel) {
    let params = random_params(arch, seed);
    let weights = Weights::new(*arch, &params).unwrap();
    let mut cal = Calibration::new(arch);
    for s in 0..4 {
        cal.observe(&weights, &image(arch, s), class(arch)).unwrap();
    }
    let model = quantize(&weights, &cal).unwrap();
    (params, model)
}

fn int8_logits(
    weights: &pixelcnn_runtime::QuantWeights<'_>,
    img: &[u8],
    cls: Option<usize>,
) -> Vec<i32> {
    let arch = *weights.arch();
    let mut state = vec![0i32; arch.quant_state_words()];
    let mut inc = IncrementalI8::new(weights, &mut state, cls).unwrap();
    let mut out = Vec::new();
    for &level in img {
        out.extend_from_slice(inc.logits().unwrap());
        inc.push(level).unwrap();
    }
    out
}

#[test]
fn int8_is_causal() {
    for (seed, arch) in archs().into_iter().enumerate() {
        let (_, model) = quantized(&arch, seed as u64 + 10);
        let weights = model.view().unwrap();
        let base = image(&arch, 2);
        let logits = int8_logits(&weights, &base, class(&arch));
        let k = arch.levels;
        // Changing pixel t (and everything after) leaves pixels 0..=t alone.
        for t in 0..arch.pixels() {
            let mut other = base.clone();
            for v in &mut other[t..] {
                *v = (*v + 1) % k as u8;
            }
            let changed = int8_logits(&weights, &other, class(&arch));
            assert_eq!(logits[..(t + 1) * k], changed[..(t + 1) * k], "{arch:?}: pixel {t}");
        }
    }
}

#[test]
fn int8_logits_track_the_float_logits() {
    for (seed, arch) in archs().into_iter().enumerate() {
        let (params, model) = quantized(&arch, seed as u64 + 20);
        let img = image(&arch, 3);
        let want =
            reference::forward(&Weights::new(arch, &params).unwrap(), &img, class(&arch)).unwrap();
        let got = int8_logits(&model.view().unwrap(), &img, class(&arch));
        let spread = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let mean_err = want
            .iter()
            .zip(&got)
            .map(|(w, &g)| (w - g as f32 / pixelcnn_runtime::quant::LOGIT_SCALE).abs())
            .sum::<f32>()
            / want.len() as f32;
        assert!(
            mean_err < 0.05 * spread.max(1.0),
            "{arch:?}: mean error {mean_err}, range {spread}"
        );
    }
}

#[test]
fn the_quantizer_writes_each_multiplier_where_the_executor_reads_it() {
    use pixelcnn_runtime::quant::weights::{requant_range, RequantPoint};
    const POINTS: [RequantPoint; 8] = [
        RequantPoint::VGate,
        RequantPoint::VLink,
        RequantPoint::Horizontal,
        RequantPoint::Link,
        RequantPoint::Out,
        RequantPoint::Residual,
        RequantPoint::Head1,
        RequantPoint::Head2,
    ];
    for (seed, arch) in archs().into_iter().enumerate() {
        let (_, model) = quantized(&arch, seed as u64);
        let view = model.view().unwrap();
        let layers = (0..arch.layers()).map(Some).chain([None]);
        let mut covered = vec![false; model.requant.len() / 2];
        for layer in layers {
            let q = match layer {
                Some(l) => view.layer(l),
                None => view.head(),
            };
            for point in POINTS {
                let range = requant_range(&arch, layer, point);
                let read = q.requant(point);
                assert_eq!(read.len(), range.len(), "{point:?} of {layer:?}");
                for (i, index) in range.enumerate() {
                    let m = read.get(i);
                    let written = &model.requant[2 * index..2 * index + 2];
                    assert_eq!([m.multiplier, i32::from(m.shift)], written, "{point:?} {layer:?}");
                    assert!(!covered[index], "entry {index} written twice");
                    covered[index] = true;
                }
            }
        }
        assert!(covered.iter().all(|&c| c), "{arch:?}: an entry no point owns");
    }
}
