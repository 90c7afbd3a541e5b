fn assert_send<T: Send>(_: T) {}

fn main() {
    let ring = safer_ring::Ring::new(8).unwrap();
    let (r, _w) = ring.pipe().unwrap();
    // I/O types share their fd with in-flight ops through an Rc: they stay on the ring's thread.
    assert_send(r);
}
