//! The pack decision, with no I/O: which zips to write and which to keep,
//! which to remove, how many distinct contents the written zips need, and
//! whether a dependency install runs.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

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
pub struct ZipInput<'a> {
    pub name: &'a str,
    pub state: &'a FunctionState,
    /// `(zip path, file)` of each entry; `hashes[file]` is its content hash.
    pub entries: &'a [(Arc<str>, usize)],
    pub hashes: &'a [Hash],
    pub level: u32,
}

/// Decides the pack.
pub fn plan(
    zips: &[ZipInput<'_>],
    previous: Option<&Manifest>,
    install: Option<InstallStep>,
) -> PackPlan {
    let pending = install.as_ref().is_some_and(|i| i.runs);
    let mut contents: HashSet<(Hash, Codec)> = HashSet::new();
    let steps: Vec<ZipStep> = zips
        .iter()
        .map(|z| {
            let s = z.state;
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
                contents.extend(
                    z.entries
                        .iter()
                        .map(|(path, id)| (z.hashes[*id], Codec::for_name(path, z.level))),
                );
                ZipAction::Write
            };
            ZipStep {
                function: z.name.to_string(),
                action,
                reason,
                file_count: z.entries.len(),
                unzipped_size: s.unzipped_size,
            }
        })
        .collect();
    let names: BTreeSet<&str> = zips.iter().map(|z| z.name).collect();
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

    /// A function's state, its entries (`f{c}.py` holding content `c`) and
    /// the hash table they index.
    struct Zip {
        name: String,
        state: FunctionState,
        entries: Vec<(Arc<str>, usize)>,
        hashes: Vec<Hash>,
    }

    impl Zip {
        fn input(&self) -> ZipInput<'_> {
            ZipInput {
                name: &self.name,
                state: &self.state,
                entries: &self.entries,
                hashes: &self.hashes,
                level: 6,
            }
        }
    }

    fn zip(name: &str, input: u8, previous: Option<u8>, intact: bool, contents: &[u8]) -> Zip {
        Zip {
            name: name.into(),
            state: FunctionState {
                input_hash: [input; 32],
                unzipped_size: 10,
                previous: previous.map(|p| entry([p; 32])),
                intact,
                unrecorded: false,
            },
            entries: contents
                .iter()
                .enumerate()
                .map(|(i, c)| (Arc::from(format!("f{c}.py").as_str()), i))
                .collect(),
            hashes: contents.iter().map(|c| [*c; 32]).collect(),
        }
    }

    fn inputs(zips: &[Zip]) -> Vec<ZipInput<'_>> {
        zips.iter().map(Zip::input).collect()
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
        let p = plan(&inputs(&zips), None, None);
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
        let zips = [zip("kept", 1, Some(1), true, &[1])];
        let p = plan(&inputs(&zips), Some(&previous), None);
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
        let zips = [zip("same", 4, Some(4), true, &[5])];
        let p = plan(&inputs(&zips), None, Some(install));
        assert_eq!(reasons(&p), [("same", ZipReason::DependenciesPending)]);
        assert!(p.install.unwrap().runs);
    }
}
