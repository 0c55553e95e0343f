//! `[pack] bytecode`: which `.pyc` files a zip carries beside its sources.
//!
//! Hash-based `.pyc` (PEP 552) stay valid whatever the zip's dates: an
//! `unchecked-hash` file is loaded as it is, a `checked-hash` one after
//! Python hashes its source again. Timestamp `.pyc` are never made: the
//! zip's fixed dates would make them stale.

/// How `.pyc` files are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BytecodeMode {
    Off,
    UncheckedHash,
    CheckedHash,
}

/// A zip's bytecode setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytecode {
    pub mode: BytecodeMode,
    /// `"required"`: no interpreter for the runtime is an error, not a warning.
    pub required: bool,
}

impl Default for Bytecode {
    fn default() -> Self {
        Bytecode {
            mode: BytecodeMode::UncheckedHash,
            required: false,
        }
    }
}

/// The values `bytecode` takes, for error hints.
pub const BYTECODE_VALUES: &str =
    "\"unchecked-hash\" (the default), \"checked-hash\", \"required\" (unchecked-hash, and no interpreter for the runtime is an error) or false";

impl Bytecode {
    /// `false`/`true` or one of the names.
    pub fn parse(value: &str) -> Option<Bytecode> {
        let (mode, required) = match value {
            "false" | "off" => (BytecodeMode::Off, false),
            "true" | "unchecked-hash" => (BytecodeMode::UncheckedHash, false),
            "checked-hash" => (BytecodeMode::CheckedHash, false),
            "required" => (BytecodeMode::UncheckedHash, true),
            _ => return None,
        };
        Some(Bytecode { mode, required })
    }

    /// The name the manifest reports.
    pub fn name(self) -> &'static str {
        match self.mode {
            BytecodeMode::Off => "off",
            BytecodeMode::UncheckedHash => "unchecked-hash",
            BytecodeMode::CheckedHash => "checked-hash",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_parses_to_its_mode() {
        assert_eq!(Bytecode::parse("false").unwrap().mode, BytecodeMode::Off);
        assert_eq!(Bytecode::parse("true"), Some(Bytecode::default()));
        assert_eq!(
            Bytecode::parse("checked-hash").unwrap().mode,
            BytecodeMode::CheckedHash
        );
        let r = Bytecode::parse("required").unwrap();
        assert!(r.required && r.mode == BytecodeMode::UncheckedHash);
        assert_eq!(Bytecode::parse("timestamp"), None);
        assert_eq!(Bytecode::default().name(), "unchecked-hash");
    }
}
