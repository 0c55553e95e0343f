//! The pack decision, with no I/O: which zips to write and which to keep,
//! which to remove, how many distinct contents the written zips need, and
//! whether a dependency install runs.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::blobs::Codec;
use super::hash::Hash;
use super::observe::FunctionState;
use super::{hex, Manifest};

/// What happens to one function's zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZipAction {
    Write,
    Keep,
}

/// Why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZipReason {
    /// No zip for it yet.
    New,
    /// A file, path, mode or the compression level changed.
    InputsChanged,
    /// The zip on disk is not the one the manifest describes.
    ZipAltered,
    /// The requirements are not installed yet (dry run): contents unknown.
    DependenciesPending,
    Unchanged,
}

/// One function's zip, planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipStep {
    pub function: String,
    pub action: ZipAction,
    pub reason: ZipReason,
    pub file_count: usize,
    pub unzipped_size: u64,
}

/// A zip of a function no longer in the project file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedZip {
    pub function: String,
    pub zip: String,
}

/// The requirements install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallStep {
    pub requirements: String,
    /// Whether the installer runs (no finished install in the cache).
    pub runs: bool,
}

/// A pack, decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackPlan {
    pub zips: Vec<ZipStep>,
    pub removed: Vec<RemovedZip>,
    /// Distinct contents (by hash and codec) the zips to write hold.
    pub contents_to_pack: usize,
    pub install: Option<InstallStep>,
}

impl PackPlan {
    /// The functions whose zip is written.
    pub fn written(&self) -> impl Iterator<Item = &ZipStep> {
        self.zips.iter().filter(|z| z.action == ZipAction::Write)
    }
}

/// One function, as the plan sees it.
#[derive(Debug, Clone)]
pub struct ZipInput {
    pub name: String,
    pub state: FunctionState,
    pub file_count: usize,
    /// Each entry's content hash and codec.
    pub contents: Vec<(Hash, Codec)>,
}

/// Decides the pack.
pub fn plan(
    zips: &[ZipInput],
    previous: Option<&Manifest>,
    install: Option<InstallStep>,
) -> PackPlan {
    let pending = install.as_ref().is_some_and(|i| i.runs);
    let mut contents: HashSet<(Hash, Codec)> = HashSet::new();
    let steps: Vec<ZipStep> = zips
        .iter()
        .map(|z| {
            let s = &z.state;
            let reason = match &s.previous {
                _ if pending => ZipReason::DependenciesPending,
                None => ZipReason::New,
                Some(m) if m.input_hash != hex(&s.input_hash) => ZipReason::InputsChanged,
                Some(_) if !s.intact => ZipReason::ZipAltered,
                Some(_) => ZipReason::Unchanged,
            };
            let action = if reason == ZipReason::Unchanged {
                ZipAction::Keep
            } else {
                contents.extend(z.contents.iter().copied());
                ZipAction::Write
            };
            ZipStep {
                function: z.name.clone(),
                action,
                reason,
                file_count: z.file_count,
                unzipped_size: s.unzipped_size,
            }
        })
        .collect();
    let names: BTreeSet<&str> = zips.iter().map(|z| z.name.as_str()).collect();
    let removed = previous
        .iter()
        .flat_map(|m| m.functions.iter())
        .filter(|(name, _)| !names.contains(name.as_str()))
        .map(|(name, m)| RemovedZip {
            function: name.clone(),
            zip: m.zip.clone(),
        })
        .collect();
    PackPlan {
        zips: steps,
        removed,
        contents_to_pack: contents.len(),
        install,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::pack::FunctionManifest;

    fn entry(input: Hash) -> FunctionManifest {
        FunctionManifest {
            deployed_name: "p-dev-f".into(),
            zip: "f.zip".into(),
            zip_size: 1,
            unzipped_size: 1,
            file_count: 1,
            sha256: String::new(),
            code_sha256: String::new(),
            input_hash: hex(&input),
        }
    }

    fn zip(name: &str, input: u8, previous: Option<u8>, intact: bool, contents: &[u8]) -> ZipInput {
        let codec = Codec::for_name("a.py", 6);
        ZipInput {
            name: name.into(),
            state: FunctionState {
                input_hash: [input; 32],
                unzipped_size: 10,
                previous: previous.map(|p| entry([p; 32])),
                intact,
            },
            file_count: contents.len(),
            contents: contents.iter().map(|c| ([*c; 32], codec)).collect(),
        }
    }

    fn reasons(p: &PackPlan) -> Vec<(&str, ZipReason)> {
        p.zips
            .iter()
            .map(|z| (z.function.as_str(), z.reason))
            .collect()
    }

    #[test]
    fn each_zip_is_written_or_kept_for_a_reason() {
        let zips = [
            zip("new", 1, None, false, &[1, 2]),
            zip("changed", 2, Some(9), true, &[2, 3]),
            zip("altered", 3, Some(3), false, &[4]),
            zip("same", 4, Some(4), true, &[5]),
        ];
        let p = plan(&zips, None, None);
        assert_eq!(
            reasons(&p),
            [
                ("new", ZipReason::New),
                ("changed", ZipReason::InputsChanged),
                ("altered", ZipReason::ZipAltered),
                ("same", ZipReason::Unchanged)
            ]
        );
        assert_eq!(p.written().count(), 3);
        // Contents 1, 2, 3 and 4: the shared 2 counts once, the kept zip's 5 not at all.
        assert_eq!(p.contents_to_pack, 4);
    }

    #[test]
    fn zips_of_functions_gone_from_the_project_are_removed() {
        let previous = Manifest {
            version: 1,
            project: "p".into(),
            environment: "dev".into(),
            functions: BTreeMap::from([
                ("kept".to_string(), entry([1; 32])),
                ("gone".to_string(), entry([2; 32])),
            ]),
        };
        let p = plan(
            &[zip("kept", 1, Some(1), true, &[1])],
            Some(&previous),
            None,
        );
        assert_eq!(
            p.removed,
            [RemovedZip {
                function: "gone".into(),
                zip: "f.zip".into()
            }]
        );
    }

    #[test]
    fn a_pending_install_marks_every_zip_for_writing() {
        let install = InstallStep {
            requirements: "requirements.txt".into(),
            runs: true,
        };
        let p = plan(&[zip("same", 4, Some(4), true, &[5])], None, Some(install));
        assert_eq!(reasons(&p), [("same", ZipReason::DependenciesPending)]);
        assert!(p.install.unwrap().runs);
    }
}
