//! The HTTP/1.1 request framing shared by the hello-world servers: complete requests are
//! answered in order (pipelining), a head longer than `MAX_HEAD` gets 431 and a malformed one
//! 400 (then the connection closes), and each byte is scanned for the end of the head once.

pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: safer-ring\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Longest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;

/// One connection's unanswered input.
#[derive(Default)]
pub struct Conn {
    inbuf: Vec<u8>,
    /// Bytes of `inbuf` already searched for the end of the head (without finding it).
    scanned: usize,
}

/// What a parsed head says.
enum Head {
    /// A complete request of this many bytes (head and body); whether it asks to close.
    Request(usize, bool),
    /// The body has not all arrived.
    Partial,
    Bad,
}

fn parse(buf: &[u8], end: usize) -> Head {
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Head::Bad;
    };
    let mut lines = head[..end - 4].split("\r\n");
    let request = lines.next().unwrap_or("");
    let mut parts = request.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Bad;
    };
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Head::Bad;
    }
    let mut close = version == "HTTP/1.0";
    let mut body = 0;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return Head::Bad;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            match v.parse::<usize>() {
                Ok(n) => body = n,
                Err(_) => return Head::Bad,
            }
        } else if k.eq_ignore_ascii_case("connection") {
            close =
                v.eq_ignore_ascii_case("close") || (close && !v.eq_ignore_ascii_case("keep-alive"));
        }
    }
    match end.checked_add(body) {
        Some(total) if buf.len() >= total => Head::Request(total, close),
        Some(_) => Head::Partial,
        None => Head::Bad,
    }
}

impl Conn {
    /// Answers the complete requests in `data` (appending to what is buffered); whether to
    /// close after sending `out`. With nothing buffered, `data` is read in place and only an
    /// unfinished request is kept, so a connection between requests holds no input buffer.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        if !self.inbuf.is_empty() {
            self.inbuf.extend_from_slice(data);
            let inbuf = std::mem::take(&mut self.inbuf);
            let (used, close) = self.scan(&inbuf, out);
            self.inbuf = inbuf;
            self.inbuf.drain(..used);
            if self.inbuf.is_empty() {
                self.inbuf = Vec::new(); // free what a split request needed
            }
            return close;
        }
        let (used, close) = self.scan(data, out);
        self.inbuf.extend_from_slice(&data[used..]);
        close
    }

    /// Appends one response per complete request at the start of `input`; the bytes those
    /// requests took, and whether to close the connection after sending `out` (the client
    /// asked, or its input was refused).
    fn scan(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        let mut used = 0;
        let close = loop {
            let buf = &input[used..];
            // Resume the search where the last one stopped (3 bytes back: "\r\n\r" may end it).
            let from = self.scanned.saturating_sub(3);
            let Some(at) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") else {
                self.scanned = buf.len();
                if buf.len() > MAX_HEAD {
                    out.extend_from_slice(TOO_LARGE);
                    break true;
                }
                break false;
            };
            let end = from + at + 4;
            if end > MAX_HEAD {
                out.extend_from_slice(TOO_LARGE);
                break true;
            }
            match parse(buf, end) {
                Head::Request(len, close) => {
                    out.extend_from_slice(RESPONSE);
                    used += len;
                    self.scanned = 0;
                    if close {
                        break true;
                    }
                }
                Head::Partial => {
                    self.scanned = from + at; // the head's end is found again at once
                    break false;
                }
                Head::Bad => {
                    out.extend_from_slice(BAD);
                    break true;
                }
            }
        };
        (used, close)
    }
}
