use which::which;

fn main() {
    // Rebuild the eBPF programs when bpf-linker changes (aya-template does
    // the same): the linker is part of the toolchain that produces the
    // object, and it does the final code generation.
    let bpf_linker = which("bpf-linker").expect(
        "bpf-linker not found: run `cargo xtask setup` (it builds bpf-linker with llvm-22)",
    );
    println!("cargo:rerun-if-changed={}", bpf_linker.display());
    // Misaligned packet access in one instruction. Header fields sit at any
    // offset (the IPv4 header starts 14 bytes into the frame), so every
    // packet access is `read_unaligned`/`write_unaligned` (`packet.rs`);
    // without this feature LLVM splits each into byte loads and shifts (a
    // 4-byte address: 4 loads, 3 shifts, 3 ors), which made up a good part
    // of the per-packet cost. The kernel allows misaligned packet access
    // where the CPU does it efficiently (x86-64, arm64: the verifier's
    // strict alignment is off there) and the JIT emits one load or store,
    // which is what clang-built XDP programs get anyway. bpf-linker does the
    // code generation, so the feature is its flag (LLVM 22); aya-build sets
    // the build's RUSTFLAGS itself, and rustc's per-function
    // `#[target_feature]` does not reach the BPF backend (one subtarget).
    println!("cargo:rustc-link-arg=--cpu-features=+allows-misaligned-mem-access");
}
