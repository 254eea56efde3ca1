//! A directory under /tmp removed on drop.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::netns::unique_name;

#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create `/tmp/flb<pid>-<n>-<role>`.
    pub fn new(role: &str) -> Result<TempDir> {
        let path = std::env::temp_dir().join(unique_name(role));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
