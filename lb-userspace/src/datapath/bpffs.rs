//! Making sure the pin directory is on a bpf filesystem.

use std::{ffi::CString, io, os::unix::ffi::OsStrExt, path::Path};

use super::DatapathError;

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Creates `dir` on a bpf filesystem. When the nearest existing ancestor is
/// not on one (the bpffs root is not mounted, as inside `ip netns exec`,
/// which remounts /sys), mounts a bpf filesystem on `dir`'s parent first, as
/// Cilium does.
pub(crate) fn prepare(dir: &Path) -> Result<(), DatapathError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DatapathError::Bpffs { path, source }
    };
    let mut probe = dir;
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p,
            None => break,
        }
    }
    if !is_bpffs(probe).map_err(err(probe))? {
        let root = dir.parent().unwrap_or(dir);
        std::fs::create_dir_all(root).map_err(err(root))?;
        if !is_bpffs(root).map_err(err(root))? {
            tracing::info!(path = %root.display(), "mounting a bpf filesystem");
            mount_bpffs(root).map_err(err(root))?;
        }
    }
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    if !is_bpffs(dir).map_err(err(dir))? {
        return Err(err(dir)(io::Error::other("not on a bpf filesystem")));
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> io::Result<bool> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: an all-zero statfs is a valid value to be overwritten.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path, `st` a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

fn mount_bpffs(path: &Path) -> io::Result<()> {
    let target = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let fstype = c"bpf";
    // SAFETY: all pointers are NUL-terminated strings that outlive the call;
    // no mount data.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
