//! The trainer's burn network computes what the runtime's reference executor
//! computes on the same parameters: the two implementations of one
//! architecture cannot drift apart. Needs the `burn` feature (CI runs it).
#![cfg(feature = "burn")]

use burn::tensor::Device;
use pixelcnn_runtime::random_weights::random_params;
use pixelcnn_runtime::{reference, Arch, Variant, Weights};
use pixelcnn_trainer::model::{forward, Batch, Layout, Net};

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
        Arch { variant: Variant::Plain, ..base },
        Arch { variant: Variant::Plain, classes: 0, blocks: 1, first_kernel: 7, ..base },
        Arch { kernel: 5, blocks: 1, levels: 16, ..base },
    ]
}

#[test]
fn burn_forward_equals_runtime_reference() {
    let device = Device::flex();
    for (seed, arch) in archs().into_iter().enumerate() {
        let params = random_params(&arch, seed as u64);
        let weights = Weights::new(arch, &params).unwrap();
        let layout = Layout::new(arch);
        let net = Net::from_flat(&arch, &params, &device);
        let images: Vec<Vec<u8>> = (0..3)
            .map(|b| {
                (0..arch.pixels()).map(|i| ((i * 7 + b * 3 + seed) % arch.levels) as u8).collect()
            })
            .collect();
        let labels: Vec<Option<usize>> =
            (0..3).map(|b| (arch.classes > 0).then(|| b % arch.classes)).collect();
        let refs: Vec<&[u8]> = images.iter().map(|i| i.as_slice()).collect();
        let batch = Batch::new(
            &arch,
            &refs,
            (arch.classes > 0).then(|| labels.iter().map(|l| l.unwrap() as i64).collect()),
            &device,
        );
        let logits: Vec<f32> =
            forward(&layout, &net, batch.x, batch.labels).try_into_vec_as::<f32>().unwrap();
        let (k, n) = (arch.levels, arch.pixels());
        for b in 0..3 {
            let expected = reference::forward(&weights, &images[b], labels[b]).unwrap();
            for pos in 0..n {
                for level in 0..k {
                    let got = logits[(b * k + level) * n + pos];
                    let want = expected[pos * k + level];
                    assert!(
                        (got - want).abs() <= 1e-4,
                        "{arch:?} image {b} pixel {pos} level {level}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn parameters_round_trip_through_the_network() {
    let arch = archs()[0];
    let params = random_params(&arch, 3);
    let net = Net::from_flat(&arch, &params, &Device::flex());
    assert_eq!(net.to_flat(), params);
}
