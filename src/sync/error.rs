//! What can go wrong in a sync, each with what to do about it.

use std::path::{Path, PathBuf};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::aws::s3::S3Error;
use crate::aws::AwsFailure;
use crate::model::S3UrlError;

/// What can go wrong in a sync, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    BadUrl(#[from] S3UrlError),
    #[error("{} is not a folder", path.display())]
    MissingDir { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: file name is not valid UTF-8, so it cannot be an S3 key", path.display())]
    NonUtf8 { path: PathBuf },
    #[error("{} is a symlink to {}, outside the synced folder", path.display(), target.display())]
    LinkOutside { path: PathBuf, target: PathBuf },
    #[error("{} is not a regular file, folder or symlink", path.display())]
    NotAFile { path: PathBuf },
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("s3://{bucket}/{key} is damaged ({problem}); it was left as it is and nothing it may name was deleted")]
    Damaged {
        bucket: String,
        key: String,
        problem: String,
    },
    #[error("{}: `{name}` is the name artifact keeps its own state under in the bucket", path.display())]
    Reserved { path: PathBuf, name: String },
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    #[error(transparent)]
    Secrets(#[from] crate::scan::SecretsFound),
    #[error("refusing to delete {count} objects from s3://{bucket}/{prefix}: more than --max-delete {max}; nothing was deleted (uploads were applied)")]
    TooManyDeletes {
        bucket: String,
        prefix: String,
        count: usize,
        max: usize,
    },
}

impl SyncError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SyncError {
        SyncError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// How the user can fix the problem.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SyncError::BadUrl(e) => e.hint(),
            SyncError::MissingDir { .. } => "build the folder first (e.g. npm run build), or fix the path".into(),
            SyncError::NonUtf8 { .. } => "rename the file to a UTF-8 name".into(),
            SyncError::LinkOutside { .. } => "copy the target into the folder, or remove the link".into(),
            SyncError::NotAFile { .. } => "remove it from the folder".into(),
            SyncError::Reserved { .. } => "rename the file or leave it out of the folder: it would be overwritten".into(),
            SyncError::Damaged { bucket, key, .. } => format!(
                "restore it from the bucket's versions (aws s3api list-object-versions --bucket {bucket} --prefix {key}, then copy the last good one back)"
            ),
            SyncError::NoSuchBucket { .. } => "create the bucket (deploy-infra's stack does), or fix the bucket name and --region".into(),
            SyncError::Aws(f) => return f.hint(),
            SyncError::Secrets(found) => found.hint(),
            SyncError::TooManyDeletes { .. } => "check that the folder is complete; raise --max-delete if so many deletes are intended".into(),
            SyncError::Io { .. } => return None,
        })
    }
}

/// Turns an SDK error into one that says what to do; a missing bucket is named.
pub(crate) fn classify<E>(operation: &'static str, target: &str, err: SdkError<E>) -> SyncError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    crate::aws::s3::classify(operation, target, err).into()
}

impl From<S3Error> for SyncError {
    fn from(e: S3Error) -> SyncError {
        match e {
            S3Error::NoSuchBucket { bucket } => SyncError::NoSuchBucket { bucket },
            S3Error::Aws(f) => SyncError::Aws(f),
            S3Error::Encode { key, source } => SyncError::Io {
                path: key.into(),
                source: std::io::Error::other(source),
            },
        }
    }
}

impl crate::output::Hint for SyncError {
    fn hint(&self) -> Option<String> {
        SyncError::hint(self)
    }
}
