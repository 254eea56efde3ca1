use which::which;

fn main() {
    // Rebuild the eBPF programs when bpf-linker changes (aya-template does
    // the same): the linker is part of the toolchain that produces the
    // object, and it does the final code generation.
    let bpf_linker = which("bpf-linker").expect(
        "bpf-linker not found: run `cargo xtask setup` (it builds bpf-linker with llvm-22)",
    );
    println!("cargo:rerun-if-changed={}", bpf_linker.display());
}
