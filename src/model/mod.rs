//! The crate's shared vocabulary: small value types that several layers speak
//! (config resolves them, pack, cfn, sync and policy use them). Nothing here
//! does I/O or knows about commands; it imports only `names`.

pub mod runtime;
pub mod s3url;

pub use runtime::{Arch, Runtime, Target};
pub use s3url::{S3Url, S3UrlError};
