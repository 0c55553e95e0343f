//! The values of single keys that several tables share: a runtime, an
//! architecture, a bytecode mode, the kinds `slim` drops.

use super::error::{invalid, Problem};
use super::raw::{RawBytecode, RawSlim};
use crate::model::runtime::{self as target, Arch, Runtime};
use crate::model::slim::{SlimKind, SLIM_KINDS, SLIM_VALUES};
use crate::model::Bytecode;

/// `[pack] slim`'s value: the kinds of file left out.
pub(super) fn slim_of(raw: Option<&RawSlim>) -> Result<Vec<SlimKind>, Problem> {
    let names = match raw {
        None | Some(RawSlim::Flag(false)) => return Ok(Vec::new()),
        Some(RawSlim::Flag(true)) => return Ok(SLIM_KINDS.to_vec()),
        Some(RawSlim::Kinds(names)) => names,
    };
    let mut kinds = Vec::with_capacity(names.len());
    for name in names {
        let kind = SlimKind::parse(name).ok_or_else(|| {
            invalid(
                "pack.slim",
                format!("{name:?} is not a kind of file slim drops"),
                format!("use {SLIM_VALUES}"),
            )
        })?;
        kinds.push(kind);
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// A `bytecode` key's value.
pub(super) fn bytecode_of(
    key: &str,
    raw: Option<&RawBytecode>,
) -> Result<Option<Bytecode>, Problem> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.text();
    Bytecode::parse(&text).map(Some).ok_or_else(|| {
        invalid(
            key,
            format!("{text:?} is not a bytecode mode"),
            format!("use {}", crate::model::bytecode::BYTECODE_VALUES),
        )
    })
}

/// A runtime key's value: one of Lambda's Python runtimes.
pub(super) fn runtime_of(
    key: &str,
    name: Option<&str>,
) -> Result<Option<&'static Runtime>, Problem> {
    let Some(name) = name else { return Ok(None) };
    target::runtime_named(name).map(Some).ok_or_else(|| {
        invalid(
            key,
            format!("{name:?} is not a Lambda Python runtime artifact knows"),
            format!("use one of {}", target::runtime_names()),
        )
    })
}

/// An architecture key's value, as Lambda names it.
pub(super) fn arch_of(key: &str, name: Option<&str>) -> Result<Option<Arch>, Problem> {
    let Some(name) = name else { return Ok(None) };
    Arch::parse(name).map(Some).ok_or_else(|| {
        invalid(
            key,
            format!("{name:?} is not a Lambda architecture"),
            "use \"x86_64\" or \"arm64\" (Graviton)",
        )
    })
}
