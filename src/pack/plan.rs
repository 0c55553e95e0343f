//! The pack decision, with no I/O: which zips to write and which to keep,
//! which to remove, how many distinct contents the written zips need, and
//! whether a dependency install runs.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::blobs::Codec;
use super::hash::Hash;
use super::observe::FunctionState;
use super::Manifest;
use crate::util::hex;

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
    /// The function's (or layer's) key.
    pub function: String,
    /// A layer's zip.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub layer: bool,
    pub action: ZipAction,
    pub reason: ZipReason,
    pub file_count: usize,
    pub unzipped_size: u64,
}

/// A zip of a function no longer in the project file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedZip {
    pub function: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub layer: bool,
    pub zip: String,
}

/// One requirements install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallStep {
    pub requirements: String,
    /// `python3.12 x86_64`.
    pub target: String,
    /// Whether the installer runs (no finished install in the cache).
    pub runs: bool,
    /// The functions and layers that take it.
    pub used_by: Vec<String>,
}

/// A pack, decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackPlan {
    pub zips: Vec<ZipStep>,
    pub removed: Vec<RemovedZip>,
    /// Distinct contents (by hash and codec) the zips to write hold.
    pub contents_to_pack: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub installs: Vec<InstallStep>,
}

impl ZipStep {
    /// How reports name it: the function's key, or `layer:NAME`.
    pub fn label(&self) -> String {
        if self.layer {
            format!("layer:{}", self.function)
        } else {
            self.function.clone()
        }
    }
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
    pub layer: bool,
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
    installs: Vec<InstallStep>,
) -> PackPlan {
    let mut contents: HashSet<(Hash, Codec)> = HashSet::new();
    let steps: Vec<ZipStep> = zips
        .iter()
        .map(|z| {
            let s = z.state;
            let reason = match &s.previous {
                _ if s.pending => ZipReason::DependenciesPending,
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
                layer: z.layer,
                action,
                reason,
                file_count: z.entries.len(),
                unzipped_size: s.unzipped_size,
            }
        })
        .collect();
    let names: BTreeSet<(bool, &str)> = zips.iter().map(|z| (z.layer, z.name)).collect();
    let removed = previous
        .iter()
        .flat_map(|m| {
            let functions = m.functions.iter().map(|(n, e)| (false, n, e));
            functions.chain(m.layers.iter().map(|(n, e)| (true, n, e)))
        })
        .filter(|(layer, name, _)| !names.contains(&(*layer, name.as_str())))
        .map(|(layer, name, m)| RemovedZip {
            function: name.clone(),
            layer,
            zip: m.zip.clone(),
        })
        .collect();
    PackPlan {
        zips: steps,
        removed,
        contents_to_pack: contents.len(),
        installs,
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
            sbom: None,
            bytecode: None,
            slimmed: None,
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
                layer: false,
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
                pending: false,
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
        let p = plan(&inputs(&zips), None, Vec::new());
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
            layers: BTreeMap::from([("deps".to_string(), entry([3; 32]))]),
        };
        let zips = [zip("kept", 1, Some(1), true, &[1])];
        let p = plan(&inputs(&zips), Some(&previous), Vec::new());
        assert_eq!(
            p.removed,
            [
                RemovedZip {
                    function: "gone".into(),
                    layer: false,
                    zip: "f.zip".into()
                },
                RemovedZip {
                    function: "deps".into(),
                    layer: true,
                    zip: "f.zip".into()
                }
            ]
        );
    }

    #[test]
    fn a_pending_install_marks_the_zips_that_take_it_for_writing() {
        let install = InstallStep {
            requirements: "requirements.txt".into(),
            target: "python3.12 x86_64".into(),
            runs: true,
            used_by: vec!["same".into()],
        };
        let mut zips = [
            zip("same", 4, Some(4), true, &[5]),
            zip("other", 5, Some(5), true, &[6]),
        ];
        zips[0].state.pending = true;
        let p = plan(&inputs(&zips), None, vec![install]);
        assert_eq!(
            reasons(&p),
            [
                ("same", ZipReason::DependenciesPending),
                ("other", ZipReason::Unchanged)
            ]
        );
        assert!(p.installs[0].runs);
    }
}
