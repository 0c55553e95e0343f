//! One place that decides what goes to stdout and stderr.
//!
//! stdout carries data (`--json` prints exactly one document there); the human
//! summary, warnings and logs go to stderr, so a pipe sees only data. Deep code
//! never prints: it tells a [`Reporter`] (a stack event, a wait, a warning),
//! which the command implements with its [`Printer`]; tests collect instead.

use std::io::Write;

use serde::Serialize;

/// An error that can say how the user fixes it: the `hint:` line under the
/// `error:` line. Every error type a command can end with implements it, so
/// the edge finds a hint with one lookup over the error's chain.
pub trait Hint {
    fn hint(&self) -> Option<String>;
}

/// What deep code tells people while it works, without knowing how (or
/// whether) that is shown: the model is uv's reporters.
pub trait Reporter: Sync {
    /// A step worth a line of the human summary (an event, a wait, a change set).
    fn progress(&self, line: String);
    /// Something that went wrong without failing the command.
    fn warning(&self, text: String);
}

impl Reporter for Printer {
    fn progress(&self, line: String) {
        self.line(line);
    }

    fn warning(&self, text: String) {
        self.warn(text);
    }
}

/// Any `Fn(String)` reports progress and warnings alike (tests collect lines so).
impl<F: Fn(String) + Sync> Reporter for F {
    fn progress(&self, line: String) {
        self(line);
    }

    fn warning(&self, text: String) {
        self(format!("warning: {text}"));
    }
}

/// How much to print, and in which form.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub json: bool,
    pub quiet: bool,
}

impl Printer {
    /// A line of the human summary (stderr; silent with `--json` or `-q`).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json && !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{}", text.as_ref());
        }
    }

    /// A warning (stderr; silent only with `-q`).
    pub fn warn(&self, text: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "warning: {}", text.as_ref());
        }
    }

    /// Data people asked for, as text (a listing): stdout, so `> file` keeps
    /// it; with `--json` the document is printed instead.
    pub fn listing(&self, lines: &[String]) -> std::io::Result<()> {
        if self.json {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        for l in lines {
            writeln!(out, "{l}")?;
        }
        Ok(())
    }

    /// A line people must see in every mode (`--json` and `-q` too): what
    /// made the command fail, beside its document.
    pub fn always(&self, text: impl AsRef<str>) {
        let _ = writeln!(std::io::stderr().lock(), "{}", text.as_ref());
    }

    /// Whether a progress bar may be drawn: stderr is a terminal, output is for people.
    pub fn wants_progress(&self) -> bool {
        use std::io::IsTerminal;
        !self.json && !self.quiet && std::io::stderr().is_terminal()
    }

    /// The machine-readable result (stdout, only with `--json`).
    pub fn document<T: Serialize>(&self, value: &T) -> std::io::Result<()> {
        if self.json {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::other)?;
            writeln!(out)?;
        }
        Ok(())
    }
}

/// Bytes for people: `12.3 MB`.
pub fn human_bytes(n: u64) -> String {
    if n < 1000 {
        format!("{n} B")
    } else if n < 1_000_000 {
        format!("{:.1} kB", n as f64 / 1e3)
    } else {
        format!("{:.1} MB", n as f64 / 1e6)
    }
}
