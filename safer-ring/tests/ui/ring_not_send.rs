fn assert_send<T: Send>(_: T) {}

fn main() {
    let ring = safer_ring::Ring::new(8).unwrap();
    assert_send(ring);
}
