//! Objects a run has put in one bucket, by content, so that the same bytes
//! bound for another bucket (another target's region or account) are copied
//! there server-side instead of sent again from the build host. A copy that
//! S3 refuses (the source not readable by the target's role, another
//! partition) falls back to the upload it replaces.

use std::collections::HashMap;
use std::sync::Mutex;

/// Where a content already is: its bucket, key and ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub bucket: String,
    pub key: String,
    pub etag: String,
}

/// The largest object one CopyObject may copy (S3's limit, 5 GiB).
pub const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// The contents of this run, by SHA-256, each with the first place it was put.
#[derive(Debug, Default)]
pub struct Copies {
    seen: Mutex<HashMap<[u8; 32], Source>>,
}

impl Copies {
    /// Where `sha256` already is in a bucket other than `bucket`, when the
    /// object is small enough for one CopyObject.
    pub fn source_for(&self, sha256: &[u8; 32], size: u64, bucket: &str) -> Option<Source> {
        if size > MAX_COPY_BYTES {
            return None;
        }
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(sha256).filter(|s| s.bucket != bucket).cloned()
    }

    /// Notes that `sha256` is now at `source` (the first place is kept).
    pub fn remember(&self, sha256: [u8; 32], source: Source) {
        if source.etag.is_empty() {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.entry(sha256).or_insert(source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(bucket: &str) -> Source {
        Source {
            bucket: bucket.into(),
            key: "lambda/a.zip".into(),
            etag: "\"e\"".into(),
        }
    }

    #[test]
    fn a_content_is_copied_from_another_bucket_never_onto_its_own() {
        let c = Copies::default();
        assert_eq!(c.source_for(&[1; 32], 10, "us"), None);
        c.remember([1; 32], at("us"));
        c.remember([1; 32], at("eu"));
        assert_eq!(c.source_for(&[1; 32], 10, "us"), None, "the same bucket");
        assert_eq!(
            c.source_for(&[1; 32], 10, "eu"),
            Some(at("us")),
            "the first place"
        );
        assert_eq!(c.source_for(&[2; 32], 10, "eu"), None, "another content");
        assert_eq!(
            c.source_for(&[1; 32], MAX_COPY_BYTES + 1, "eu"),
            None,
            "too big for one copy"
        );
        c.remember(
            [3; 32],
            Source {
                etag: String::new(),
                ..at("us")
            },
        );
        assert_eq!(
            c.source_for(&[3; 32], 10, "eu"),
            None,
            "no ETag to pin the copy to"
        );
    }
}
