//! What goes to a terminal: colour (only on a terminal, never with
//! `NO_COLOR`, nor on `TERM=dumb`) and a progress line on stderr.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Whether to colour a stream that is (or is not) a terminal.
pub fn colour_for(is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|v| v == "dumb");
    is_terminal && !no_color && !dumb
}

pub fn stderr_colour() -> bool {
    colour_for(std::io::stderr().is_terminal())
}

pub fn stdout_colour() -> bool {
    colour_for(std::io::stdout().is_terminal())
}

#[derive(Clone, Copy)]
pub enum Style {
    Error,
    Warning,
    Good,
    Bad,
}

/// `text` in `style` when `on`, else as it is.
pub fn paint(on: bool, style: Style, text: &str) -> String {
    if !on {
        return text.to_string();
    }
    let code = match style {
        Style::Error => "1;31",
        Style::Warning => "1;33",
        Style::Good => "32",
        Style::Bad => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A one-line progress report on stderr, rewritten in place; shown only
/// when stderr is a terminal (and not with --quiet).
pub struct Progress {
    on: bool,
    stage: String,
    total: u64,
    last: Option<Instant>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Progress {
            on: enabled && std::io::stderr().is_terminal(),
            stage: String::new(),
            total: 0,
            last: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.on
    }

    fn draw(&self, extra: &str) {
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[Krdma-initrd: {}{extra}", self.stage);
        let _ = e.flush();
    }

    /// Start a stage (`reading /boot/initrd.img (31.2 MiB)`).
    pub fn stage(&mut self, msg: impl Into<String>) {
        if !self.on {
            return;
        }
        self.stage = msg.into();
        self.total = 0;
        self.last = Some(Instant::now());
        self.draw("");
    }

    /// A stage of `total` bytes: `bytes` shows a percentage.
    pub fn stage_of(&mut self, msg: impl Into<String>, total: u64) {
        self.stage(msg);
        self.total = total;
    }

    /// Bytes done so far in this stage, redrawn at most 10 times a second.
    pub fn bytes(&mut self, n: u64) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        match (n.min(self.total) * 100).checked_div(self.total) {
            Some(pct) => self.draw(&format!(": {pct}% of {}", mib(self.total))),
            None => self.draw(&format!(": {}", mib(n))),
        }
    }

    /// Clear the line.
    pub fn finish(&mut self) {
        if self.on && self.last.take().is_some() {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

pub fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
}

/// A writer that reports the bytes through it to a `Progress`.
pub struct Counting<'a, W: Write> {
    pub inner: W,
    pub n: u64,
    pub progress: &'a mut Progress,
}

impl<'a, W: Write> Counting<'a, W> {
    pub fn new(inner: W, progress: &'a mut Progress) -> Self {
        Counting {
            inner,
            n: 0,
            progress,
        }
    }
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        self.progress.bytes(self.n);
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_only_when_on() {
        assert_eq!(paint(false, Style::Error, "error"), "error");
        assert_eq!(paint(true, Style::Error, "error"), "\x1b[1;31merror\x1b[0m");
        assert!(!colour_for(false));
    }

    #[test]
    fn counting_writer_counts() {
        let mut p = Progress::new(false);
        let mut c = Counting {
            inner: Vec::new(),
            n: 0,
            progress: &mut p,
        };
        c.write_all(b"hello").unwrap();
        assert_eq!((c.n, c.inner.as_slice()), (5, &b"hello"[..]));
        assert_eq!(mib(3 << 20), "3.0 MiB");
    }
}
