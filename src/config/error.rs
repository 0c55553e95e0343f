//! What can be wrong in a project file: [`ConfigError`] (with the file's
//! path, for users) and [`Problem`] (one key, before the path is known).

use std::path::PathBuf;

use crate::names::NameError;

/// An error in the project file: which file, what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid project file:\n{message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: `{key}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
        hint: String,
    },
    #[error("{}: {source}", path.display())]
    Name {
        path: PathBuf,
        #[source]
        source: NameError,
    },
}

impl ConfigError {
    /// How the user can fix the problem.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Read { path, .. } => Some(format!(
                "create {} or point --config at the project file",
                path.display()
            )),
            ConfigError::Parse { .. } => Some(
                "see the `artifact.toml` reference in docs/configuration.md for the keys each table takes"
                    .into(),
            ),
            ConfigError::Invalid { hint, .. } => Some(hint.clone()),
            ConfigError::Name { source, .. } => Some(source.hint.clone()),
        }
    }
}

/// A problem with one key, before the file's path is known to it.
#[derive(Debug)]
pub(crate) enum Problem {
    Invalid {
        key: String,
        message: String,
        hint: String,
    },
    Name(NameError),
}

impl From<NameError> for Problem {
    fn from(e: NameError) -> Self {
        Problem::Name(e)
    }
}

pub(crate) fn invalid(key: &str, message: String, hint: impl Into<String>) -> Problem {
    Problem::Invalid {
        key: key.to_string(),
        message,
        hint: hint.into(),
    }
}

/// Every pattern must be a valid glob.
pub(crate) fn check_globs(patterns: &[String]) -> Result<(), (String, String)> {
    for p in patterns {
        globset::Glob::new(p).map_err(|e| {
            (
                format!("pattern {p:?} is not a valid glob: {e}"),
                "use globs like \"**/*.pyc\" or \"tests/**\"".to_string(),
            )
        })?;
    }
    Ok(())
}

impl crate::output::Hint for ConfigError {
    fn hint(&self) -> Option<String> {
        ConfigError::hint(self)
    }
}
