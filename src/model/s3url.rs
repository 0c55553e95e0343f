//! `s3://bucket[/prefix]`, parsed once where a setting or argument is read.

use serde::{Deserialize, Serialize};

use crate::names;

/// An S3 location: a bucket and a prefix that is empty or ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

/// A string that is not an `s3://bucket[/prefix]` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not an S3 URL: {problem}")]
pub struct S3UrlError {
    pub url: String,
    pub problem: String,
}

impl S3UrlError {
    pub fn hint(&self) -> String {
        "write the destination as s3://bucket or s3://bucket/prefix".into()
    }
}

impl S3Url {
    pub fn parse(url: &str) -> Result<S3Url, S3UrlError> {
        let bad = |problem: &str| S3UrlError {
            url: url.to_string(),
            problem: problem.to_string(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it must start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is missing"));
        }
        names::check_bucket_name(bucket).map_err(|e| bad(&e.problem))?;
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(bad("the prefix has an empty, `.` or `..` part"));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }

    /// The key of `rel` under this prefix.
    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

impl crate::output::Hint for S3UrlError {
    fn hint(&self) -> Option<String> {
        Some(S3UrlError::hint(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        let u = S3Url::parse("s3://my-bucket").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("my-bucket", ""));
        let u = S3Url::parse("s3://my-bucket/site/v1/").unwrap();
        assert_eq!(u.prefix, "site/v1/");
        assert_eq!(u.key("a b.js"), "site/v1/a b.js");
        assert_eq!(u.to_string(), "s3://my-bucket/site/v1/");
        for bad in [
            "my-bucket",
            "s3://",
            "s3:///x",
            "s3://Bad_Bucket/x",
            "s3://b-1/a/../x",
            "http://b/x",
        ] {
            let e = S3Url::parse(bad).unwrap_err();
            assert_eq!(e.url, bad);
            assert!(e.to_string().contains("is not an S3 URL"), "{bad}: {e}");
        }
    }
}
