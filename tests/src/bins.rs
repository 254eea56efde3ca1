//! Finding the project's binaries (ferrolbd, ferrolbctl, ferrolb-testsrv)
//! from test code, the demo and the benchmark.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Directory holding the built binaries: `$FERROLB_BIN_DIR` if set, else the
/// directory of the running executable (`target/<profile>`; an integration
/// test runs from `target/<profile>/deps`, so its parent).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERROLB_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// Path of a built binary, or an error saying how to build it.
pub fn bin_path(name: &str) -> Result<PathBuf> {
    let path = bin_dir().join(name);
    if !path.is_file() {
        bail!(
            "binary {} not found; build the binaries first with \
             `cargo build --workspace --bins` (`cargo xtask test` does) \
             or point FERROLB_BIN_DIR at them",
            path.display()
        );
    }
    Ok(path)
}
