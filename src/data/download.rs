//! Download of the official Fashion-MNIST files, verified by MD5 before use.
//!
//! Each file streams into a temp file next to its final name and is renamed only once its MD5
//! matches, so a failed, cut-off or tampered transfer never leaves a file the loader would trust.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use md5::{Digest, Md5};

use crate::error::{Error, Result};

/// One file to fetch: its name under the base URL and the MD5 of its bytes (as published).
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile {
    /// File name, appended to the base URL and used as the name in the destination folder.
    pub name: &'static str,
    /// Expected MD5 of the file's bytes, as 32 hex digits.
    pub md5: &'static str,
}

/// Where Zalando publishes the Fashion-MNIST files.
pub const OFFICIAL_BASE_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/// Zalando's published MD5 sums of the four .gz files (zalandoresearch/fashion-mnist README).
pub const OFFICIAL_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        md5: "25c81989df183df01b3e8a0aad5dffbe",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        md5: "bef4ecab320f06d8554ea6380940ec79",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        md5: "bb300cfdad3c16e7a12a480ee83cd310",
    },
];

/// Appended to every download error: the ways to get the data without this download.
const FIX_HINT: &str = "check your internet connection, pass --data-dir DIR with the four IDX files, \
                        or install Debian's package: apt-get install dataset-fashion-mnist";

/// Read/copy buffer size: large enough to keep syscalls few, small enough for the stack of calls.
const BUF_SIZE: usize = 64 * 1024;

/// Download every file of `files` from `base_url` into `dest` (created if missing). Files already present in
/// `dest` whose MD5 matches are kept and not fetched again. Each download streams into a temp file in `dest`,
/// its MD5 is checked, and only then is it renamed to its final name (a failed or cut-off transfer never leaves
/// a file under the final name). Each transfer's progress goes to `transfers`; `out` receives the
/// other notes (files kept), for the caller to print.
pub fn download_files(base_url: &str, files: &[RemoteFile], dest: &Path, out: &mut dyn FnMut(String), transfers: &dyn Transfers) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io("cannot create folder", dest, e))?;
    let agent = new_agent();
    for file in files {
        let target = dest.join(file.name);
        if file_has_md5(&target, file.md5)? {
            out(format!("{}: already present, MD5 OK", target.display()));
            continue;
        }
        let url = join_url(base_url, file.name);
        fetch_one(&agent, &url, file, dest, &target, transfers)?;
    }
    Ok(())
}

/// An agent that reports HTTP statuses to us (to word the error) and never asks for a
/// compressed transfer: ureq would transparently gunzip it and the MD5 of the .gz would not match.
fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .accept_encoding("")
        .user_agent(concat!("d2l-mlp/", env!("CARGO_PKG_VERSION")))
        // No overall timeout: the largest file is 26 MB and slow links are fine as long as bytes flow.
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// `base_url` and `name` joined by exactly one slash, whether or not the base ends with one.
fn join_url(base_url: &str, name: &str) -> String {
    format!("{}/{}", base_url.trim_end_matches('/'), name)
}

/// The one-line error for a failed download of `url` into `target`.
fn download_error(url: &str, target: &Path, why: &str) -> Error {
    // Error messages are one line; some underlying errors span several.
    let why = why.replace(['\r', '\n'], " ");
    Error::download(format!("cannot download {url} to {}: {why}", target.display())).fix(FIX_HINT)
}

/// Why a request failed, in words a user can act on.
fn describe_ureq_error(err: &ureq::Error) -> String {
    match err {
        ureq::Error::Io(e) => format!("connection error: {e}"),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found (DNS lookup failed)".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        other => other.to_string(),
    }
}

/// Lowercase hex of a digest.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Whether `path` exists and its MD5 is `md5`. A missing file is `false`; an unreadable one is an error,
/// since downloading over it would likely fail the same way.
fn file_has_md5(path: &Path, md5: &str) -> Result<bool> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    if !file
        .metadata()
        .map_err(|e| Error::io("cannot read", path, e))?
        .is_file()
    {
        return Ok(false);
    }
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("cannot read", path, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(to_hex(&hasher.finalize()).eq_ignore_ascii_case(md5))
}

/// What a transfer reports while it runs, for the caller to show (the library never prints).
pub trait Transfers: Send + Sync {
    /// A file starts: its name, and its length when the server announces it.
    fn begin(&self, _name: &str, _len: Option<u64>) {}
    /// `bytes` more arrived.
    fn advance(&self, _bytes: u64) {}
    /// The file ended: `ok` is false when it failed.
    fn end(&self, _ok: bool) {}
}

/// Reports nothing.
pub struct NoTransfers;
impl Transfers for NoTransfers {}

/// A shared [`Transfers`], carried in [`DataOptions`](super::DataOptions).
#[derive(Clone)]
pub struct TransferSink(pub std::sync::Arc<dyn Transfers>);

impl std::fmt::Debug for TransferSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransferSink")
    }
}

/// Why a streamed copy stopped.
enum Copy {
    /// The transfer broke off, or its length is not the announced one (the text says how).
    Transfer(String),
    /// Reading the body failed after the bytes counted in the text.
    Read(String, std::io::Error),
    Write(std::io::Error),
}

/// Copy `reader` into `out`, advancing `bar`; returns the byte count and the MD5 (hex).
fn copy_hashing(reader: &mut impl Read, out: &mut impl Write, transfers: &dyn Transfers, expected_len: Option<u64>) -> std::result::Result<(u64, String), Copy> {
    let cut_off = |got: u64| match expected_len {
        Some(total) => format!("transfer cut off after {got} of {total} bytes"),
        None => format!("transfer failed after {got} bytes"),
    };
    let mut hasher = Md5::new();
    let mut got: u64 = 0;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(cut_off(got), e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(Copy::Write)?;
        got += n as u64;
        transfers.advance(n as u64);
    }
    // ureq checks Content-Length too; checking here keeps the guarantee independent of its version.
    match expected_len {
        Some(total) if got < total => Err(Copy::Transfer(cut_off(got))),
        Some(total) if got > total => Err(Copy::Transfer(format!("received {got} bytes but the server announced {total}"))),
        _ => Ok((got, to_hex(&hasher.finalize()))),
    }
}

/// Fetch `url` into `target` through a temp file in `dest`, checking length and MD5 before the rename.
fn fetch_one(
    agent: &ureq::Agent,
    url: &str,
    file: &RemoteFile,
    dest: &Path,
    target: &Path,
    transfers: &dyn Transfers,
) -> Result<()> {
    let fail = |why: String| download_error(url, target, &why);

    let response = agent
        .get(url)
        .call()
        .map_err(|e| fail(describe_ureq_error(&e)).caused_by(e).paraphrased())?;
    let status = response.status();
    if !status.is_success() {
        let reason = status.canonical_reason().unwrap_or("");
        return Err(fail(
            format!("HTTP status {} {reason}", status.as_u16())
                .trim_end()
                .to_string(),
        ));
    }
    // Kept to explain a checksum mismatch: a decoded body is not the published file.
    let content_encoding = response
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body();
    let expected_len = body.content_length();
    let mut reader = body.into_reader();

    // The temp file is removed on drop, so every early return below cleans up after itself.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", file.name))
        .suffix(".part")
        .tempfile_in(dest)
        .map_err(|e| Error::io("cannot create a temporary file in", dest, e))?;

    transfers.begin(file.name, expected_len);
    let (got, digest) = copy_hashing(&mut reader, tmp.as_file_mut(), transfers, expected_len).map_err(|e| {
        transfers.end(false);
        match e {
            Copy::Transfer(why) => fail(why),
            Copy::Read(why, e) => fail(why).caused_by(e),
            Copy::Write(e) => Error::io("cannot write", tmp.path(), e),
        }
    })?;
    if !digest.eq_ignore_ascii_case(file.md5) {
        transfers.end(false);
        let note = match &content_encoding {
            Some(enc) => format!(" (the server sent Content-Encoding: {enc})"),
            None => String::new(),
        };
        return Err(fail(format!(
            "checksum mismatch: expected MD5 {}, got {digest} ({got} bytes){note}",
            file.md5
        )));
    }

    // Flush to disk before the rename so a crash cannot leave a final name with missing data.
    let saved = tmp
        .as_file()
        .sync_all()
        .map_err(|e| Error::io("cannot write", tmp.path(), e))
        .and_then(|_| tmp.persist(target).map_err(|e| Error::io("cannot rename the download to", target, e.error)));
    transfers.end(saved.is_ok());
    saved?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// A one-thread HTTP/1.1 server on 127.0.0.1 that answers each request with the raw bytes its
    /// handler returns, then closes the connection. It stops by itself after `max_requests`
    /// requests or 10 seconds, so a test never leaves it running.
    pub(crate) struct Server {
        pub(crate) base_url: String,
        hits: Arc<AtomicUsize>,
        paths: Arc<Mutex<Vec<String>>>,
    }

    impl Server {
        pub(crate) fn start(max_requests: usize, handler: impl Fn(&str) -> Vec<u8> + Send + 'static) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base_url = format!("http://{}/", listener.local_addr().unwrap());
            // Non-blocking accept lets the thread notice its deadline when no request comes.
            listener.set_nonblocking(true).unwrap();
            let hits = Arc::new(AtomicUsize::new(0));
            let paths = Arc::new(Mutex::new(Vec::new()));
            let (hits2, paths2) = (hits.clone(), paths.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut served = 0;
                while served < max_requests && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            served += 1;
                            let Some(path) = read_request_path(&stream) else {
                                continue;
                            };
                            hits2.fetch_add(1, Ordering::SeqCst);
                            paths2.lock().unwrap().push(path.clone());
                            let mut stream = stream;
                            let _ = stream.write_all(&handler(&path));
                            let _ = stream.flush();
                            let _ = stream.shutdown(Shutdown::Both);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            });
            Server {
                base_url,
                hits,
                paths,
            }
        }

        pub(crate) fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    /// Read a request head and return its path; `None` if the client sent no complete head.
    fn read_request_path(stream: &TcpStream) -> Option<String> {
        stream.set_nonblocking(false).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        let mut reader = stream;
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = reader.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&head);
        let mut parts = head.lines().next()?.split_whitespace();
        let _method = parts.next()?;
        parts.next().map(str::to_owned)
    }

    /// A complete response with a correct Content-Length.
    pub(crate) fn response(status: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    /// Deterministic test content, not all one byte so a shifted or truncated copy differs.
    fn content(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn md5_hex(bytes: &[u8]) -> String {
        to_hex(&Md5::digest(bytes))
    }

    pub(crate) fn remote(name: &str, bytes: &[u8]) -> RemoteFile {
        RemoteFile {
            name: Box::leak(name.to_string().into_boxed_str()),
            md5: Box::leak(md5_hex(bytes).into_boxed_str()),
        }
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn assert_no_files(dir: &Path) {
        assert!(names_in(dir).is_empty(), "{:?}", names_in(dir));
    }

    fn download_message(err: Error) -> String {
        match &err {
            Error::Download(_) => {
                let msg = err.one_line();
                assert!(!msg.contains('\n'), "message must be one line: {msg}");
                assert!(msg.contains(FIX_HINT), "message lacks the fix hint: {msg}");
                msg
            }
            other => panic!("expected Error::Download, got {other:?}"),
        }
    }

    /// Records what a download reports.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>, AtomicUsize);
    impl Transfers for Recorded {
        fn begin(&self, name: &str, len: Option<u64>) {
            self.0.lock().unwrap().push(format!("begin {name} {len:?}"));
        }
        fn advance(&self, bytes: u64) {
            self.1.fetch_add(bytes as usize, Ordering::SeqCst);
        }
        fn end(&self, ok: bool) {
            self.0.lock().unwrap().push(format!("end {ok}"));
        }
    }

    #[test]
    fn progress_goes_to_the_callers_sink() {
        let body = content(100_000, 3);
        let file = remote("p.gz", &body);
        let bytes = body.clone();
        let server = Server::start(2, move |_| response("200 OK", &bytes));
        let dir = tempfile::tempdir().unwrap();
        let seen = Recorded::default();
        download_files(&server.base_url, &[file], dir.path(), &mut |_| {}, &seen).unwrap();
        assert_eq!(*seen.0.lock().unwrap(), vec!["begin p.gz Some(100000)".to_string(), "end true".to_string()]);
        assert_eq!(seen.1.load(Ordering::SeqCst), 100_000);
    }

    #[test]
    fn good_file_is_downloaded_into_a_new_folder_without_leftovers() {
        let bytes = content(200_000, 7);
        let served = bytes.clone();
        let server = Server::start(1, move |_| response("200 OK", &served));
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("nested").join("data");
        let file = remote("train-labels-idx1-ubyte.gz", &bytes);

        download_files(&server.base_url, &[file], &dest, &mut |_| {}, &NoTransfers).unwrap();

        assert_eq!(std::fs::read(dest.join(file.name)).unwrap(), bytes);
        assert_eq!(names_in(&dest), vec![file.name.to_string()]);
        assert_eq!(
            *server.paths.lock().unwrap(),
            vec![format!("/{}", file.name)]
        );
    }

    #[test]
    fn checksum_mismatch_is_an_error_and_leaves_no_file() {
        let expected = content(5000, 1);
        let other = content(5000, 2);
        let server = Server::start(1, move |_| response("200 OK", &other));
        let dir = tempfile::tempdir().unwrap();
        let file = remote("t10k-labels-idx1-ubyte.gz", &expected);

        let err = download_files(&server.base_url, &[file], dir.path(), &mut |_| {}, &NoTransfers).unwrap_err();

        let msg = download_message(err);
        assert!(msg.contains("checksum mismatch"), "{msg}");
        assert!(msg.contains("MD5"), "{msg}");
        assert!(msg.contains(file.md5), "expected MD5 missing: {msg}");
        assert!(
            msg.contains(&md5_hex(&content(5000, 2))),
            "got MD5 missing: {msg}"
        );
        assert!(msg.contains(file.name), "{msg}");
        assert_no_files(dir.path());
    }

    #[test]
    fn cut_off_transfer_is_an_error_and_leaves_no_file() {
        let full = content(1000, 3);
        let sent = full[..100].to_vec();
        let server = Server::start(1, move |_| {
            let mut out =
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n".to_vec();
            out.extend_from_slice(&sent);
            out
        });
        let dir = tempfile::tempdir().unwrap();
        let file = remote("t10k-images-idx3-ubyte.gz", &full);

        let err = download_files(&server.base_url, &[file], dir.path(), &mut |_| {}, &NoTransfers).unwrap_err();

        let msg = download_message(err);
        assert!(msg.contains("cut off after 100 of 1000 bytes"), "{msg}");
        assert!(msg.contains(file.name), "{msg}");
        assert_no_files(dir.path());
    }

    #[test]
    fn http_404_names_the_status_and_the_url() {
        let server = Server::start(1, |_| response("404 Not Found", b"no such key"));
        let dir = tempfile::tempdir().unwrap();
        let file = remote("train-images-idx3-ubyte.gz", b"whatever");

        let err = download_files(&server.base_url, &[file], dir.path(), &mut |_| {}, &NoTransfers).unwrap_err();

        let msg = download_message(err);
        assert!(msg.contains("HTTP status 404"), "{msg}");
        let url = format!("{}{}", server.base_url, file.name);
        assert!(msg.contains(&url), "URL {url} missing: {msg}");
        assert_no_files(dir.path());
    }

    #[test]
    fn present_file_with_right_md5_is_not_fetched_again() {
        let bytes = content(3000, 4);
        let served = bytes.clone();
        let server = Server::start(2, move |_| response("200 OK", &served));
        let dir = tempfile::tempdir().unwrap();
        let file = remote("train-labels-idx1-ubyte.gz", &bytes);
        std::fs::write(dir.path().join(file.name), &bytes).unwrap();

        let mut notes = Vec::new();
        download_files(&server.base_url, &[file], dir.path(), &mut |m| notes.push(m), &NoTransfers).unwrap();

        assert_eq!(server.hits(), 0);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].ends_with("train-labels-idx1-ubyte.gz: already present, MD5 OK"), "{notes:?}");
        assert_eq!(std::fs::read(dir.path().join(file.name)).unwrap(), bytes);
    }

    #[test]
    fn present_file_with_wrong_md5_is_replaced() {
        let bytes = content(3000, 5);
        let served = bytes.clone();
        let server = Server::start(1, move |_| response("200 OK", &served));
        let dir = tempfile::tempdir().unwrap();
        let file = remote("train-labels-idx1-ubyte.gz", &bytes);
        std::fs::write(dir.path().join(file.name), b"stale partial content").unwrap();

        download_files(&server.base_url, &[file], dir.path(), &mut |_| {}, &NoTransfers).unwrap();

        assert_eq!(server.hits(), 1);
        assert_eq!(std::fs::read(dir.path().join(file.name)).unwrap(), bytes);
        assert_eq!(names_in(dir.path()), vec![file.name.to_string()]);
    }

    #[test]
    fn several_files_and_a_base_url_without_trailing_slash() {
        let a = content(1234, 8);
        let b = content(4321, 9);
        let file_a = remote("a.gz", &a);
        let file_b = remote("b.gz", &b);
        let (sa, sb) = (a.clone(), b.clone());
        let server = Server::start(2, move |path| match path {
            "/a.gz" => response("200 OK", &sa),
            "/b.gz" => response("200 OK", &sb),
            _ => response("404 Not Found", b""),
        });
        let dir = tempfile::tempdir().unwrap();
        let base = server.base_url.trim_end_matches('/');

        download_files(base, &[file_a, file_b], dir.path(), &mut |_| {}, &NoTransfers).unwrap();

        assert_eq!(std::fs::read(dir.path().join("a.gz")).unwrap(), a);
        assert_eq!(std::fs::read(dir.path().join("b.gz")).unwrap(), b);
        assert_eq!(names_in(dir.path()), vec!["a.gz", "b.gz"]);
    }

    #[test]
    fn connection_refused_is_a_download_error_with_the_fix_hint() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let file = remote("train-images-idx3-ubyte.gz", b"x");
        let base = format!("http://127.0.0.1:{port}/");

        let err = download_files(&base, &[file], dir.path(), &mut |_| {}, &NoTransfers).unwrap_err();

        let msg = download_message(err);
        assert!(msg.contains("connection"), "{msg}");
        assert!(
            msg.contains(&format!("127.0.0.1:{port}/{}", file.name)),
            "{msg}"
        );
        assert!(msg.contains("--data-dir"), "{msg}");
        assert!(
            msg.contains("apt-get install dataset-fashion-mnist"),
            "{msg}"
        );
        assert_no_files(dir.path());
    }

    #[test]
    fn a_failed_request_keeps_ureqs_error_as_the_source_and_the_old_line() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let file = remote("t10k-labels-idx1-ubyte.gz", b"x");
        let base = format!("http://127.0.0.1:{port}/");

        let err = download_files(&base, &[file], dir.path(), &mut |_| {}, &NoTransfers).unwrap_err();

        let cause = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<ureq::Error>()).expect("ureq's error is the source");
        let target = dir.path().join(file.name);
        // As download_error worded it before: "cannot download {url} to {target}: {why}; {FIX_HINT}".
        let old = format!("cannot download {base}{} to {}: {}; {FIX_HINT}", file.name, target.display(), describe_ureq_error(cause));
        assert_eq!(download_message(err), old);
    }

    #[test]
    fn dest_that_is_a_file_is_a_local_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("not-a-folder");
        std::fs::write(&dest, b"x").unwrap();
        let file = remote("a.gz", b"x");

        // The URL is never reached: creating the folder fails first.
        let err = download_files("http://127.0.0.1:9/", &[file], &dest, &mut |_| {}, &NoTransfers).unwrap_err();

        match &err {
            Error::Failure(_) => assert!(err.one_line().contains("cannot create folder"), "{err:?}"),
            other => panic!("expected Error::Failure, got {other:?}"),
        }
    }

    #[test]
    fn official_files_are_well_formed() {
        let names: Vec<_> = OFFICIAL_FILES.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz"
            ]
        );
        for f in OFFICIAL_FILES {
            assert_eq!(f.md5.len(), 32, "{}", f.name);
            assert!(
                f.md5
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        assert!(OFFICIAL_BASE_URL.starts_with("http://") && OFFICIAL_BASE_URL.ends_with('/'));
    }

    #[test]
    fn join_url_uses_exactly_one_slash() {
        assert_eq!(join_url("http://h/x/", "f.gz"), "http://h/x/f.gz");
        assert_eq!(join_url("http://h/x", "f.gz"), "http://h/x/f.gz");
    }
}
