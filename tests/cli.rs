//! The `pixelcnn` binary: output, files and exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

fn pixelcnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pixelcnn")).args(args).output().expect("runs")
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
