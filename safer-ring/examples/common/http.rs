//! The HTTP/1.1 request framing shared by the hello-world servers.

pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: safer-ring\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// Length of the first complete request in `buf` (headers plus Content-Length body), and
/// whether it asked to close the connection.
pub fn next_request(buf: &[u8]) -> Option<(usize, bool)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut body = 0;
    let mut close =
        head.starts_with("GET / HTTP/1.0") && !head.to_ascii_lowercase().contains("keep-alive");
    for line in head.split("\r\n").skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            body = v.parse().ok()?;
        } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    (buf.len() >= end + body).then_some((end + body, close))
}

/// Appends one response per complete request at the front of `inbuf` (consuming them);
/// returns whether the client asked to close.
pub fn answer(inbuf: &mut Vec<u8>, out: &mut Vec<u8>) -> bool {
    let mut used = 0;
    let mut close = false;
    while let Some((len, c)) = next_request(&inbuf[used..]) {
        out.extend_from_slice(RESPONSE);
        used += len;
        if c {
            close = true;
            break;
        }
    }
    inbuf.drain(..used);
    close
}
