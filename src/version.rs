//! What `artifact --version` says: the version, the commit it was built
//! from, the target and the C library it needs at least.

use serde::Serialize;

/// `0.1.0 (abc1234 2026-12-01, x86_64-unknown-linux-gnu, glibc 2.17)`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("ARTIFACT_COMMIT"),
    " ",
    env!("ARTIFACT_COMMIT_DATE"),
    ", ",
    env!("ARTIFACT_TARGET"),
    ", ",
    env!("ARTIFACT_LIBC"),
    ")"
);

/// `artifact --version --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub version: &'static str,
    pub commit: &'static str,
    pub commit_date: &'static str,
    pub target: &'static str,
    pub libc: &'static str,
}

pub const VERSION: Version = Version {
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("ARTIFACT_COMMIT"),
    commit_date: env!("ARTIFACT_COMMIT_DATE"),
    target: env!("ARTIFACT_TARGET"),
    libc: env!("ARTIFACT_LIBC"),
};

/// Whether `args` ask for the version as JSON (`--version --json`, any order):
/// answered before the command line is parsed, as clap answers `--version`.
pub fn wants_json(args: &[String]) -> bool {
    let has = |f: &[&str]| args.iter().skip(1).any(|a| f.contains(&a.as_str()));
    has(&["--version", "-V"]) && has(&["--json"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_the_commit_target_and_libc() {
        assert!(LONG.starts_with(env!("CARGO_PKG_VERSION")));
        assert!(LONG.contains(VERSION.target) && LONG.contains(VERSION.libc));
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wants_json(&args(&["artifact", "--json", "--version"])));
        assert!(!wants_json(&args(&["artifact", "--version"])));
        assert!(!wants_json(&args(&["artifact", "pack", "--json"])));
    }
}
