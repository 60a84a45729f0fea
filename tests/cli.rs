//! The `pixelcnn` binary: output, files and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pixelcnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pixelcnn")).args(args).output().expect("runs")
}

/// `pixelcnn` with a progress line at every redraw, even for short work.
fn pixelcnn_with_progress<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pixelcnn"))
        .args(args)
        .env("PIXELCNN_PROGRESS_SECONDS", "0")
        .output()
        .expect("runs")
}

fn temp_png(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pixelcnn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn png_size(path: &PathBuf) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let reader = decoder.read_info().expect("a valid PNG");
    (reader.info().width, reader.info().height)
}

#[test]
fn receptive_field_pictures_show_the_blind_spot_only_for_plain() {
    for (arch, blind) in [("gated", false), ("plain", true)] {
        let out = temp_png(&format!("{arch}.png"));
        let run = pixelcnn(&[
            "receptive-field",
            "--arch",
            arch,
            "--height",
            "10",
            "--width",
            "10",
            "--blocks",
            "2",
            "--images",
            "2",
            "-o",
            out.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{arch}: {}", String::from_utf8_lossy(&run.stderr));
        assert_eq!(stdout.contains("blind spot: 0 pixels"), !blind, "{arch}: {stdout}");
        let (w, h) = png_size(&out);
        assert!(w >= 240 && h >= 240, "{w}x{h}");
    }
}

#[test]
fn receptive_field_reads_onnx_and_float_pcnn_and_explains_int8() {
    let f32_model = temp_png("field-f32").with_extension("pcnn");
    let _ = std::fs::remove_file(&f32_model);
    let f32_path = f32_model.to_str().unwrap();
    let converted =
        pixelcnn(&["convert", "models/gated-mnist.onnx", "--precision", "f32", "-o", f32_path]);
    assert!(converted.status.success(), "{}", String::from_utf8_lossy(&converted.stderr));
    let field = |model: &str| {
        let out = temp_png("field-model.png");
        let args =
            ["receptive-field", "--model", model, "--row", "4", "--col", "9", "--images", "1"];
        let run = pixelcnn(&[&args[..], &["-o", out.to_str().unwrap()]].concat());
        (
            run.status.success(),
            String::from_utf8_lossy(&run.stdout).into_owned()
                + &String::from_utf8_lossy(&run.stderr),
        )
    };
    let (ok, onnx) = field("models/gated-mnist.onnx");
    assert!(ok && onnx.contains("Gated PixelCNN: pixel (4, 9) is influenced by"), "{onnx}");
    assert!(onnx.contains("blind spot: 0 pixels"), "{onnx}");
    assert_eq!(field(f32_path), (true, onnx), "the f32 .pcnn is the same model");
    let (ok, int8) = field("models/gated-mnist-int8.pcnn");
    assert!(!ok && int8.contains("is an int8 model") && int8.contains("--precision f32"), "{int8}");
}

#[test]
fn a_pixel_outside_the_image_is_a_clear_error() {
    let out = temp_png("never.png");
    let run = pixelcnn(&["receptive-field", "--row", "40", "-o", out.to_str().unwrap()]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("outside the 16x16 image"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn an_even_kernel_is_refused_with_the_reason() {
    let out = temp_png("even.png");
    let run = pixelcnn(&["receptive-field", "--kernel", "4", "-o", out.to_str().unwrap()]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("kernel is 4, expected an odd kernel size"), "{stderr}");
}

const MINI: &str = "tests/fixtures/mnist-mini";

fn stdout_of(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn eval_prints_the_json_contract_for_onnx_and_pcnn() {
    for (model, precision) in [
        ("models/gated-mnist.onnx", "f32"),
        ("models/gated-mnist.onnx", "f16"),
        ("models/gated-mnist-int8.pcnn", "int8"),
    ] {
        let out = pixelcnn(&[
            "eval",
            "--model",
            model,
            "--data",
            MINI,
            "--split",
            "test",
            "--precision",
            precision,
            "--limit",
            "12",
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(stdout_of(&out).trim()).unwrap();
        assert_eq!(v["images"], 12);
        assert_eq!(v["precision"], precision);
        let nats = v["nats_per_image"].as_f64().unwrap();
        assert!((40.0..200.0).contains(&nats), "{model} {precision}: {nats}");
        let bits = v["bits_per_dim"].as_f64().unwrap();
        assert!((bits - nats / (784.0 * std::f64::consts::LN_2)).abs() < 1e-9);
    }
}

#[test]
fn convert_then_inspect_reports_flash_and_ram() {
    let out = temp_png("converted").with_extension("pcnn");
    stdout_of(&pixelcnn(&[
        "convert",
        "models/gated-mnist.onnx",
        "--precision",
        "int8",
        "--calib",
        MINI,
        "--calib-images",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]));
    let v: serde_json::Value = serde_json::from_str(
        stdout_of(&pixelcnn(&["inspect", "--model", out.to_str().unwrap(), "--json"])).trim(),
    )
    .unwrap();
    assert_eq!(v["precision"], "int8");
    let params = pixelcnn_runtime::Arch::MNIST_DEFAULT.param_count() as u64;
    assert_eq!(v["parameters"], params);
    let flash = v["flash_bytes"].as_u64().unwrap();
    assert_eq!(flash, std::fs::metadata(&out).unwrap().len());
    // int8 weights: about one byte per parameter plus int32 biases.
    assert!((params..2 * params).contains(&flash), "{flash}");
    assert_eq!(
        v["ram_bytes"].as_u64().unwrap(),
        4 * pixelcnn_runtime::Arch::MNIST_DEFAULT.quant_state_words() as u64
    );
}

#[test]
fn sample_and_complete_write_pictures() {
    let samples = temp_png("samples");
    stdout_of(&pixelcnn(&[
        "sample",
        "--model",
        "models/gated-mnist-int8.pcnn",
        "--count",
        "4",
        "--columns",
        "2",
        "--scale",
        "2",
        "--out",
        samples.to_str().unwrap(),
    ]));
    assert_eq!(png_size(&samples), (2 * (56 + 2) + 2, 2 * (56 + 2) + 2));
    let completions = temp_png("completions");
    stdout_of(&pixelcnn(&[
        "complete",
        "--model",
        "models/gated-mnist-int8.pcnn",
        "--data",
        MINI,
        "--limit",
        "2",
        "--samples",
        "3",
        "--out",
        completions.to_str().unwrap(),
    ]));
    let (w, _) = png_size(&completions);
    assert_eq!(w, 5 * (28 * 3 + 4) + 4);
}

#[test]
fn bad_models_and_labels_are_clear_errors() {
    let corrupt = temp_png("corrupt").with_extension("pcnn");
    let mut bytes = std::fs::read("models/gated-mnist-int8.pcnn").unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&corrupt, &bytes).unwrap();
    let out = pixelcnn(&["inspect", "--model", corrupt.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"), "{out:?}");

    let out = pixelcnn(&["sample", "--model", "models/gated-mnist-int8.pcnn", "--class", "10"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--class 10: models/gated-mnist-int8.pcnn has the classes 0 to 9"),
        "{err}"
    );

    let out = pixelcnn(&[
        "eval",
        "--model",
        "models/gated-mnist-int8.pcnn",
        "--precision",
        "f32",
        "--data",
        MINI,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the float model"), "{out:?}");
}

#[test]
fn a_plain_pixelcnn_samples_completes_benches_and_scores_as_its_full_pass() {
    use pixelcnn_runtime::data::{self, DatasetKind, Split};
    use pixelcnn_runtime::{
        random_weights::random_params, reference, sampler, Arch, Variant, Weights,
    };
    let arch = Arch {
        variant: Variant::Plain,
        classes: 0,
        channels: 4,
        blocks: 2,
        head: 4,
        ..Arch::MNIST_GATED
    };
    let params = random_params(&arch, 5);
    let weights = Weights::new(arch, &params).unwrap();
    let path = temp_png("plain").with_extension("onnx");
    std::fs::write(&path, pixelcnn_runtime::onnx::to_onnx_bytes(&weights)).unwrap();
    let images =
        data::load(std::path::Path::new(MINI), DatasetKind::Mnist, Split::Test, 2).unwrap();
    let want: f64 = (0..6)
        .map(|i| {
            let logits = reference::forward(&weights, images.image(i), None).unwrap();
            images
                .image(i)
                .iter()
                .enumerate()
                .map(|(p, &l)| -sampler::log_probability(&logits[2 * p..2 * p + 2], l.into()))
                .sum::<f64>()
        })
        .sum::<f64>()
        / 6.0;
    let out = pixelcnn(&[
        "eval",
        "--model",
        path.to_str().unwrap(),
        "--data",
        MINI,
        "--limit",
        "6",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout_of(&out).trim()).unwrap();
    let got = v["nats_per_image"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
    let out = pixelcnn(&[
        "eval",
        "--model",
        path.to_str().unwrap(),
        "--precision",
        "int8",
        "--data",
        MINI,
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("int8 needs a Gated PixelCNN"),
        "{out:?}"
    );
    let model = path.to_str().unwrap();
    let png = temp_png("plain-samples.png");
    let out = pixelcnn(&["sample", "--model", model, "--count", "2", "-o", png.to_str().unwrap()]);
    assert!(stdout_of(&out).contains("wrote 2 images"));
    let png = temp_png("plain-completions.png");
    let args = ["complete", "--model", model, "--data", MINI, "--limit", "2", "-o"];
    stdout_of(&pixelcnn(&[&args[..], &[png.to_str().unwrap()]].concat()));
    assert!(png.is_file());
    let out = pixelcnn(&["bench", "--model", model, "--images", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout_of(&out).trim()).unwrap();
    assert!(v["per_pixel_us_p50"].as_f64().unwrap() > 0.0, "{v}");
}

#[test]
fn a_png_folder_is_scored_whole_and_has_no_test_split() {
    const PNGS: &str = "tests/fixtures/png-digits";
    let model = "models/gated-mnist-int8.pcnn";
    let out = pixelcnn(&["eval", "--model", model, "--data", PNGS, "--limit", "5", "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout_of(&out).trim()).unwrap();
    assert_eq!(v["images"], 5);
    let out = pixelcnn(&["eval", "--model", model, "--data", PNGS, "--split", "test"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no test split"), "{err}");
}

#[test]
fn picture_sizes_are_checked_before_any_work() {
    let out = pixelcnn(&["sample", "--model", "models/gated-mnist-int8.pcnn", "--scale", "100000"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("100000 is not in 1..=64"), "{err}");
    let out = pixelcnn(&["receptive-field", "--cell", "5000", "-o", "x.png"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("5000 is not in 4..=256"), "{err}");
    // A picture too large for its count is refused before any sampling.
    let big = ["sample", "--model", "models/gated-mnist-int8.pcnn", "--count", "20000"];
    let out = pixelcnn(&[&big[..], &["--columns", "10", "-o", "big.png"]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("picture is too large") && !err.contains("sampling"), "{err}");
}

#[test]
fn outputs_never_overwrite_inputs_and_match_their_extension() {
    let model = temp_png("own").with_extension("pcnn");
    std::fs::copy("models/gated-mnist-int8.pcnn", &model).unwrap();
    let before = std::fs::read(&model).unwrap();
    let m = model.to_str().unwrap();
    let out = pixelcnn(&["convert", m, "--precision", "int8", "-o", m]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to write over the input"), "{err}");
    assert_eq!(std::fs::read(&model).unwrap(), before, "the input is untouched");
    let out = pixelcnn(&["sample", "--model", m, "--count", "1", "-o", "x.jpg"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("x.jpg would hold PNG bytes: give it the .png extension"), "{err}");
    assert!(!std::path::Path::new("x.jpg").exists());
    // A missing folder is created for every command that writes a file.
    let dir = temp_png("new-folder").with_extension("");
    let _ = std::fs::remove_dir_all(&dir);
    let target = |name: &str| dir.join("a").join(name).to_str().unwrap().to_string();
    let (png, pcnn, pcnz) = (target("s.png"), target("m.pcnn"), target("d.pcnz"));
    stdout_of(&pixelcnn(&["sample", "--model", m, "--count", "1", "-o", &png]));
    stdout_of(&pixelcnn(&["convert", m, "--precision", "int8", "-o", &pcnn]));
    let compress = ["compress", "--model", m, "--data", MINI, "--limit", "2", "-o", &pcnz];
    stdout_of(&pixelcnn(&compress));
    for file in [&png, &pcnn, &pcnz] {
        assert!(std::path::Path::new(file).is_file(), "{file}");
    }
}

#[test]
fn unlabelled_images_take_a_class_or_are_scored_under_their_best_one() {
    let digit = "tests/fixtures/png-digits/3/00.png";
    let model = "models/gated-mnist-int8.pcnn";
    let nll = |extra: &[&str]| -> f64 {
        let mut args = vec!["eval", "--model", model, "--images", digit, "--json"];
        args.extend_from_slice(extra);
        let v: serde_json::Value =
            serde_json::from_str(stdout_of(&pixelcnn(&args)).trim()).unwrap();
        v["nats_per_image"].as_f64().unwrap()
    };
    let best = nll(&[]);
    let per_class: Vec<f64> = (0..10).map(|c| nll(&["--class", &c.to_string()])).collect();
    let lowest = per_class.iter().copied().fold(f64::INFINITY, f64::min);
    assert!((best - lowest).abs() < 1e-9, "best class {best} vs per-class {per_class:?}");
    assert!(per_class[3] < per_class[1], "a 3 is likelier as a 3 than as a 1: {per_class:?}");

    let out = pixelcnn(&["eval", "--model", model, "--images", digit, "--class", "10"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--class 10: ") && !out.status.success());
    let png = temp_png("completed.png");
    let out =
        pixelcnn(&["complete", "--model", model, "--images", digit, "-o", png.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --class N"));
    let out = pixelcnn(&[
        "complete",
        "--model",
        model,
        "--images",
        digit,
        "--class",
        "3",
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(stdout_of(&out).contains("completed 1 image from its top 14 rows"));
    assert!(png.is_file());
}

#[test]
fn long_work_prints_progress_lines_when_stderr_is_not_a_terminal() {
    let out_path = temp_png("calibrated").with_extension("pcnn");
    let args = [
        "convert",
        "models/gated-mnist.onnx",
        "--precision",
        "int8",
        "--calib",
        MINI,
        "--calib-images",
        "20",
        "-o",
        out_path.to_str().unwrap(),
    ];
    // A line at every redraw (the tests' setting): no time left is shown
    // before any work is done.
    let out = pixelcnn_with_progress(&args);
    stdout_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("calibrating int8 [") && err.contains("/20"), "{err}");
    assert!(!err.contains("] 0/20 (0s left)"), "{err}");
    // By default, work of a few seconds writes no progress line to a log.
    std::fs::remove_file(&out_path).unwrap();
    let out = pixelcnn(&args);
    stdout_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("calibrating int8 ["), "{err}");
}

#[test]
fn one_image_is_said_in_the_singular() {
    let out = pixelcnn(&[
        "eval",
        "--model",
        "models/gated-mnist-int8.pcnn",
        "--images",
        "tests/fixtures/png-digits/3/00.png",
        "--class",
        "3",
    ]);
    let text = stdout_of(&out);
    assert!(text.starts_with("1 image: "), "{text}");
    let out = pixelcnn(&["bench", "--model", "models/gated-mnist-int8.pcnn", "--images", "1"]);
    let text = stdout_of(&out);
    assert!(text.contains("kernel), 1 image of 28x28"), "{text}");
}

#[test]
fn a_wrong_image_size_is_said_as_width_x_height() {
    // 20 wide, 10 high: swapped dimensions would read 10x20.
    let wide = temp_png("wide.png");
    let mut encoder = png::Encoder::new(std::fs::File::create(&wide).unwrap(), 20, 10);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.write_header().unwrap().write_image_data(&[0u8; 200]).unwrap();
    let model = "models/gated-mnist-int8.pcnn";
    let out = pixelcnn(&["eval", "--model", model, "--images", wide.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is 20x10 (width x height), the model expects 28x28"), "{err}");
}

#[test]
fn int8_from_an_onnx_with_stored_ranges_needs_no_calibration_pass() {
    use pixelcnn_runtime::data::{self, DatasetKind, Split};
    use pixelcnn_runtime::format::{self, AlignedBytes};
    use pixelcnn_runtime::quant::calibrate::{quantize, Calibration};
    use pixelcnn_runtime::{random_weights::random_params, Arch, Model, Weights};
    let arch = Arch { channels: 4, blocks: 2, head: 4, ..Arch::MNIST_GATED };
    let params = random_params(&arch, 9);
    let weights = Weights::new(arch, &params).unwrap();
    let images = data::load(std::path::Path::new(MINI), DatasetKind::Mnist, Split::Train, 2)
        .unwrap()
        .first_labelled(8, &arch);
    let cal = Calibration::measure(&weights, &images, "8 test images".into(), || {}).unwrap();
    let onnx = temp_png("calibrated").with_extension("onnx");
    let bytes = pixelcnn_runtime::onnx::to_onnx_bytes_calibrated(&weights, &cal);
    std::fs::write(&onnx, bytes).unwrap();

    let pcnn = temp_png("from-stored").with_extension("pcnn");
    let args = ["convert", onnx.to_str().unwrap(), "--precision", "int8", "-o"];
    let out = pixelcnn(&[&args[..], &[pcnn.to_str().unwrap()]].concat());
    stdout_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("calibrat") && !err.contains("sampling"),
        "a calibration pass ran: {err}"
    );
    let file = AlignedBytes::new(&std::fs::read(&pcnn).unwrap());
    let Model::Int8(converted) = format::parse(file.as_bytes()).unwrap() else { panic!("int8") };
    let want = quantize(&weights, &cal).unwrap();
    let (w, b, r) = converted.as_slices();
    assert_eq!((w, b, r), (&want.weights[..], &want.biases[..], &want.requant[..]));

    // Asking for calibration images measures anew, on them.
    let args = [&args[..], &[pcnn.to_str().unwrap(), "--calib-images", "3"]].concat();
    let out = pixelcnn_with_progress(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("sampling calibration images"), "{err}");
}

#[test]
fn threads_change_the_speed_not_the_images() {
    // Image i has seed + i and its own class whatever thread draws it, so
    // one, two and three threads write the same PNG bytes (three threads
    // over five images: uneven shares).
    let draw = |threads: &str| {
        let out = temp_png(&format!("threads-{threads}"));
        let args = ["--count", "5", "--seed", "7", "--threads", threads, "--out"];
        let mut full = vec!["sample", "--model", "models/gated-mnist-int8.pcnn"];
        full.extend(args);
        full.push(out.to_str().unwrap());
        let said = stdout_of(&pixelcnn(&full));
        assert!(said.contains(&format!("on {threads} thread")), "{said}");
        std::fs::read(out).unwrap()
    };
    let one = draw("1");
    assert_eq!(draw("2"), one);
    assert_eq!(draw("3"), one);
}

#[test]
fn lockstep_batches_draw_the_same_images() {
    let draw = |extra: &[&str]| {
        let out = temp_png(&format!("batch-{}", extra.join("-")));
        let mut args = vec!["sample", "--model", "models/gated-mnist-int8.pcnn", "--count", "7"];
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        stdout_of(&pixelcnn(&args));
        std::fs::read(out).unwrap()
    };
    let alone = draw(&["--threads", "1"]);
    // A partial last batch, and batches spread over two threads.
    assert_eq!(draw(&["--batch", "3", "--threads", "1"]), alone);
    assert_eq!(draw(&["--batch", "2", "--threads", "2"]), alone);
    assert_eq!(draw(&["--batch", "8"]), alone);
    // Float models have no lockstep path: a clear error, no picture.
    let float = pixelcnn(&[
        "sample",
        "--model",
        "models/gated-mnist.onnx",
        "--batch",
        "2",
        "-o",
        temp_png("float-batch").to_str().unwrap(),
    ]);
    assert!(!float.status.success());
    assert!(String::from_utf8_lossy(&float.stderr).contains(
        "--batch needs an int8 model (lockstep batches run the integer kernels); \
         add --precision int8 or leave out --batch"
    ));
}

#[test]
fn bench_reports_the_throughput_of_several_threads() {
    let out = pixelcnn(&[
        "bench",
        "--model",
        "models/gated-mnist-int8.pcnn",
        "--images",
        "1",
        "--threads",
        "2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout_of(&out).trim()).expect("JSON");
    assert_eq!(v["threads"]["threads"], 2);
    let all = v["threads"]["digits_per_s"].as_f64().unwrap();
    let each = v["threads"]["digits_per_s_per_thread"].as_f64().unwrap();
    assert!(all > 0.0 && (all - 2.0 * each).abs() < 1e-9 * all, "{v}");
    assert!(v["digits_per_s"].as_f64().unwrap() > 0.0);
    let batched = pixelcnn(&[
        "bench",
        "--model",
        "models/gated-mnist-int8.pcnn",
        "--images",
        "1",
        "--batch",
        "3",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout_of(&batched).trim()).expect("JSON");
    assert_eq!(
        (v["threads"]["threads"].as_u64(), v["threads"]["batch"].as_u64()),
        (Some(1), Some(3))
    );
    let zero = pixelcnn(&["bench", "--model", "models/gated-mnist-int8.pcnn", "--threads", "0"]);
    assert!(!zero.status.success());
}

/// A 28×28 P4 PBM of a vertical bar (ink = 1).
fn bar_pbm() -> Vec<u8> {
    let mut pbm = b"P4\n# a bar\n28 28\n".to_vec();
    for _ in 0..28 {
        pbm.extend_from_slice(&[0x00, 0x3c, 0x00, 0x00]);
    }
    pbm
}

#[test]
fn compress_and_decompress_round_trip_with_the_json_contract() {
    let dir = temp_png("codec").with_extension("");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mini.pcnz");
    let out = pixelcnn(&[
        "compress",
        "--model",
        "models/gated-mnist-int8.pcnn",
        "--data",
        MINI,
        "--limit",
        "30",
        "-o",
        file.to_str().unwrap(),
        "--json",
        "--verify",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout_of(&out).trim()).expect("JSON");
    assert_eq!(v["images"], 30);
    let bytes = v["bytes"].as_u64().unwrap();
    assert_eq!(bytes, std::fs::metadata(&file).unwrap().len());
    let per = v["bytes_per_image"].as_f64().unwrap();
    let nll_bits = v["nll_bits_per_image"].as_f64().unwrap();
    assert!((per - bytes as f64 / 30.0).abs() < 1e-9);
    // Coded on its own, a digit costs its NLL plus about two bytes (class,
    // length, termination, the header shared by 30).
    assert!(per * 8.0 > nll_bits && per * 8.0 < nll_bits + 24.0, "{v}");
    // Back to IDX, and compressed again: the same bytes, so the same images.
    let back = dir.join("back");
    stdout_of(&pixelcnn(&[
        "decompress",
        "--model",
        "models/gated-mnist-int8.pcnn",
        file.to_str().unwrap(),
        "-o",
        back.to_str().unwrap(),
        "--png",
    ]));
    assert!(
        back.join("t10k-images-idx3-ubyte").is_file() && back.join("image-00029.png").is_file()
    );
    // A second run into the same folder refuses before decoding, and
    // leaves the files as they were; --force writes over them.
    let before = std::fs::read(back.join("t10k-images-idx3-ubyte")).unwrap();
    let again_into = |extra: &[&str]| {
        let mut args = vec![
            "decompress",
            "--model",
            "models/gated-mnist-int8.pcnn",
            file.to_str().unwrap(),
            "-o",
            back.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        pixelcnn(&args)
    };
    let refused = again_into(&[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("already holds t10k-images-idx3-ubyte and 1 more of its output names: decompress would write")
            && err.contains("--force"),
        "{err}"
    );
    assert!(!err.contains("decompressing"), "refused before any work: {err}");
    assert_eq!(std::fs::read(back.join("t10k-images-idx3-ubyte")).unwrap(), before);
    stdout_of(&again_into(&["--force"]));
    // A folder of gzipped MNIST files is refused too: the loaders read either.
    let gz = dir.join("gz");
    std::fs::create_dir_all(&gz).unwrap();
    std::fs::copy(
        Path::new(MINI).join("t10k-images-idx3-ubyte.gz"),
        gz.join("t10k-images-idx3-ubyte.gz"),
    )
    .unwrap();
    let args = ["decompress", "--model", "models/gated-mnist-int8.pcnn", file.to_str().unwrap()];
    let out = pixelcnn(&[&args[..], &["-o", gz.to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already holds t10k-images-idx3-ubyte.gz"),
        "{err}"
    );
    let again = dir.join("again.pcnz");
    stdout_of(&pixelcnn(&[
        "compress",
        "--model",
        "models/gated-mnist-int8.pcnn",
        "--data",
        back.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&file).unwrap());
    // The images scored from the decompressed files have the same NLL.
    let score = |data: &str| -> f64 {
        let out = pixelcnn(&[
            "eval",
            "--model",
            "models/gated-mnist-int8.pcnn",
            "--data",
            data,
            "--limit",
            "30",
            "--json",
        ]);
        serde_json::from_str::<serde_json::Value>(stdout_of(&out).trim()).unwrap()["nats_per_image"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(score(MINI), score(back.to_str().unwrap()));
}

#[test]
fn compressed_files_refuse_damage_and_other_models() {
    let dir = temp_png("codec-bad").with_extension("");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mini.pcnz");
    stdout_of(&pixelcnn(&[
        "compress",
        "--model",
        "models/gated-mnist-int8.pcnn",
        "--data",
        MINI,
        "--limit",
        "5",
        "-o",
        file.to_str().unwrap(),
    ]));
    let good = std::fs::read(&file).unwrap();
    let decompress = |bytes: &[u8], model: &str| {
        let path = dir.join("x.pcnz");
        std::fs::write(&path, bytes).unwrap();
        let out = pixelcnn(&[
            "decompress",
            "--model",
            model,
            path.to_str().unwrap(),
            "-o",
            dir.join("o").to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let mut flipped = good.clone();
    flipped[30] ^= 4;
    assert!(decompress(&flipped, "models/gated-mnist-int8.pcnn").contains("damaged or truncated"));
    assert!(decompress(&good[..good.len() - 3], "models/gated-mnist-int8.pcnn")
        .contains("damaged or truncated"));
    assert!(decompress(b"PNG?", "models/gated-mnist-int8.pcnn").contains("too short"));
    assert!(decompress(&[b'X'; 64], "models/gated-mnist-int8.pcnn").contains("not a .pcnz file"));
    // Another int8 model (other calibration images, so other ranges).
    let other = dir.join("other.pcnn");
    stdout_of(&pixelcnn(&[
        "convert",
        "models/gated-mnist.onnx",
        "--precision",
        "int8",
        "--calib",
        MINI,
        "--calib-images",
        "20",
        "-o",
        other.to_str().unwrap(),
    ]));
    assert!(decompress(&good, other.to_str().unwrap()).contains("compressed with another model"));
    // Float models do not compress.
    let out = pixelcnn(&[
        "compress",
        "--model",
        "models/gated-mnist.onnx",
        "--data",
        MINI,
        "--limit",
        "1",
        "-o",
        dir.join("f.pcnz").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("int8"));
}

#[test]
fn compress_reads_pbm_on_stdin_and_decompress_writes_idx_to_stdout() {
    use std::io::Write as _;
    use std::process::Stdio;
    let run = |args: &[&str], input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pixelcnn"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let packed = run(
        &["compress", "--model", "models/gated-mnist-int8.pcnn", "--images", "-", "-o", "-"],
        &bar_pbm(),
    );
    assert!(packed.status.success(), "{}", String::from_utf8_lossy(&packed.stderr));
    assert!(packed.stdout.starts_with(b"PCNZ"));
    let idx = run(
        &["decompress", "--model", "models/gated-mnist-int8.pcnn", "-", "-o", "-"],
        &packed.stdout,
    );
    assert!(idx.status.success(), "{}", String::from_utf8_lossy(&idx.stderr));
    assert_eq!(&idx.stdout[..4], &[0, 0, 8, 3]);
    let pixels = &idx.stdout[16..];
    assert_eq!(pixels.len(), 784);
    // Columns 10 to 13 of every row are ink, the rest background.
    for (i, &p) in pixels.iter().enumerate() {
        assert_eq!(p, if (10..14).contains(&(i % 28)) { 255 } else { 0 }, "pixel {i}");
    }
}

#[test]
fn a_kernel_of_the_other_precision_is_refused_not_ignored() {
    let int8 = "models/gated-mnist-int8.pcnn";
    let out = pixelcnn(&["bench", "--model", int8, "--images", "1", "--kernel", "portable"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("portable is a float kernel"), "{err}");
    let onnx = "models/gated-mnist.onnx";
    let out =
        pixelcnn(&["eval", "--model", onnx, "--data", MINI, "--limit", "1", "--kernel", "generic"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("generic is an int8 kernel"), "{err}");
    // The right kind is used, and the report names it.
    let out =
        pixelcnn(&["bench", "--model", int8, "--images", "1", "--kernel", "generic", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(report["kernel"], "generic");
    let out =
        pixelcnn(&["bench", "--model", onnx, "--images", "1", "--kernel", "portable", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(report["kernel"], "portable");
}

#[test]
fn named_classes_show_in_inspect_and_sample_and_class_takes_a_name() {
    use pixelcnn_runtime::onnx::to_onnx_bytes_with;
    use pixelcnn_runtime::random_weights::random_params;
    use pixelcnn_runtime::{Arch, Weights};
    let arch = Arch {
        height: 8,
        width: 8,
        channels: 4,
        blocks: 1,
        head: 4,
        classes: 2,
        ..Arch::MNIST_GATED
    };
    let params = random_params(&arch, 5);
    let names = ["circle".to_string(), "square".to_string()];
    let bytes = to_onnx_bytes_with(&Weights::new(arch, &params).unwrap(), None, &names);
    let onnx = temp_png("shapes").with_extension("onnx");
    std::fs::write(&onnx, bytes).unwrap();
    let int8 = temp_png("shapes-int8").with_extension("pcnn");
    let _ = std::fs::remove_file(&int8);
    let converted = pixelcnn(&["convert", onnx.to_str().unwrap(), "-o", int8.to_str().unwrap()]);
    stdout_of(&converted);
    for model in [&onnx, &int8] {
        let m = model.to_str().unwrap();
        let info = stdout_of(&pixelcnn(&["inspect", "--model", m]));
        assert!(info.contains("2 classes: 0 (circle), 1 (square)"), "{info}");
        let json: serde_json::Value =
            serde_json::from_str(&stdout_of(&pixelcnn(&["inspect", "--model", m, "--json"])))
                .unwrap();
        assert_eq!(json["class_names"], serde_json::json!(["circle", "square"]));
        let out = temp_png("shapes-samples.png");
        let said = stdout_of(&pixelcnn(&[
            "sample",
            "--model",
            m,
            "--class",
            "Square",
            "--count",
            "2",
            "-o",
            out.to_str().unwrap(),
        ]));
        assert!(said.contains("of class 1 (square)"), "{said}");
        let by_number = stdout_of(&pixelcnn(&[
            "sample",
            "--model",
            m,
            "--class",
            "1",
            "--count",
            "2",
            "-o",
            out.to_str().unwrap(),
        ]));
        assert!(by_number.contains("of class 1 (square)"), "{by_number}");
        let wrong =
            pixelcnn(&["sample", "--model", m, "--class", "triangle", "-o", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&wrong.stderr);
        assert!(!wrong.status.success(), "{err}");
        assert!(
            err.contains("--class triangle") && err.contains("0 (circle), 1 (square)"),
            "{err}"
        );
    }
}

#[test]
fn onnx_graphs_from_pytorch_and_keras_sample_complete_score_bench_and_inspect() {
    let out = temp_png("foreign-samples.png");
    let o = out.to_str().unwrap();
    let embed = "tests/fixtures/foreign/torch_embed_classes.onnx";
    let said = stdout_of(&pixelcnn(&[
        "sample", "--model", embed, "--count", "2", "--class", "3", "-o", o,
    ]));
    assert!(
        said.contains("wrote 2 images of class 3") && said.contains("ONNX graph, compiled"),
        "{said}"
    );
    let skips = "tests/fixtures/foreign/torch_reduced_skips.onnx";
    let said = stdout_of(&pixelcnn(&[
        "complete",
        "--model",
        skips,
        "--input",
        "unit",
        "--data",
        MINI,
        "--limit",
        "2",
        "--samples",
        "1",
        "-o",
        o,
    ]));
    assert!(said.contains("completed 2 images"), "{said}");
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&pixelcnn(&[
        "eval", "--model", embed, "--data", MINI, "--limit", "5", "--json",
    ])))
    .unwrap();
    let nll = v["nats_per_image"].as_f64().unwrap();
    assert!(nll > 20.0 && nll < 400.0, "{v}");
    let keras = "tests/fixtures/foreign/keras_gated_nhwc.onnx";
    let info = stdout_of(&pixelcnn(&["inspect", "--model", keras, "--input", "unit"]));
    assert!(
        info.contains("cached rows") && info.contains(" row ") && info.contains("checked at load"),
        "{info}"
    );
    let bench: serde_json::Value = serde_json::from_str(&stdout_of(&pixelcnn(&[
        "bench", "--model", keras, "--input", "unit", "--images", "1", "--json",
    ])))
    .unwrap();
    assert!(bench["per_pixel_us_p50"].as_f64().unwrap() > 0.0, "{bench}");
    // A float input without --input, and commands that need a .pcnn.
    let err = String::from_utf8_lossy(&pixelcnn(&["sample", "--model", keras, "-o", o]).stderr)
        .into_owned();
    assert!(err.contains("give --input unit"), "{err}");
    let pcnz = temp_png("foreign").with_extension("pcnz");
    let err = String::from_utf8_lossy(
        &pixelcnn(&[
            "compress",
            "--model",
            keras,
            "--input",
            "unit",
            "--data",
            MINI,
            "-o",
            pcnz.to_str().unwrap(),
        ])
        .stderr,
    )
    .into_owned();
    assert!(err.contains("is an ONNX graph from another trainer"), "{err}");
}
