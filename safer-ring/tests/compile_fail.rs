//! Compile-time guarantees: the ring stays on its thread; buffers are out of reach in flight.

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
