//! ferrolb userspace: the daemon's building blocks and the CLI's client.

/// The compiled XDP programs (lb-ebpf), built by this crate's build script.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf"));
