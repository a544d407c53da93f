//! A minimal HTTP/1.1 client and server over std's TCP, enough for login, WHIP and WHEP:
//! one request per connection (`Connection: close`), `Content-Length` or chunked bodies.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as text, lossily.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads a header block (request or status line first) up to the empty line.
fn read_head(reader: &mut impl BufRead) -> io::Result<(String, Vec<(String, String)>)> {
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Err(invalid("connection closed before the first line"));
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(invalid("connection closed in the headers"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        if headers.len() > 100 {
            return Err(invalid("too many headers"));
        }
    }
    Ok((first.trim_end().to_owned(), headers))
}

/// Reads a body framed by `Content-Length`, by chunks, or (`until_eof`) by the end.
fn read_body(
    reader: &mut impl BufRead,
    headers: &[(String, String)],
    until_eof: bool,
) -> io::Result<Vec<u8>> {
    const MAX: usize = 4 << 20;
    if let Some(len) = header(headers, "content-length") {
        let len: usize = len.parse().map_err(|_| invalid("content-length"))?;
        if len > MAX {
            return Err(invalid("body too large"));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let chunked = header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = size.trim().split(';').next().unwrap_or_default();
            let n = usize::from_str_radix(size, 16).map_err(|_| invalid("chunk size"))?;
            if body.len() + n > MAX {
                return Err(invalid("body too large"));
            }
            if n == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + n, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else if until_eof {
        reader.take(MAX as u64).read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Sends one request to `addr` (`host:port`) and reads the whole response.
/// Writes one HTTP/1.1 message: `start` (the request or status line, with any headers
/// before the common ones), `Connection: close`, the length, `headers`, the body.
fn write_message(
    stream: &mut impl Write,
    start: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!(
        "{start}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out)
}

pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<Response> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid("address resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    write_message(
        &mut stream,
        &format!("{method} {path} HTTP/1.1\r\nHost: {addr}"),
        headers,
        body,
    )?;
    let mut reader = BufReader::new(stream);
    let (status_line, headers) = read_head(&mut reader)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("status line"))?;
    let body = if method == "HEAD" || status == 204 || status == 304 {
        Vec::new()
    } else {
        read_body(&mut reader, &headers, true)?
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A request as received by [`read_request`].
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Reads one request from a connection.
pub fn read_request(stream: &TcpStream) -> io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let (line, headers) = read_head(&mut reader)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().ok_or_else(|| invalid("method"))?.to_owned();
    let path = parts.next().ok_or_else(|| invalid("path"))?.to_owned();
    let body = read_body(&mut reader, &headers, false)?;
    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Writes a response and closes the connection's write side.
pub fn write_response(
    mut stream: &TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Status",
    };
    write_message(
        &mut stream,
        &format!("HTTP/1.1 {status} {reason}"),
        headers,
        body,
    )?;
    stream.flush()
}
