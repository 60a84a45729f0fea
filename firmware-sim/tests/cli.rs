//! The simulator's command line: bad options and a closed stdout end with a
//! clear message or quietly, never with a panic.

use std::process::{Command, Stdio};

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pixelcnn-firmware-sim"))
}

fn out_dir(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("pixelcnn-fw-{}-{name}", std::process::id()));
    dir.to_string_lossy().into_owned()
}

#[test]
fn zero_digits_is_an_error_not_a_panic() {
    let out = sim().args(["--count", "0", "--out", &out_dir("zero")]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--count must be at least 1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_closed_stdout_ends_quietly_after_writing_the_files() {
    let dir = out_dir("pipe");
    let mut child = sim()
        .args(["--count", "1", "--out", &dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(std::path::Path::new(&dir).join("generation.gif").is_file());
}

#[test]
fn the_summary_names_the_panel_as_its_datasheet_does() {
    let out = sim().args(["--count", "1", "--out", &out_dir("name")]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("drew 1 image, 784 pixels, on a simulated SSD1306 OLED"), "{stdout}");
}
