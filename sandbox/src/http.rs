//! Just enough HTTP/1.1 for the sandbox: read one bounded request, write one response.
//!
//! It owns request framing (httparse for the head, Content-Length or chunked bodies, the
//! 100-continue handshake, keep-alive), the size and time limits that keep a hostile or stuck
//! client from pinning a thread, and the URL helpers both listeners need (percent-decoding,
//! query strings, and the 2015 rack-protection dot-segment cleanup). It knows nothing about
//! Authy; it must never panic on any byte sequence a client sends.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Request line plus headers, in bytes.
    pub max_head: usize,
    /// Decoded body, in bytes.
    pub max_body: usize,
    /// Whole request, from its first byte being awaited to its last byte read.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head: 16 * 1024, max_body: 64 * 1024, deadline: Duration::from_secs(30) }
    }
}

/// One parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// The path part of the request target exactly as sent (no decoding, no query).
    pub path: String,
    /// The raw query string after `?`, if any.
    pub query: Option<String>,
    /// Header names lower-cased, values lossily decoded; order kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the client allows the connection to be reused after the answer.
    pub keep_alive: bool,
}

impl Request {
    /// The first header with that (lower-case) name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed (or went idle past the read timeout) between requests: not an error.
    Closed,
    /// Transport failure mid-request; nothing sensible can be answered.
    Io,
    /// Malformed request: answer 400 and close.
    Bad(&'static str),
    /// Head larger than the limit or too many headers: 431.
    HeadTooLarge,
    /// Body larger than the limit: 413.
    BodyTooLarge,
    /// The whole-request deadline passed: 408.
    Timeout,
}

impl ReadError {
    /// What was wrong, for the error body.
    pub(crate) fn detail(&self) -> &'static str {
        match self {
            ReadError::Closed | ReadError::Io => "connection closed",
            ReadError::Bad(why) => why,
            ReadError::HeadTooLarge => "request head too large",
            ReadError::BodyTooLarge => "request body too large",
            ReadError::Timeout => "request not received in time",
        }
    }

    /// The status to answer with, or `None` when the connection should just be dropped.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            ReadError::Closed | ReadError::Io => None,
            ReadError::Bad(_) => Some(400),
            ReadError::HeadTooLarge => Some(431),
            ReadError::BodyTooLarge => Some(413),
            ReadError::Timeout => Some(408),
        }
    }
}

const MAX_HEADERS: usize = 64;
const MAX_CHUNK_LINE: usize = 1024;

/// A byte source over the connection plus the bytes already buffered from it (pipelining).
struct Wire<'a, S> {
    stream: &'a mut S,
    buf: &'a mut Vec<u8>,
    deadline: Instant,
}

impl<S: Read> Wire<'_, S> {
    /// Reads more bytes into the buffer; `Ok(0)` is end of stream.
    fn fill(&mut self) -> Result<usize, ReadError> {
        if Instant::now() > self.deadline {
            return Err(ReadError::Timeout);
        }
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ReadError::Io),
            }
        }
    }

    /// Removes and returns exactly `n` bytes.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(ReadError::Bad("body shorter than announced"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Removes and returns one CRLF-terminated line, without the CRLF.
    fn line(&mut self) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let mut line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                line.truncate(pos);
                return Ok(line);
            }
            if self.buf.len() > MAX_CHUNK_LINE {
                return Err(ReadError::Bad("chunk line too long"));
            }
            if self.fill()? == 0 {
                return Err(ReadError::Bad("truncated chunked body"));
            }
        }
    }
}

/// Reads one request from `stream`. `buf` carries bytes read past the previous request.
///
/// Answers `100 Continue` itself when the client asks for it and the body is acceptable.
pub(crate) fn read_request<S: Read + Write>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    limits: Limits,
) -> Result<Request, ReadError> {
    let mut wire = Wire { stream, buf, deadline: Instant::now() + limits.deadline };
    // Parse the head, reading until it is complete or too large.
    let (head_len, method, path, query, minor, headers) = loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(wire.buf) {
            Ok(httparse::Status::Complete(n)) => {
                let method = parsed.method.unwrap_or("").to_owned();
                let target = parsed.path.unwrap_or("");
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                    None => (target.to_owned(), None),
                };
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_owned()))
                    .collect();
                break (n, method, path, query, parsed.version.unwrap_or(1), headers);
            }
            Ok(httparse::Status::Partial) => {
                if wire.buf.len() > limits.max_head {
                    return Err(ReadError::HeadTooLarge);
                }
                let was_empty = wire.buf.is_empty();
                match wire.fill() {
                    Ok(0) if was_empty => return Err(ReadError::Closed),
                    Ok(0) => return Err(ReadError::Bad("connection closed mid-request")),
                    Ok(_) => {}
                    // An idle keep-alive connection timing out is an ordinary close.
                    Err(ReadError::Io) if was_empty => return Err(ReadError::Closed),
                    Err(e) => return Err(e),
                }
            }
            Err(httparse::Error::TooManyHeaders) => return Err(ReadError::HeadTooLarge),
            Err(_) => return Err(ReadError::Bad("malformed request head")),
        }
    };
    if head_len > limits.max_head {
        return Err(ReadError::HeadTooLarge);
    }
    wire.buf.drain(..head_len);

    let mut req = Request { method, path, query, headers, body: Vec::new(), keep_alive: minor == 1 };
    if let Some(conn) = req.header("connection") {
        let conn = conn.to_ascii_lowercase();
        if conn.split(',').any(|t| t.trim() == "close") {
            req.keep_alive = false;
        } else if conn.split(',').any(|t| t.trim() == "keep-alive") {
            req.keep_alive = true;
        }
    }
    let expects_continue = req.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));

    let chunked = match req.header("transfer-encoding") {
        None => false,
        Some(te) => {
            // Only "chunked" (possibly after no-op codings) is understood; anything else is
            // refused rather than guessed, to keep request smuggling tests honest.
            let last = te.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(ReadError::Bad("unsupported transfer-encoding"));
            }
            if req.header("content-length").is_some() {
                return Err(ReadError::Bad("both content-length and transfer-encoding"));
            }
            true
        }
    };

    if chunked {
        if expects_continue && wire.buf.is_empty() {
            send_continue(wire.stream)?;
        }
        let mut body = Vec::new();
        loop {
            let line = wire.line()?;
            let size_text = String::from_utf8_lossy(&line);
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| ReadError::Bad("bad chunk size"))?;
            if size == 0 {
                // Trailer section: skip header lines until the empty one.
                loop {
                    if wire.line()?.is_empty() {
                        break;
                    }
                }
                break;
            }
            if body.len().saturating_add(size) > limits.max_body {
                return Err(ReadError::BodyTooLarge);
            }
            body.extend(wire.take(size)?);
            if !wire.line()?.is_empty() {
                return Err(ReadError::Bad("chunk not followed by CRLF"));
            }
        }
        req.body = body;
    } else {
        let mut length: Option<usize> = None;
        for (name, value) in &req.headers {
            if name != "content-length" {
                continue;
            }
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ReadError::Bad("bad content-length"));
            }
            let n: usize = value.parse().map_err(|_| ReadError::BodyTooLarge)?;
            if length.is_some_and(|l| l != n) {
                return Err(ReadError::Bad("conflicting content-length"));
            }
            length = Some(n);
        }
        let length = length.unwrap_or(0);
        if length > limits.max_body {
            return Err(ReadError::BodyTooLarge);
        }
        if length > 0 {
            if expects_continue && wire.buf.len() < length {
                send_continue(wire.stream)?;
            }
            req.body = wire.take(length)?;
        }
    }
    Ok(req)
}

fn send_continue<S: Write>(stream: &mut S) -> Result<(), ReadError> {
    stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").and_then(|()| stream.flush()).map_err(|_| ReadError::Io)
}

/// One response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub extra_headers: Vec<(String, String)>,
}

impl Response {
    /// A JSON response; Authy labels its bodies `application/json; charset=utf-8`.
    pub(crate) fn json(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "application/json; charset=utf-8".to_owned(),
            body: body.into().into_bytes(),
            extra_headers: Vec::new(),
        }
    }
}

/// The reason phrase for a status (any status may be sent; unknown ones get a neutral phrase).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Serialises a response. `head_only` answers a HEAD request (headers, no body).
pub(crate) fn write_response<W: Write>(
    w: &mut W,
    resp: &Response,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {:03} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    for (name, value) in &resp.extra_headers {
        // Header values come from test code; strip line breaks so they cannot split the head.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    w.write_all(&out)?;
    w.flush()
}

/// Percent-decodes `s`; `+` becomes a space when `plus_is_space` (query strings and forms).
/// Malformed escapes are kept literally and invalid UTF-8 is replaced, never rejected.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits an `application/x-www-form-urlencoded` string (or a query string) into decoded pairs.
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(piece, true), String::new()),
        })
        .collect()
}

/// Emulates rack-protection's 2015 `PathTraversal` cleanup, which Authy's API ran before
/// routing: `%2e` and `%2f` (any case) are unescaped, then `.` segments are dropped and `..`
/// segments pop their parent. This is what turned `/verify/..%2fsms/ID` into `/sms/ID`.
pub(crate) fn normalize_dot_segments(path: &str) -> String {
    let unescaped = replace_ci(&replace_ci(path, "%2e", "."), "%2f", "/");
    let mut parts: Vec<&str> = Vec::new();
    for part in unescaped.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut cleaned = format!("/{}", parts.join("/"));
    // rack keeps a trailing slash when the original path ended in "/", "/." or "/..".
    let trailing = unescaped.ends_with('/') || unescaped.ends_with("/.") || unescaped.ends_with("/..");
    if !parts.is_empty() && trailing {
        cleaned.push('/');
    }
    cleaned
}

/// Replaces every ASCII-case-insensitive occurrence of `needle` (ASCII) in `hay`.
fn replace_ci(hay: &str, needle: &str, with: &str) -> String {
    let lower = hay.to_ascii_lowercase();
    let mut out = String::with_capacity(hay.len());
    let mut last = 0;
    for (i, _) in lower.match_indices(needle) {
        // Lower-casing ASCII keeps byte offsets, and the needle is ASCII, so `i` is a char
        // boundary in `hay` too.
        out.push_str(&hay[last..i]);
        out.push_str(with);
        last = i + needle.len();
    }
    out.push_str(&hay[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A fake connection: reads from `input`, records writes.
    struct Fake {
        input: Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Fake {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.input.read(b)
        }
    }
    impl Write for Fake {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn fake(input: &[u8]) -> Fake {
        Fake { input: Cursor::new(input.to_vec()), written: Vec::new() }
    }

    #[test]
    fn reads_pipelined_requests_with_bodies() {
        let mut f = fake(
            b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        let mut buf = Vec::new();
        let a = read_request(&mut f, &mut buf, Limits::default()).expect("first");
        assert_eq!((a.method.as_str(), a.path.as_str(), a.query.as_deref()), ("POST", "/a", Some("x=1")));
        assert_eq!(a.body, b"abc");
        assert!(a.keep_alive);
        let b = read_request(&mut f, &mut buf, Limits::default()).expect("second");
        assert_eq!(b.path, "/b");
        assert!(!b.keep_alive);
        assert!(matches!(read_request(&mut f, &mut buf, Limits::default()), Err(ReadError::Closed)));
    }

    #[test]
    fn decodes_chunked_bodies_and_answers_continue() {
        let mut f = fake(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n",
        );
        let mut buf = Vec::new();
        let r = read_request(&mut f, &mut buf, Limits::default()).expect("request");
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn enforces_head_and_body_limits() {
        let mut big_head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big_head.extend(std::iter::repeat_n(b'a', 20_000));
        big_head.extend_from_slice(b"\r\n\r\n");
        let mut buf = Vec::new();
        assert!(matches!(
            read_request(&mut fake(&big_head), &mut buf, Limits::default()),
            Err(ReadError::HeadTooLarge)
        ));
        let mut buf = Vec::new();
        assert!(matches!(
            read_request(
                &mut fake(b"POST / HTTP/1.1\r\nContent-Length: 999999999999999999999999\r\n\r\n"),
                &mut buf,
                Limits::default()
            ),
            Err(ReadError::BodyTooLarge)
        ));
        let mut buf = Vec::new();
        assert!(matches!(
            read_request(&mut fake(b"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n"), &mut buf, Limits::default()),
            Err(ReadError::BodyTooLarge)
        ));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for input in [
            &b"\x00\x01\x02\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
            b"GET / HTTP/1.1\r\nHost",
        ] {
            let mut buf = Vec::new();
            let err = read_request(&mut fake(input), &mut buf, Limits::default()).expect_err("must be rejected");
            assert!(err.status().is_some(), "{err:?}");
        }
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%2Fb+c%zz%4", true), "a/b c%zz%4");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("%", false), "%");
        assert_eq!(percent_decode("%ff", false), "\u{fffd}");
    }

    #[test]
    fn forms_decode_rails_names() {
        assert_eq!(
            parse_form("user%5Bemail%5D=a%40b.c&&flag&x=1+2"),
            vec![
                ("user[email]".to_owned(), "a@b.c".to_owned()),
                ("flag".to_owned(), String::new()),
                ("x".to_owned(), "1 2".to_owned()),
            ]
        );
    }

    #[test]
    fn dot_segments_collapse_like_rack_protection() {
        assert_eq!(normalize_dot_segments("/protected/json/verify/../sms/12"), "/protected/json/sms/12");
        assert_eq!(normalize_dot_segments("/protected/json/verify/%2e%2E%2fsms/12"), "/protected/json/sms/12");
        assert_eq!(normalize_dot_segments("/protected/json/verify/..%2Fsms/12"), "/protected/json/sms/12");
        assert_eq!(normalize_dot_segments("/a/./b/"), "/a/b/");
        assert_eq!(normalize_dot_segments("/../../.."), "/");
        assert_eq!(normalize_dot_segments("/é%2E%2e/x"), "/é../x");
        assert_eq!(normalize_dot_segments("/a/é/%2E%2e/x"), "/a/x");
    }
}
