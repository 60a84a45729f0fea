//! Training on the committed fixture (600 MNIST digits): validation NLL goes
//! down, a resumed run equals an uninterrupted one, and bad input gets an
//! error that says what is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pixelcnn_trainer::checkpoint::Checkpoint;
use pixelcnn_trainer::commands::eval::score;
use pixelcnn_trainer::data::{self, DatasetKind, Split};
use pixelcnn_trainer::init::initial_params;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/mnist-mini");

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(args).output().expect("trainer runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pixelcnn-trainer-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "trainer failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "trainer should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const SMALL: &[&str] = &[
    "--conditional",
    "--channels",
    "8",
    "--blocks",
    "2",
    "--batch",
    "16",
    "--threads",
    "1",
    "--seed",
    "3",
];

fn train(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--data", FIXTURE, "--out", out.to_str().unwrap()];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    trainer(&args)
}

#[test]
fn a_short_run_lowers_the_validation_nll() {
    let run = temp_dir("short");
    ok(&train(&run, &["--epochs", "2"]));
    let ckpt = Checkpoint::load(&run).unwrap();
    assert_eq!(ckpt.progress.epoch, 2);
    let valid = data::load(Path::new(FIXTURE), DatasetKind::Mnist, Split::Valid, 2).unwrap();
    let before = score(&ckpt.arch, &initial_params(&ckpt.arch, 3), &valid, None, 1, false).unwrap();
    let after = score(&ckpt.arch, &ckpt.params, &valid, None, 1, false).unwrap();
    // A new run keeps a moving average of the weights; eval scores it.
    let ema = ckpt.ema.as_ref().expect("a new run keeps a moving average");
    assert_eq!(ema.steps, 62);
    assert_ne!(ema.params, ckpt.params);
    let averaged = score(&ckpt.arch, &ema.params, &valid, None, 1, false).unwrap();
    assert!(averaged.nats_per_image < 0.6 * before.nats_per_image);
    assert!(
        after.nats_per_image < 0.6 * before.nats_per_image,
        "validation NLL {} -> {}",
        before.nats_per_image,
        after.nats_per_image
    );
    for file in ["loss.png", "samples-latest.png", "samples-epoch-002.png", "metrics.jsonl"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    // Both validations are logged, at every epoch.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    for kind in ["\"valid\"", "\"valid_ema\""] {
        assert_eq!(metrics.matches(&format!("\"kind\":{kind}")).count(), 2, "{kind}: {metrics}");
    }
    let json = ok(&trainer(&[
        "eval",
        "--run",
        run.to_str().unwrap(),
        "--data",
        FIXTURE,
        "--split",
        "valid",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert!((v["nats_per_image"].as_f64().unwrap() - averaged.nats_per_image).abs() < 1e-3);
    assert_eq!(v["images"], 100);
    assert_eq!(v["weights"], "ema");
    let bits = averaged.nats_per_image / (784.0 * std::f64::consts::LN_2);
    assert!((v["bits_per_dim"].as_f64().unwrap() - bits).abs() < 1e-6);
    let r = run.to_str().unwrap();
    let raw = ok(&trainer(&[
        "eval",
        "--run",
        r,
        "--data",
        FIXTURE,
        "--split",
        "valid",
        "--json",
        "--raw-weights",
    ]));
    let v: serde_json::Value = serde_json::from_str(raw.trim()).unwrap();
    assert!((v["nats_per_image"].as_f64().unwrap() - after.nats_per_image).abs() < 1e-3);
    assert_eq!(v["weights"], "raw");
}

#[test]
fn a_run_without_a_moving_average_keeps_none() {
    let run = temp_dir("no-ema");
    ok(&train(&run, &["--epochs", "1", "--max-steps", "3", "--valid-images", "5", "--ema", "0"]));
    let ckpt = Checkpoint::load(&run).unwrap();
    assert!(ckpt.ema.is_none() && ckpt.settings.ema.is_none());
    let r = run.to_str().unwrap();
    let text = ok(&trainer(&["eval", "--run", r, "--data", FIXTURE, "--split", "valid"]));
    assert!(text.contains("(the trained weights)"), "{text}");
    // Resuming with --ema starts one from the current weights.
    let args = ["train", "--data", FIXTURE, "--out", r, "--resume", "--ema", "0.99"];
    ok(&trainer(&[&args[..], &["--max-steps", "2", "--valid-images", "5"]].concat()));
    let ckpt = Checkpoint::load(&run).unwrap();
    assert_eq!(ckpt.settings.ema, Some(0.99));
    assert_eq!(ckpt.ema.as_ref().map(|e| e.steps), Some(2));
    let err = failure(&train(&temp_dir("bad-ema"), &["--epochs", "1", "--ema", "1"]));
    assert!(err.contains("--ema must be a decay in [0, 1)"), "{err}");
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let straight = temp_dir("straight");
    ok(&train(&straight, &["--epochs", "3", "--max-steps", "40"]));
    let resumed = temp_dir("resumed");
    ok(&train(&resumed, &["--epochs", "3", "--max-steps", "25"]));
    let out = ok(&trainer(&[
        "train",
        "--data",
        FIXTURE,
        "--out",
        resumed.to_str().unwrap(),
        "--resume",
        "--max-steps",
        "15",
        "--threads",
        "1",
    ]));
    assert!(out.contains("resuming"), "{out}");
    let a = Checkpoint::load(&straight).unwrap();
    let b = Checkpoint::load(&resumed).unwrap();
    assert_eq!(a.progress.step, 40);
    assert_eq!(b.progress.step, 40);
    // Step 40 crosses an epoch boundary (31 steps per epoch) in both runs.
    assert_eq!(b.progress.epoch, 1);
    let worst = a.params.iter().zip(&b.params).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "resumed parameters differ by {worst}");
    // The moving average resumes exactly too.
    let (ea, eb) = (a.ema.unwrap(), b.ema.unwrap());
    assert_eq!((ea.steps, eb.steps), (40, 40));
    let worst = ea.params.iter().zip(&eb.params).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-5, "resumed moving averages differ by {worst}");
}

#[test]
fn a_new_run_does_not_append_to_the_log_of_a_run_that_saved_nothing() {
    let run = temp_dir("stale");
    std::fs::write(run.join("metrics.jsonl"), "{\"kind\":\"train\",\"step\":900}\n").unwrap();
    let out = ok(&train(&run, &["--epochs", "1", "--max-steps", "2", "--valid-images", "5"]));
    assert!(out.contains("removed"), "{out}");
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(!log.contains("\"step\":900"), "{log}");
}

#[test]
fn a_second_run_in_the_same_folder_needs_resume() {
    let run = temp_dir("twice");
    ok(&train(&run, &["--epochs", "1", "--max-steps", "2"]));
    let err = failure(&train(&run, &["--epochs", "1", "--max-steps", "2"]));
    assert!(err.contains("pass --resume"), "{err}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = temp_dir("bad");
    let missing = dir.join("nope");
    let err = failure(&trainer(&[
        "train",
        "--data",
        missing.to_str().unwrap(),
        "--out",
        dir.join("r").to_str().unwrap(),
        "--epochs",
        "1",
    ]));
    assert!(err.contains("does not exist"), "{err}");
    assert!(!dir.join("r").exists(), "a refused run leaves no folder");
    let file = dir.join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = failure(&trainer(&[
        "train",
        "--data",
        file.to_str().unwrap(),
        "--out",
        dir.join("r1").to_str().unwrap(),
        "--epochs",
        "1",
    ]));
    assert!(err.contains("is a file: --data takes a folder"), "{err}");

    let err = failure(&train(&dir.join("k"), &["--epochs", "1", "--levels", "1"]));
    assert!(err.contains("--levels must be 2 to 256, got 1"), "{err}");

    let idx = dir.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    std::fs::write(idx.join("train-images-idx3-ubyte"), [0u8, 0, 8, 1, 0, 0, 0, 1, 7]).unwrap();
    std::fs::write(idx.join("train-labels-idx1-ubyte"), [0u8, 0, 8, 1, 0, 0, 0, 1, 7]).unwrap();
    let err = failure(&trainer(&[
        "train",
        "--data",
        idx.to_str().unwrap(),
        "--out",
        dir.join("r2").to_str().unwrap(),
        "--epochs",
        "1",
    ]));
    assert!(err.contains("is not an unsigned-byte IDX file of rank 3"), "{err}");

    let pngs = dir.join("pngs");
    std::fs::create_dir_all(&pngs).unwrap();
    write_png(&pngs.join("a.png"), 28, 28);
    write_png(&pngs.join("b.png"), 32, 32);
    let err = failure(&trainer(&[
        "train",
        "--data",
        pngs.to_str().unwrap(),
        "--dataset",
        "png-dir",
        "--out",
        dir.join("r3").to_str().unwrap(),
        "--epochs",
        "1",
    ]));
    assert!(err.contains("images have different sizes"), "{err}");

    let err = failure(&trainer(&["eval", "--run", dir.to_str().unwrap(), "--data", FIXTURE]));
    assert!(err.contains("no checkpoint"), "{err}");
}

fn write_png(path: &Path, w: u32, h: u32) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(&vec![128u8; (w * h) as usize]).unwrap();
}

const PNG_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/png-digits");

fn png_train(data: &str, out: &Path, extra: &[&str]) -> Output {
    // No --dataset: a folder of PNGs is recognised as one.
    let mut args = vec!["train", "--data", data, "--out", out.to_str().unwrap()];
    args.extend_from_slice(&["--conditional", "--channels", "4", "--blocks", "1", "--batch", "8"]);
    args.extend_from_slice(&["--threads", "1", "--epochs", "1", "--valid-images", "10"]);
    args.extend_from_slice(extra);
    trainer(&args)
}

#[test]
fn a_png_folder_trains_on_every_class_and_has_no_test_split() {
    let dir = Path::new(PNG_FIXTURE);
    for split in [Split::Train, Split::Valid] {
        let images = data::load(dir, DatasetKind::PngDir, split, 2).unwrap();
        let mut seen = [0usize; 10];
        for i in 0..images.len() {
            seen[images.label(i).unwrap()] += 1;
        }
        let per_class = if split == Split::Train { 10 } else { 2 };
        assert_eq!(seen, [per_class; 10], "{split:?}");
    }
    let err = data::load(dir, DatasetKind::PngDir, Split::Test, 2).unwrap_err().to_string();
    assert!(err.contains("no test split"), "{err}");
    assert_eq!(data::load(dir, DatasetKind::PngDir, Split::All, 2).unwrap().len(), 120);

    let run = temp_dir("png");
    ok(&png_train(PNG_FIXTURE, &run, &["--max-steps", "3"]));
    assert_eq!(Checkpoint::load(&run).unwrap().settings.dataset, DatasetKind::PngDir);
    let err = failure(&trainer(&["eval", "--run", run.to_str().unwrap(), "--data", PNG_FIXTURE]));
    assert!(err.contains("no test split"), "{err}");
    ok(&trainer(&[
        "eval",
        "--run",
        run.to_str().unwrap(),
        "--data",
        PNG_FIXTURE,
        "--split",
        "valid",
    ]));
}

#[test]
fn labels_the_model_does_not_know_are_refused() {
    // A 2-class run, then 10-class data: an error that names the label, no panic.
    let two = temp_dir("two-classes");
    for class in ["0", "1"] {
        let dst = two.join(class);
        std::fs::create_dir_all(&dst).unwrap();
        for entry in std::fs::read_dir(Path::new(PNG_FIXTURE).join(class)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dst.join(path.file_name().unwrap())).unwrap();
        }
    }
    let run = temp_dir("two-run");
    ok(&png_train(two.to_str().unwrap(), &run, &["--max-steps", "2"]));
    let run_arg = run.to_str().unwrap();
    let err =
        failure(&trainer(&["eval", "--run", run_arg, "--data", PNG_FIXTURE, "--split", "valid"]));
    assert!(err.contains("but the model knows only classes 0 to 1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let err = failure(&trainer(&["train", "--data", PNG_FIXTURE, "--out", run_arg, "--resume"]));
    assert!(err.contains("was trained on the classes 0, 1, and"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn png_class_folders_name_the_classes_in_the_run_and_the_model() {
    let shapes = temp_dir("shapes");
    for (digit, name) in [("0", "circle"), ("1", "square")] {
        let dst = shapes.join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for entry in std::fs::read_dir(Path::new(PNG_FIXTURE).join(digit)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dst.join(path.file_name().unwrap())).unwrap();
        }
    }
    let run = temp_dir("shapes-run");
    let out = png_train(shapes.to_str().unwrap(), &run, &["--max-steps", "2"]);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 classes (0 circle, 1 square)"), "{stdout}");
    let names = Checkpoint::load(&run).unwrap().settings.class_names;
    assert_eq!(names, ["circle", "square"]);

    let onnx = run.join("shapes.onnx");
    let r = run.to_str().unwrap();
    ok(&trainer(&["export", "--run", r, "--out", onnx.to_str().unwrap(), "--calib-images", "2"]));
    let imported = pixelcnn_runtime::onnx::import(&onnx).unwrap();
    assert_eq!(imported.class_names, ["circle", "square"]);

    // check-samples names the split it judged on, and the classes.
    let said = ok(&trainer(&[
        "check-samples",
        "--run",
        r,
        "--data",
        shapes.to_str().unwrap(),
        "--per-class",
        "1",
        "--classifier-epochs",
        "1",
    ]));
    assert!(said.contains("real held-out images (the validation split"), "{said}");
    assert!(!said.contains("test images") && said.contains("class 1 (square):"), "{said}");

    // Resumed on other data: the error says what the run was trained on.
    let err = failure(&trainer(&["train", "--data", FIXTURE, "--out", r, "--resume"]));
    assert!(err.contains("was trained on a PNG folder with class folders circle, square"), "{err}");
    // An unconditional run says so in its header, not "0 classes".
    let plain = temp_dir("shapes-unconditional");
    let mut args = vec!["train", "--data", FIXTURE, "--out", plain.to_str().unwrap()];
    args.extend_from_slice(&SMALL[1..]);
    args.extend_from_slice(&["--max-steps", "1", "--epochs", "1", "--valid-images", "2"]);
    let out = trainer(&args);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(", unconditional;") && !stdout.contains("0 classes"), "{stdout}");
}

#[test]
fn options_are_checked_before_any_work() {
    let dir = temp_dir("options");
    let err = failure(&train(&dir.join("v"), &["--epochs", "1", "--valid-images", "0"]));
    assert!(err.contains("--valid-images") && err.contains("must be at least 1, got 0"), "{err}");
    let err = failure(&train(&dir.join("m"), &["--minutes", "NaN"]));
    assert!(err.contains("--minutes must be a positive number, got NaN"), "{err}");
    // Negative numbers get the option's range, not "unexpected argument".
    let err = failure(&train(&dir.join("m"), &["--minutes", "-5"]));
    assert!(err.contains("--minutes must be a positive number, got -5"), "{err}");
    let err = failure(&train(&dir.join("e"), &["--epochs", "-1"]));
    assert!(err.contains("--epochs") && err.contains("must be at least 1, got -1"), "{err}");
    let err = failure(&train(&dir.join("l"), &["--epochs", "1", "--lr", "-0.1"]));
    assert!(err.contains("--lr must be a positive number, got -0.1"), "{err}");
    for refused in ["v", "m", "e", "l"] {
        assert!(!dir.join(refused).exists(), "no run folder for a refused run ({refused})");
    }
}

#[test]
fn a_resumed_run_drops_the_metrics_logged_after_its_checkpoint() {
    let run = temp_dir("metrics");
    ok(&train(&run, &["--epochs", "3", "--max-steps", "30"]));
    let metrics = run.join("metrics.jsonl");
    // As if the process was killed after logging step 75 but before its checkpoint.
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text.push_str("{\"kind\":\"train\",\"step\":75,\"images\":1200,\"nats_per_image\":1.0}\n");
    std::fs::write(&metrics, text).unwrap();
    ok(&trainer(&[
        "train",
        "--data",
        FIXTURE,
        "--out",
        run.to_str().unwrap(),
        "--resume",
        "--max-steps",
        "1",
    ]));
    let steps: Vec<u64> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert!(steps.iter().all(|&s| s <= 31), "{steps:?}");
    assert!(steps.contains(&25), "{steps:?}");
}

/// Runs the trainer with its stdout closed before it writes (`… | head -0`).
fn with_closed_stdout(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_does_not_stop_training() {
    let run = temp_dir("pipe");
    let mut args = vec!["train", "--data", FIXTURE, "--out", run.to_str().unwrap()];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&["--epochs", "1", "--valid-images", "10"]);
    let out = with_closed_stdout(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(Checkpoint::load(&run).unwrap().progress.epoch, 1);

    // `trainer eval … | head -0`: the score is lost, but nothing panics.
    let eval = ["eval", "--run", run.to_str().unwrap(), "--data", FIXTURE, "--split", "valid"];
    let out = with_closed_stdout(&eval);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_with_an_error_at_once() {
    let run = temp_dir("ctrl-c");
    let mut args = vec!["train", "--data", FIXTURE, "--out", run.to_str().unwrap()];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&["--epochs", "1000"]);
    let child = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // metrics.jsonl appears after 25 steps: the Ctrl-C handler is installed by then.
    let started = std::time::Instant::now();
    while !run.join("metrics.jsonl").exists() {
        assert!(started.elapsed().as_secs() < 120, "training never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an interrupted run exits with an error");
    assert!(stderr.contains("interrupted at step") && stderr.contains("--resume"), "{stderr}");
    let ckpt = Checkpoint::load(&run).unwrap();
    assert!(ckpt.progress.step >= 25, "{:?}", ckpt.progress);
}

#[test]
fn progress_lines_go_to_stderr_when_it_is_not_a_terminal() {
    let run = temp_dir("progress");
    // 31 steps per epoch: step 100 is step 7 of epoch 4.
    let out = train(&run, &["--epochs", "4", "--max-steps", "100", "--valid-images", "10"]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("epoch 4 step 7/31:") && stderr.contains("images/s"), "{stderr}");
    let run = run.to_str().unwrap();
    // Work shorter than the first line's delay writes no progress line at
    // all: no `0/N (0s left)` before any work, and no bar per validation.
    assert!(!stderr.contains("scoring ["), "{stderr}");
    let out = trainer(&["eval", "--run", run, "--data", FIXTURE, "--split", "valid"]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("scoring [") && !stderr.contains("(0s left)"), "{stderr}");
    // With the line delay at zero, every redraw is a line.
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["eval", "--run", run, "--data", FIXTURE, "--split", "valid"])
        .env("PIXELCNN_PROGRESS_SECONDS", "0")
        .output()
        .unwrap();
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scoring ["), "{stderr}");
}

#[test]
fn a_finished_run_can_be_extended_but_not_reshaped() {
    let run = temp_dir("extend");
    ok(&train(&run, &["--epochs", "1", "--valid-images", "10"]));
    let r = run.to_str().unwrap();
    let resume = |extra: &[&str]| {
        let mut args =
            vec!["train", "--data", FIXTURE, "--out", r, "--resume", "--valid-images", "10"];
        args.extend_from_slice(extra);
        trainer(&args)
    };
    let out = ok(&resume(&["--epochs", "2"]));
    assert!(!out.contains("after 0 steps"), "{out}");
    assert_eq!(Checkpoint::load(&run).unwrap().progress.epoch, 2);
    let err = failure(&resume(&["--epochs", "3", "--channels", "16"]));
    assert!(err.contains("--channels 16 conflicts with the run's channels 8"), "{err}");
    // The run's own values are accepted.
    ok(&resume(&["--channels", "8", "--blocks", "2", "--max-steps", "1"]));
    // Flags a resumed run cannot honour are refused, not ignored.
    for (flags, message) in [
        (&["--levels", "4"][..], "--levels 4 conflicts with the run's levels 2"),
        (&["--batch", "8"][..], "--batch 8 conflicts with the run's batch 16"),
        (&["--lr", "1e-3"][..], "add --restart-schedule"),
        (&["--dynamic-binarization"][..], "--dynamic-binarization conflicts with the run"),
        (&["--restart-schedule"][..], "--restart-schedule needs the new cycle's length"),
    ] {
        let err = failure(&resume(&[flags, &["--max-steps", "1"]].concat()));
        assert!(err.contains(message), "{flags:?}: {err}");
    }
    ok(&resume(&["--levels", "2", "--batch", "16", "--lr", "2e-3", "--max-steps", "1"]));
}

#[test]
fn a_restarted_schedule_warms_up_again_to_its_new_peak() {
    let run = temp_dir("restart");
    ok(&train(&run, &["--epochs", "1", "--valid-images", "5"]));
    let r = run.to_str().unwrap();
    let before = Checkpoint::load(&run).unwrap();
    ok(&trainer(&[
        "train",
        "--data",
        FIXTURE,
        "--out",
        r,
        "--resume",
        "--restart-schedule",
        "--lr",
        "1e-3",
        "--epochs",
        "4",
        "--valid-images",
        "5",
    ]));
    let after = Checkpoint::load(&run).unwrap();
    assert_eq!(after.settings.cycle.step, before.progress.step);
    assert_eq!(after.settings.lr, 1e-3);
    assert_eq!(after.progress.epoch, 5, "the new cycle adds four epochs");
    let lrs: Vec<(u64, f64)> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "train")
        .map(|v| (v["step"].as_u64().unwrap(), v["lr"].as_f64().unwrap()))
        .collect();
    let cycle = before.progress.step as u64;
    let old_end = lrs.iter().rfind(|(s, _)| *s <= cycle).unwrap().1;
    let new: Vec<f64> = lrs.iter().filter(|(s, _)| *s > cycle).map(|&(_, lr)| lr).collect();
    let peak = new.iter().copied().fold(0.0, f64::max);
    assert!(old_end < 4e-4, "the first cycle decayed: {old_end}");
    assert!(peak > 8e-4 && peak <= 1e-3, "the new cycle's peak: {peak}");
    assert!(new.last().unwrap() < &1.5e-4, "and it decays again: {new:?}");
}

#[test]
fn a_run_folder_keeps_only_the_latest_sample_grids() {
    let run = temp_dir("grids");
    ok(&train(&run, &["--epochs", "7", "--valid-images", "5"]));
    let mut grids: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("samples-epoch-"))
        .collect();
    grids.sort();
    let expected: Vec<String> = (3..=7).map(|e| format!("samples-epoch-{e:03}.png")).collect();
    assert_eq!(grids, expected);
}

#[test]
fn export_stores_the_int8_ranges_measured_on_training_images() {
    let run = temp_dir("export");
    ok(&train(&run, &["--epochs", "1", "--max-steps", "2", "--valid-images", "10"]));
    let onnx = run.join("model.onnx");
    let (r, o) = (run.to_str().unwrap(), onnx.to_str().unwrap());
    let out =
        trainer(&["export", "--run", r, "--out", o, "--calib", FIXTURE, "--calib-images", "7"]);
    ok(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("int8 ranges from 7 training IDX images from a folder named mnist-mini"),
        "{said}"
    );
    let imported = pixelcnn_runtime::onnx::import(&onnx).unwrap();
    let cal = imported.calibration.expect("the ranges are stored");
    assert_eq!(cal.images, 7);
    assert_eq!(cal.layer_out.len(), imported.arch.layers());
    assert!(cal.layer_out.iter().chain(&cal.vertical_pre).all(|r| *r > 0.0), "{cal:?}");
    // An ONNX file never lands on a .pcnn model or the checkpoint.
    let model = run.join("model.pcnn");
    std::fs::write(&model, b"a device model").unwrap();
    let err = failure(&trainer(&["export", "--run", r, "--out", model.to_str().unwrap()]));
    assert!(err.contains("give it the .onnx extension"), "{err}");
    assert_eq!(std::fs::read(&model).unwrap(), b"a device model");
}

#[test]
fn check_samples_labels_samples_of_gated_and_plain_runs() {
    for arch in ["gated", "pixelcnn"] {
        let out = temp_dir(&format!("check-{arch}"));
        ok(&train(&out, &["--arch", arch, "--max-steps", "10", "--epochs", "1"]));
        let said = ok(&trainer(&[
            "check-samples",
            "--run",
            out.to_str().unwrap(),
            "--data",
            FIXTURE,
            "--per-class",
            "1",
            "--classifier-epochs",
            "1",
            "--json",
        ]));
        let v: serde_json::Value = serde_json::from_str(said.trim()).expect("JSON");
        let share = v["samples_recognised"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share), "{arch}: {v}");
        assert_eq!(v["per_class"].as_array().map(Vec::len), Some(10), "{arch}");
    }
}
