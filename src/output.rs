//! One place that decides what goes to stdout and stderr.
//!
//! stdout carries data (`--json` prints exactly one document there); the human
//! summary, warnings and logs go to stderr, so a pipe sees only data.

use std::io::Write;

use serde::Serialize;

/// An error that can say how the user fixes it: the `hint:` line under the
/// `error:` line. Every error type a command can end with implements it, so
/// the edge finds a hint with one lookup over the error's chain.
pub trait Hint {
    fn hint(&self) -> Option<String>;
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
