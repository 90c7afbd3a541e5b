fn assert_sync<T: Sync>(_: &T) {}

fn main() {
    let ring = safer_ring::Ring::new(8).unwrap();
    assert_sync(&ring);
}
