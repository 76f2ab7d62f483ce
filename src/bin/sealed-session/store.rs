//! `--store`: which store holds the bodies of pointer cookies.

use std::path::Path;
use std::sync::Arc;

use sealed_session::store::{FileStore, SessionStore};

use crate::failure::Failure;

/// A parsed `--store` value.
#[derive(Debug, PartialEq, Eq)]
pub enum StoreSpec<'a> {
    /// `file:DIR`: a [`FileStore`] directory, which must exist.
    File(&'a Path),
    /// `redis://...` or `rediss://...`: a Redis URL.
    Redis(&'a str),
}

impl<'a> StoreSpec<'a> {
    /// Parses `file:DIR` or a Redis URL.
    pub fn parse(spec: &'a str) -> Result<Self, Failure> {
        if let Some(dir) = spec.strip_prefix("file:") {
            if dir.is_empty() {
                return Err(Failure::msg(
                    "--store file: needs a directory, e.g. file:/var/lib/sessions",
                ));
            }
            return Ok(StoreSpec::File(Path::new(dir)));
        }
        if spec.starts_with("redis://") || spec.starts_with("rediss://") {
            return Ok(StoreSpec::Redis(spec));
        }
        Err(Failure::msg(format!(
            "unknown --store {spec:?}: use file:DIR or redis://host:port"
        )))
    }

    /// Opens the store (a Redis store with this key prefix).
    pub async fn open(
        &self,
        #[cfg_attr(not(feature = "redis"), allow(unused_variables))] redis_prefix: &str,
    ) -> Result<Arc<dyn SessionStore>, Failure> {
        match *self {
            StoreSpec::File(dir) => {
                // Opening a FileStore creates a missing directory: a typo should not do that.
                match std::fs::metadata(dir) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(Failure::msg(format!(
                            "store path {} is not a directory",
                            dir.display()
                        )))
                    }
                    Err(e) => {
                        return Err(Failure::msg(format!(
                            "cannot use store directory {}: {e}",
                            dir.display()
                        )))
                    }
                }
                Ok(Arc::new(FileStore::open(dir).await?))
            }
            #[cfg(feature = "redis")]
            StoreSpec::Redis(url) => {
                let store = sealed_session::store::RedisStore::connect(url)
                    .await?
                    .with_prefix(redis_prefix);
                Ok(Arc::new(store))
            }
            #[cfg(not(feature = "redis"))]
            StoreSpec::Redis(_) => Err(Failure::msg(
                "this build has no Redis support; rebuild with --features cli,redis",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            StoreSpec::parse("file:/tmp/s").unwrap(),
            StoreSpec::File(Path::new("/tmp/s"))
        );
        assert_eq!(
            StoreSpec::parse("redis://127.0.0.1:6379/2").unwrap(),
            StoreSpec::Redis("redis://127.0.0.1:6379/2")
        );
        assert!(StoreSpec::parse("file:").is_err());
        assert!(StoreSpec::parse("memory").is_err());
        assert!(StoreSpec::parse("/var/lib/sessions").is_err());
    }
}
