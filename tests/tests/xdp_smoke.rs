use tests::xdp::Harness;

#[test]
fn program_loads_and_passes_verifier() {
    Harness::load().expect("load");
}
