use aya_build::Toolchain;

/// Builds the XDP programs (`lb-ebpf`) for the BPF target with the nightly
/// toolchain, so a plain `cargo build` builds everything (aya-template's
/// layout).
fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let root_dir = format!("{manifest_dir}/../lb-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "lb-ebpf",
            root_dir: &root_dir,
            ..Default::default()
        }],
        Toolchain::default(),
    )
}
