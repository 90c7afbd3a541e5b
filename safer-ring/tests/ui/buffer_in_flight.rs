fn main() {
    let ring = safer_ring::Ring::new(8).unwrap();
    let (r, _w) = ring.pipe().unwrap();
    let buf = vec![0u8; 16];
    let op = ring.read(&r, buf);
    // The buffer moved into the operation: it cannot be touched until the op hands it back.
    println!("{}", buf.len());
    drop(op);
}
