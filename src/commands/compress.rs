//! `pixelcnn compress`: lossless compression of images with the int8 model
//! as the entropy model, into a `.pcnz` container (`docs/compression.md`).
//!
//! Output contract (`--json`), relied on by scripts:
//! `{"images": …, "bytes": …, "bytes_per_image": …, "nll_bits_per_image": …}`.

use std::io::Write as _;
use std::time::Instant;

use anyhow::{bail, Context};
use pixelcnn_runtime::codec::{self, container};
use pixelcnn_runtime::{IncrementalI8, Model, QuantWeights};

use crate::cli::CompressArgs;
use crate::{images, model_file};

/// The longest stream a digit can need: every pixel at the least likely
/// level costs at most 16 bits, plus the class and the termination.
fn max_stream(pixels: usize) -> usize {
    2 * pixels + 16
}

/// The int8 weights of a loaded model, or why it cannot compress.
pub fn int8<'a, 'm>(model: &'a Model<'m>) -> anyhow::Result<&'a QuantWeights<'m>> {
    match model {
        Model::Int8(q) => Ok(q),
        _ => bail!(
            "compression codes pixels with the integer-only int8 model, so files decode the same \
             on every machine: give an int8 .pcnn (`pixelcnn convert --precision int8`) or add \
             --precision int8"
        ),
    }
}

pub fn run(args: &CompressArgs) -> anyhow::Result<()> {
    if args.out.as_os_str() != "-" {
        crate::output::check(&args.out, "pcnz", &[args.model.model.as_path()])?;
    }
    let file = model_file::load(&args.model)?;
    let model = file.model()?;
    let q = int8(&model)?;
    let arch = *q.arch();
    let class = args.data.class.as_deref().map(|c| file.class(c, arch.classes)).transpose()?;
    let set = images::load(&args.data, &arch, class)?;
    let best_class = arch.classes > 0 && (args.best_class || set.labels.is_none());
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, set.len());
    let verify = args.verify;
    let bar = crate::progress::bar(set.len() as u64, "compressing");
    let start = Instant::now();
    // Each thread codes every `threads`-th image with its own executor.
    let coded = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (set, bar) = (&set, bar.clone());
                scope.spawn(move || -> anyhow::Result<Vec<(usize, Vec<u8>, f64)>> {
                    let mut state = vec![0i32; arch.quant_state_words_whole_rows()];
                    let first = (arch.classes > 0).then_some(0);
                    let mut exec = IncrementalI8::new(q, &mut state, first)?;
                    let mut buf = vec![0u8; max_stream(arch.pixels())];
                    let mut back = vec![0u8; arch.pixels()];
                    let mut out = Vec::new();
                    for i in (t..set.len()).step_by(threads) {
                        let image = set.image(i);
                        let class = if best_class {
                            codec::encode_best_class(&mut exec, image, &mut buf)?.1
                        } else {
                            set.label(i).filter(|_| arch.classes > 0)
                        };
                        let mut nll = 0.0;
                        let len =
                            codec::encode_scored(&mut exec, class, image, &mut buf, Some(&mut nll))
                                .with_context(|| format!("cannot compress image {i}"))?;
                        if verify {
                            let decoded = codec::decode(&mut exec, &buf[..len], &mut back)?;
                            anyhow::ensure!(
                                back == image && decoded == class,
                                "image {i} does not decode to itself: please report this bug"
                            );
                        }
                        out.push((i, buf[..len].to_vec(), nll));
                        bar.inc(1);
                    }
                    Ok(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a compression thread panicked")))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    });
    bar.finish_and_clear();
    let mut streams = vec![Vec::new(); set.len()];
    let mut nll_nats = 0.0;
    for (i, stream, nll) in coded?.into_iter().flatten() {
        streams[i] = stream;
        nll_nats += nll;
    }
    let header = container::Header::for_model(
        &arch,
        container::model_id(file.pcnn_bytes()),
        set.len() as u32,
    );
    let refs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
    let bytes = container::to_bytes(&header, &refs);
    if args.out.as_os_str() == "-" {
        std::io::stdout().lock().write_all(&bytes).context("cannot write to standard output")?;
    } else {
        std::fs::write(&args.out, &bytes)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
    }
    let n = set.len() as f64;
    let nll_bits = nll_nats / std::f64::consts::LN_2 / n;
    let seconds = start.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "images": set.len(),
        "bytes": bytes.len(),
        "bytes_per_image": bytes.len() as f64 / n,
        "nll_bits_per_image": nll_bits,
        "best_class": best_class,
        "verified": verify,
        "seconds": seconds,
    });
    // With the file on standard output, the report goes to standard error.
    let to_stderr = args.out.as_os_str() == "-";
    let text = if args.json {
        report.to_string()
    } else {
        format!(
            "{} in {} bytes ({:.2} bytes per image; the model's NLL is {:.2} bytes per image), \
             {:.2} ms per image on {}{}",
            crate::text::count(set.len(), "image"),
            bytes.len(),
            bytes.len() as f64 / n,
            nll_bits / 8.0,
            1e3 * seconds * threads as f64 / n,
            crate::text::count(threads, "thread"),
            if verify { "; every image decoded back to itself" } else { "" },
        )
    };
    if to_stderr {
        eprintln!("{text}");
    } else {
        say!("{text}")?;
    }
    Ok(())
}
