//! Progress on stderr: a bar on a terminal, else a plain line every few
//! seconds (logs and CI see that long work is moving).

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// Seconds between two progress lines when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// A progress bar over `len` steps of `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = if io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        ProgressBar::with_draw_target(
            Some(len),
            ProgressDrawTarget::term_like_with_hz(Box::new(Lines::default()), 1),
        )
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A "terminal" that turns each redraw into one whole line, at most one per
/// [`LINE_EVERY`] (the first at once).
#[derive(Debug, Default)]
struct Lines {
    /// The redraw being assembled, and when the last line went out.
    state: Mutex<(String, Option<Instant>)>,
}

impl Lines {
    fn with<R>(&self, f: impl FnOnce(&mut (String, Option<Instant>)) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl TermLike for Lines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write_str(s)
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.with(|(line, _)| line.push_str(s));
        Ok(())
    }
    fn clear_line(&self) -> io::Result<()> {
        self.with(|(line, _)| line.clear());
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        let out = self.with(|(line, last)| {
            let text = std::mem::take(line).trim().to_string();
            if text.is_empty() || last.is_some_and(|t| t.elapsed() < LINE_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
            Some(text)
        });
        match out {
            Some(text) => writeln!(io::stderr().lock(), "{text}"),
            None => Ok(()),
        }
    }
}
