//! Compile-time guarantees: buffers are out of reach while in flight, and the ring outlives
//! its operations. (`Ring`/I/O types not `Send`/`Sync`: `compile_fail` doctests on `Ring`.)

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
