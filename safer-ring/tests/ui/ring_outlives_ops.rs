fn main() {
    let ring = safer_ring::Ring::new(8).unwrap();
    let (r, _w) = ring.pipe().unwrap();
    let op = ring.read(&r, vec![0u8; 16]);
    // Operations borrow the ring: it cannot be dropped (unmapping its queues) under them.
    drop(ring);
    drop(op);
}
