//! The int8 model's full forward pass: every layer over the whole image at
//! once, in the same integer arithmetic as [`crate::quant::IncrementalI8`] but none
//! of its caches (no rings, no left windows, no row-by-row links). The
//! incremental executor must equal it bit for bit at every pixel; a cache
//! bug cannot hide behind a tolerance.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::Error;
use crate::host::reference::check_image;
use crate::int8::{clamp_i16, quantize_level};
use crate::int8::{clamp_i8, clamp_pre, gate_i8};
use crate::params::TensorKind;
use crate::quant::weights::{QuantLayer, QuantWeights, RequantPoint};
use crate::state::check_class;

/// Wrapping int32 dot product, the arithmetic of every int8 kernel.
fn dot(w: &[i8], x: &[i8]) -> i32 {
    w.iter().zip(x).fold(0i32, |acc, (&a, &b)| acc.wrapping_add(i32::from(a) * i32::from(b)))
}

/// A layer's bias plus its class row, as the executor folds them.
fn with_class(
    layer: &QuantLayer<'_>,
    bias: TensorKind,
    class_kind: TensorKind,
    class: Option<usize>,
) -> Vec<i32> {
    let mut b = layer.bias(bias).to_vec();
    let n = b.len();
    for (b, c) in b.iter_mut().zip(layer.class_row(class_kind, class, n)) {
        *b = b.saturating_add(*c);
    }
    b
}

/// Logits (units of 1/256 nat) of every pixel of `image`, pixel-major.
///
/// # Errors
/// Image size, level and label errors, as [`crate::host::reference::forward`].
pub fn forward_i8(
    weights: &QuantWeights<'_>,
    image: &[u8],
    class: Option<usize>,
) -> Result<Vec<i32>, Error> {
    let arch = *weights.arch();
    check_image(&arch, image)?;
    check_class(&arch, class)?;
    let (h, w, p) = (arch.height, arch.width, arch.channels);
    let p2 = 2 * p;
    let pixels = arch.pixels();
    let img: Vec<i8> = image.iter().map(|&l| quantize_level(l, arch.levels)).collect();
    // The vertical stack's input (image, then the previous vertical gates)
    // and the horizontal stack's residual stream, `[pos][channel]`.
    let mut v_in: Vec<i8> = img.clone();
    let mut top: Vec<i8> = Vec::new();
    for l in 0..arch.layers() {
        let layer = weights.layer(l);
        let (r, k, cin) = (arch.radius_of(l), arch.kernel_of(l), arch.input_channels_of(l));
        let vbias = with_class(&layer, TensorKind::VBias, TensorKind::VClass, class);
        let hbias = with_class(&layer, TensorKind::HBias, TensorKind::HClass, class);
        let (vw, hw, lw, lb) = (
            layer.weight(TensorKind::VWeight),
            layer.weight(TensorKind::HWeight),
            layer.weight(TensorKind::LinkWeight),
            layer.bias(TensorKind::LinkBias),
        );
        let (gate_m, vlink_m, link_m, horiz_m) = (
            layer.requant(RequantPoint::VGate),
            layer.requant(RequantPoint::VLink),
            layer.requant(RequantPoint::Link),
            layer.requant(RequantPoint::Horizontal),
        );

        // Vertical stack at every position: rows y - r ..= y, columns
        // x - r ..= x + r. Its gates feed the next layer's vertical stack;
        // the link of row y + 1 comes from it (row 0's link sees nothing).
        let mut v_gates = vec![0i8; pixels * p];
        let mut links = vec![0i16; pixels * p2];
        for (o, link) in links[..w * p2].iter_mut().enumerate() {
            *link = clamp_i16(link_m.get(o % p2).apply(lb[o % p2]));
        }
        for y in 0..h {
            for x in 0..w {
                let mut pre = vec![0i16; p2];
                let mut link_in = vec![0i8; p2];
                for o in 0..p2 {
                    let mut acc = vbias[o];
                    for ky in 0..=r {
                        let Some(iy) = (y + ky).checked_sub(r) else { continue };
                        for kx in 0..k {
                            let Some(ix) = (x + kx).checked_sub(r).filter(|&ix| ix < w) else {
                                continue;
                            };
                            let wrow = &vw[((o * (r + 1) + ky) * k + kx) * cin..][..cin];
                            acc = acc.wrapping_add(dot(wrow, &v_in[(iy * w + ix) * cin..][..cin]));
                        }
                    }
                    pre[o] = clamp_pre(gate_m.get(o).apply(acc)) as i16;
                    link_in[o] = clamp_i8(vlink_m.get(o).apply(acc));
                }
                for c in 0..p {
                    v_gates[(y * w + x) * p + c] =
                        gate_i8(i32::from(pre[c]), i32::from(pre[p + c]));
                }
                if y + 1 < h {
                    for o in 0..p2 {
                        let acc = lb[o].wrapping_add(dot(&lw[o * p2..][..p2], &link_in));
                        links[((y + 1) * w + x) * p2 + o] = clamp_i16(link_m.get(o).apply(acc));
                    }
                }
            }
        }

        // Horizontal stack: the pixels left of the centre (layer 0, on the
        // image) or up to and including it (later layers, on the residual
        // stream), plus the link, gated; later layers add the residual.
        let mut next_top = vec![0i8; pixels * p];
        for pos in 0..pixels {
            let x = pos % w;
            let mut pre = vec![0i32; p2];
            for (o, pre) in pre.iter_mut().enumerate() {
                let mut acc = hbias[o];
                if l == 0 {
                    for kx in r.saturating_sub(x)..r {
                        let ix = x + kx - r;
                        let wv = hw[o * r + kx];
                        acc = acc.wrapping_add(i32::from(wv) * i32::from(img[pos - x + ix]));
                    }
                } else {
                    for kx in r.saturating_sub(x)..=r {
                        let ix = x + kx - r;
                        let wrow = &hw[(o * (r + 1) + kx) * p..][..p];
                        acc = acc.wrapping_add(dot(wrow, &top[(pos - x + ix) * p..][..p]));
                    }
                }
                let link = i32::from(links[pos * p2 + o]);
                *pre = clamp_pre(horiz_m.get(o).apply(acc).saturating_add(link));
            }
            let gated: Vec<i8> = (0..p).map(|c| gate_i8(pre[c], pre[p + c])).collect();
            let out = &mut next_top[pos * p..][..p];
            if l == 0 {
                out.copy_from_slice(&gated);
            } else {
                let (ow, ob) =
                    (layer.weight(TensorKind::OutWeight), layer.bias(TensorKind::OutBias));
                let (out_m, res_m) = (
                    layer.requant(RequantPoint::Out),
                    layer.requant(RequantPoint::Residual).get(0),
                );
                for (o, out) in out.iter_mut().enumerate() {
                    let acc = ob[o].wrapping_add(dot(&ow[o * p..][..p], &gated));
                    let residual = res_m.apply(i32::from(top[pos * p + o]));
                    *out = clamp_i8(residual.saturating_add(out_m.get(o).apply(acc)));
                }
            }
        }
        top = next_top;
        v_in = v_gates;
    }

    // The head, pixel by pixel.
    let head = weights.head();
    let (w1, b1, m1) = (
        head.weight(TensorKind::Head1Weight),
        head.bias(TensorKind::Head1Bias),
        head.requant(RequantPoint::Head1),
    );
    let (w2, b2, m2) = (
        head.weight(TensorKind::Head2Weight),
        head.bias(TensorKind::Head2Bias),
        head.requant(RequantPoint::Head2),
    );
    let mut logits = vec![0i32; pixels * arch.levels];
    for pos in 0..pixels {
        let t: Vec<i8> = top[pos * p..][..p].iter().map(|&v| v.max(0)).collect();
        let hidden: Vec<i8> = (0..arch.head)
            .map(|o| {
                clamp_i8(m1.get(o).apply(b1[o].wrapping_add(dot(&w1[o * p..][..p], &t)))).max(0)
            })
            .collect();
        for (o, logit) in logits[pos * arch.levels..][..arch.levels].iter_mut().enumerate() {
            let acc = b2[o].wrapping_add(dot(&w2[o * arch.head..][..arch.head], &hidden));
            *logit = m2.get(o).apply(acc);
        }
    }
    Ok(logits)
}
