//! `[pack] slim` on a set of installed dependencies: the entries the kinds
//! asked for name are left out, and counted (the rules are `model::slim`'s).

use std::sync::Arc;

use super::manifest::Slimmed;
use crate::model::slim::{self, SlimKind};

/// Leaves out of `entries` (dependency folders' files, under `prefix` in the
/// zip; each with a file index `size_of` gives the size of) what `kinds`
/// drop; None when slim is off or left nothing out.
pub(super) fn apply(
    kinds: &[SlimKind],
    entries: &mut Vec<(Arc<str>, usize)>,
    size_of: impl Fn(usize) -> u64,
    prefix: &str,
) -> Option<Slimmed> {
    if kinds.is_empty() {
        return None;
    }
    let mut slimmed = Slimmed::default();
    entries.retain(|(zip_path, id)| {
        let inside = match prefix {
            "" => Some(&**zip_path),
            _ => zip_path
                .strip_prefix(prefix)
                .and_then(|p| p.strip_prefix('/')),
        };
        let Some(kind) = inside.and_then(|p| slim::dropped_by(kinds, p)) else {
            return true;
        };
        slimmed.files += 1;
        slimmed.bytes = slimmed.bytes.saturating_add(size_of(*id));
        *slimmed.kinds.entry(kind.name().to_string()).or_default() += 1;
        false
    });
    (slimmed.files > 0).then_some(slimmed)
}
