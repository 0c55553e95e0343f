//! The secret scan: what in a file's bytes looks like a credential. One pass
//! of a multi-pattern automaton finds the places worth a look (key prefixes,
//! PEM headers, token prefixes, names like `password`); each is then checked
//! exactly. Binary files (a NUL in the first 8 KiB) are skipped. Values the
//! AWS documentation uses as examples, and placeholders, are not findings.
//! [`check`] runs it over files, with allow entries and a cache of clean
//! contents.

mod check;
mod detect;
mod hit;
mod shapes;
mod tree;

pub use check::{check_files, Finding, ScanFile, ScanStats, Scanned, Scanner, SecretsFound};
pub use detect::scan_bytes;
pub use hit::{mask, Hit, Kind};
pub use tree::scan_tree;
