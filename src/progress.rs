//! Progress on stderr: a bar on a terminal, else a plain line every few
//! seconds (logs and CI see that long work is moving).

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{
    HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike,
};

/// When stderr is not a terminal: the first progress line comes after this
/// much work (so short work writes none to a log) ...
const FIRST_LINE_AFTER: Duration = Duration::from_secs(10);
/// ... and the next ones at most this often.
const LINE_EVERY: Duration = Duration::from_secs(30);
/// Overrides both, in seconds, when stderr is not a terminal (0: a line at
/// every redraw, as the tests use).
pub const SECONDS_VAR: &str = "PIXELCNN_PROGRESS_SECONDS";

/// A progress bar over `len` steps of `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = if io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        let (first, every) = match std::env::var(SECONDS_VAR).ok().and_then(|s| s.parse().ok()) {
            Some(s) => (Duration::from_secs(s), Duration::from_secs(s)),
            None => (FIRST_LINE_AFTER, LINE_EVERY),
        };
        ProgressBar::with_draw_target(
            Some(len),
            ProgressDrawTarget::term_like_with_hz(Box::new(Lines::new(first, every)), 1),
        )
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} ({left})")
            .expect("valid template")
            .with_key("left", time_left)
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The time left, once there is work done to estimate it from.
fn time_left(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = if state.pos() == 0 {
        w.write_str("starting")
    } else {
        write!(w, "{:#} left", HumanDuration(state.eta()))
    };
}

/// A "terminal" that turns each redraw into one whole line: the first after
/// [`FIRST_LINE_AFTER`], then at most one per [`LINE_EVERY`].
#[derive(Debug)]
struct Lines {
    /// The redraw being assembled, and when the next line may go out.
    state: Mutex<(String, Instant)>,
    every: Duration,
}

impl Lines {
    fn new(first_after: Duration, every: Duration) -> Self {
        Lines { state: Mutex::new((String::new(), Instant::now() + first_after)), every }
    }

    /// The line to write now, if one is due.
    fn due(&self) -> Option<String> {
        self.with(|(line, next)| {
            let text = std::mem::take(line).trim().to_string();
            let now = Instant::now();
            if text.is_empty() || now < *next {
                return None;
            }
            *next = now + self.every;
            Some(text)
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut (String, Instant)) -> R) -> R {
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
        let out = self.due();
        match out {
            Some(text) => writeln!(io::stderr().lock(), "{text}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redraw(lines: &Lines, text: &str) -> Option<String> {
        lines.clear_line().unwrap();
        lines.write_str(text).unwrap();
        lines.due()
    }

    #[test]
    fn no_line_before_the_first_delay_then_one_per_interval() {
        let lines = Lines::new(Duration::from_secs(3600), Duration::ZERO);
        assert_eq!(redraw(&lines, "scoring [ ] 0/100 (0s left)"), None);
        assert_eq!(redraw(&lines, "scoring [=] 50/100 (1s left)"), None);

        let lines = Lines::new(Duration::ZERO, Duration::from_secs(3600));
        assert_eq!(redraw(&lines, " a 1/2 ").as_deref(), Some("a 1/2"));
        assert_eq!(redraw(&lines, "a 2/2"), None, "the next line waits for the interval");
        assert_eq!(redraw(&lines, ""), None);
    }
}
