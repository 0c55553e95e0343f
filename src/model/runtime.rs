//! What a Lambda runtime runs on, in one place: the runtime table (Python
//! version, glibc, operating system), the architectures, and the wheel tags an
//! install for a runtime and architecture may take, best first.
//!
//! | runtime    | Python | OS                | glibc |
//! |------------|--------|-------------------|-------|
//! | python3.9  | 3.9    | Amazon Linux 2    | 2.26  |
//! | python3.10 | 3.10   | Amazon Linux 2    | 2.26  |
//! | python3.11 | 3.11   | Amazon Linux 2    | 2.26  |
//! | python3.12 | 3.12   | Amazon Linux 2023 | 2.34  |
//! | python3.13 | 3.13   | Amazon Linux 2023 | 2.34  |
//! | python3.14 | 3.14   | Amazon Linux 2023 | 2.34  |
//!
//! A wheel runs on a runtime when its platform tag is `any` or a manylinux
//! tag whose glibc is not newer than the runtime's, for the runtime's machine
//! (`x86_64` or `aarch64`), and its Python and ABI tags fit the version.

use serde::{Deserialize, Serialize};

/// One Lambda Python runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runtime {
    pub name: &'static str,
    /// Python (3, minor).
    pub minor: u32,
    /// The glibc minor version (2.x) of the runtime's OS.
    pub glibc_minor: u32,
    pub os: &'static str,
}

/// The Python runtimes Lambda runs.
pub const RUNTIMES: &[Runtime] = &[
    runtime("python3.9", 9, 26, "Amazon Linux 2"),
    runtime("python3.10", 10, 26, "Amazon Linux 2"),
    runtime("python3.11", 11, 26, "Amazon Linux 2"),
    runtime("python3.12", 12, 34, "Amazon Linux 2023"),
    runtime("python3.13", 13, 34, "Amazon Linux 2023"),
    runtime("python3.14", 14, 34, "Amazon Linux 2023"),
];

const fn runtime(name: &'static str, minor: u32, glibc_minor: u32, os: &'static str) -> Runtime {
    Runtime {
        name,
        minor,
        glibc_minor,
        os,
    }
}

/// The runtime named `name`, if Lambda has it.
pub fn runtime_named(name: &str) -> Option<&'static Runtime> {
    RUNTIMES.iter().find(|r| r.name == name)
}

/// The names of every known runtime, for hints.
pub fn runtime_names() -> String {
    RUNTIMES
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A function's architecture, as Lambda names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    Arm64,
}

impl Arch {
    /// Lambda's name (`Architectures` in a template).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The machine in wheel platform tags.
    pub fn machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The architecture Lambda calls `name`.
    pub fn parse(name: &str) -> Option<Arch> {
        match name {
            "x86_64" => Some(Arch::X86_64),
            "arm64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// The oldest glibc manylinux wheels exist for on this machine.
    fn first_glibc_minor(self) -> u32 {
        match self {
            Arch::X86_64 => 5,
            Arch::Arm64 => 17,
        }
    }
}

/// What an install is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub runtime: &'static Runtime,
    pub arch: Arch,
}

/// The legacy names of some manylinux tags.
fn legacy_alias(glibc_minor: u32) -> Option<&'static str> {
    match glibc_minor {
        17 => Some("manylinux2014"),
        12 => Some("manylinux2010"),
        5 => Some("manylinux1"),
        _ => None,
    }
}

/// The glibc minors uv can target (`--python-platform <machine>-manylinux_2_N`).
const UV_GLIBC_MINORS: &[u32] = &[17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40];

impl Target {
    /// `python3.12 x86_64`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.runtime.name, self.arch.name())
    }

    /// `3.12`.
    pub fn python_version(&self) -> String {
        format!("3.{}", self.runtime.minor)
    }

    /// The ABI tag of the runtime's CPython: `cp312`.
    pub fn abi(&self) -> String {
        format!("cp3{}", self.runtime.minor)
    }

    /// Every manylinux platform tag the runtime takes, best (newest glibc) first,
    /// each legacy name right after the tag it stands for.
    pub fn platform_tags(&self) -> Vec<String> {
        let m = self.arch.machine();
        let mut tags = Vec::new();
        for minor in (self.arch.first_glibc_minor()..=self.runtime.glibc_minor).rev() {
            tags.push(format!("manylinux_2_{minor}_{m}"));
            if let Some(alias) = legacy_alias(minor) {
                tags.push(format!("{alias}_{m}"));
            }
        }
        tags
    }

    /// The newest glibc uv can be told to target that this runtime still
    /// has: uv then takes that tag and every older one.
    pub fn uv_platform(&self) -> String {
        let minor = UV_GLIBC_MINORS
            .iter()
            .rev()
            .find(|&&n| n <= self.runtime.glibc_minor)
            .copied()
            .unwrap_or(17);
        format!("{}-manylinux_2_{minor}", self.arch.machine())
    }

    /// `<machine>-manylinux_2_<runtime's glibc>`, as uv would name the
    /// runtime's newest tag (when it knows it).
    pub fn newest_platform(&self) -> String {
        format!(
            "{}-manylinux_2_{}",
            self.arch.machine(),
            self.runtime.glibc_minor
        )
    }

    /// The tags an installer was asked for, shortest faithful wording.
    pub fn tags_tried(&self, uv: bool) -> String {
        let m = self.arch.machine();
        let newest = if uv {
            self.uv_platform()
                .rsplit_once("manylinux_2_")
                .map_or(17, |(_, n)| n.parse().unwrap_or(17))
        } else {
            self.runtime.glibc_minor
        };
        format!(
            "{abi}/abi3/none with manylinux_2_{newest}_{m} down to manylinux_2_{}_{m}, or any",
            self.arch.first_glibc_minor(),
            abi = self.abi()
        )
    }

    /// Whether a wheel's platform tag runs on this target.
    pub fn takes_platform(&self, tag: &str) -> bool {
        tag == "any" || self.platform_tags().iter().any(|t| t == tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, arch: Arch) -> Target {
        Target {
            runtime: runtime_named(name).unwrap(),
            arch,
        }
    }

    #[test]
    fn amazon_linux_2_runtimes_have_glibc_2_26_and_2023_ones_2_34() {
        for (name, glibc) in [
            ("python3.9", 26),
            ("python3.11", 26),
            ("python3.12", 34),
            ("python3.13", 34),
        ] {
            assert_eq!(runtime_named(name).unwrap().glibc_minor, glibc, "{name}");
        }
        assert!(runtime_named("python2.7").is_none());
        assert!(runtime_named("nodejs20.x").is_none());
    }

    #[test]
    fn python3_12_takes_manylinux_2_34_and_refuses_2_39() {
        let t = target("python3.12", Arch::X86_64);
        assert!(t.takes_platform("manylinux_2_34_x86_64"));
        assert!(t.takes_platform("manylinux2014_x86_64"));
        assert!(t.takes_platform("manylinux1_x86_64"));
        assert!(t.takes_platform("any"));
        assert!(!t.takes_platform("manylinux_2_39_x86_64"));
        assert!(!t.takes_platform("manylinux_2_34_aarch64"));
        assert!(!t.takes_platform("linux_x86_64"));
        let tags = t.platform_tags();
        assert_eq!(tags[0], "manylinux_2_34_x86_64");
        assert_eq!(tags.last().unwrap(), "manylinux1_x86_64");
        // 2_34 .. 2_5 and three legacy names.
        assert_eq!(tags.len(), 30 + 3);
    }

    #[test]
    fn python3_11_refuses_manylinux_2_34_and_takes_2_26() {
        let t = target("python3.11", Arch::X86_64);
        assert!(!t.takes_platform("manylinux_2_34_x86_64"));
        assert!(!t.takes_platform("manylinux_2_28_x86_64"));
        assert!(t.takes_platform("manylinux_2_26_x86_64"));
    }

    #[test]
    fn arm64_takes_aarch64_wheels_from_manylinux_2_17() {
        let t = target("python3.12", Arch::Arm64);
        assert!(t.takes_platform("manylinux_2_17_aarch64"));
        assert!(t.takes_platform("manylinux2014_aarch64"));
        assert!(!t.takes_platform("manylinux_2_17_x86_64"));
        assert_eq!(t.platform_tags().last().unwrap(), "manylinux2014_aarch64");
        assert_eq!(t.uv_platform(), "aarch64-manylinux_2_34");
    }

    #[test]
    fn uv_is_asked_for_the_newest_glibc_it_knows_that_the_runtime_has() {
        assert_eq!(
            target("python3.13", Arch::X86_64).uv_platform(),
            "x86_64-manylinux_2_34"
        );
        // uv knows no 2_26: 2_17 is the newest it has at or below it.
        assert_eq!(
            target("python3.10", Arch::X86_64).uv_platform(),
            "x86_64-manylinux_2_17"
        );
        // ... which is narrower than the runtime takes.
        let t = target("python3.10", Arch::X86_64);
        assert_ne!(t.uv_platform(), t.newest_platform());
        let t = target("python3.12", Arch::X86_64);
        assert_eq!(t.uv_platform(), t.newest_platform());
        assert!(target("python3.10", Arch::X86_64)
            .tags_tried(true)
            .contains("manylinux_2_17_x86_64 down to manylinux_2_5_x86_64"));
        assert!(target("python3.10", Arch::X86_64)
            .tags_tried(false)
            .starts_with("cp310/abi3/none with manylinux_2_26_x86_64"));
    }

    #[test]
    fn architectures_parse_as_lambda_names_them() {
        assert_eq!(Arch::parse("arm64"), Some(Arch::Arm64));
        assert_eq!(Arch::parse("x86_64"), Some(Arch::X86_64));
        assert_eq!(Arch::parse("aarch64"), None);
        assert_eq!(Arch::Arm64.machine(), "aarch64");
    }
}
