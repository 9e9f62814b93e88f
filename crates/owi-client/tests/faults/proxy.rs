//! A forward HTTP/1.1 proxy the tests control. The client sends every
//! request here in absolute form (`PUT http://127.0.0.1:PORT/path HTTP/1.1`,
//! plain http only, no CONNECT); the proxy passes it on to its target, one
//! request per connection (`Connection: close` both ways), unless the
//! test's plan names a fault for it. It logs every request it saw and every
//! fault it injected.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// What happens to a request the plan picks.
#[derive(Clone)]
pub enum Fault {
    /// Pass this many bytes of the request body on, then cut both
    /// connections without an answer.
    Cut(u64),
    /// Read the request, then answer this status without asking the
    /// target (a 429 says `Retry-After: 1`).
    Status(u16),
    /// Read the request, then say nothing until the client gives up.
    Stall,
    /// Keep the request waiting until the test opens the gate, then pass
    /// it on.
    Hold(Gate),
    /// Pass the request on with its JSON body rewritten.
    Rewrite(fn(serde_json::Value) -> serde_json::Value),
}

impl Fault {
    fn label(&self) -> String {
        match self {
            Fault::Cut(n) => format!("connection cut after {n} body bytes"),
            Fault::Status(429) => "429 with Retry-After: 1".into(),
            Fault::Status(code) => format!("{code} answer"),
            Fault::Stall => "stalled response".into(),
            Fault::Hold(_) => "held".into(),
            Fault::Rewrite(_) => "body rewritten".into(),
        }
    }
}

/// Where a held request waits for the test.
#[derive(Clone)]
pub struct Gate(Arc<GateState>);

struct GateState {
    arrived: tokio::sync::watch::Sender<bool>,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate(Arc::new(GateState {
            arrived: tokio::sync::watch::Sender::new(false),
            open: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// Resolves once a request is waiting here.
    pub async fn arrived(&self) {
        let _ = self
            .0
            .arrived
            .subscribe()
            .wait_for(|arrived| *arrived)
            .await;
    }

    /// Lets the waiting request (and any later one) through.
    pub fn open(&self) {
        self.0.open.send_replace(true);
    }

    async fn wait(&self) {
        self.0.arrived.send_replace(true);
        let _ = self.0.open.subscribe().wait_for(|open| *open).await;
    }
}

/// A request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The absolute URL.
    pub target: String,
    pub at: Instant,
    /// What was done to it, if anything.
    pub fault: Option<String>,
}

struct Rule {
    method: &'static str,
    path: &'static str,
    nth: usize,
    fault: Fault,
    matched: usize,
    injected: usize,
}

#[derive(Default)]
struct Plan {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

impl Plan {
    /// Logs a request and picks its fault: the first rule whose match
    /// this is the `nth` of.
    fn decide(&mut self, method: &str, target: &str) -> Option<Fault> {
        let mut chosen = None;
        for rule in &mut self.rules {
            if rule.method == method && target.contains(rule.path) {
                rule.matched += 1;
                if rule.matched == rule.nth && chosen.is_none() {
                    rule.injected += 1;
                    chosen = Some(rule.fault.clone());
                }
            }
        }
        self.seen.push(Seen {
            method: method.to_string(),
            target: target.to_string(),
            at: Instant::now(),
            fault: chosen.as_ref().map(Fault::label),
        });
        chosen
    }
}

pub struct Proxy {
    url: String,
    plan: Arc<Mutex<Plan>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Its connections go with it.
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let plan = Arc::new(Mutex::new(Plan::default()));
        let task = tokio::spawn(accept(listener, plan.clone()));
        Proxy { url, plan, task }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// From now on the `nth` request (1-based) with this method and a URL
    /// containing `path` meets `fault`.
    pub fn inject(&self, method: &'static str, path: &'static str, nth: usize, fault: Fault) {
        self.plan.lock().unwrap().rules.push(Rule {
            method,
            path,
            nth,
            fault,
            matched: 0,
            injected: 0,
        });
    }

    /// Every request seen with this method (any, if empty) and a URL
    /// containing `path`.
    pub fn seen(&self, method: &str, path: &str) -> Vec<Seen> {
        let plan = self.plan.lock().unwrap();
        plan.seen
            .iter()
            .filter(|s| (method.is_empty() || s.method == method) && s.target.contains(path))
            .cloned()
            .collect()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen(method, path).len()
    }

    /// How long after each matching request the next one came.
    pub fn gaps(&self, method: &str, path: &str) -> Vec<Duration> {
        let seen = self.seen(method, path);
        seen.windows(2).map(|w| w[1].at - w[0].at).collect()
    }

    /// Requests a fault was injected into so far.
    pub fn injected(&self) -> usize {
        let plan = self.plan.lock().unwrap();
        plan.seen.iter().filter(|s| s.fault.is_some()).count()
    }

    /// One tally line per rule: the fault, where, how often it was
    /// injected, and how the test ended.
    pub fn tally(&self, path_name: &str, outcome: &str) {
        for rule in &self.plan.lock().unwrap().rules {
            eprintln!(
                "fault-tally | {} | {path_name}: {} …{} (#{}) | injected {} | {outcome}",
                rule.fault.label(),
                rule.method,
                rule.path,
                rule.nth,
                rule.injected,
            );
        }
    }
}

async fn accept(listener: TcpListener, plan: Arc<Mutex<Plan>>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let plan = plan.clone();
        connections.spawn(async move {
            let _ = relay(client, &plan).await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// How a request body ends.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
}

/// A request head, parsed.
struct Request {
    method: String,
    /// The absolute URL, as sent to a proxy.
    target: String,
    /// `host:port`.
    authority: String,
    /// The path and query, as sent on to the target.
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    framing: Framing,
}

impl Request {
    fn parse(head: &[u8]) -> std::io::Result<Request> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        if !parsed
            .parse(head)
            .map_err(|e| bad(&e.to_string()))?
            .is_complete()
        {
            return Err(bad("incomplete request head"));
        }
        let method = parsed.method.ok_or_else(|| bad("no method"))?.to_string();
        let target = parsed.path.ok_or_else(|| bad("no target"))?.to_string();
        let rest = target
            .strip_prefix("http://")
            .ok_or_else(|| bad("not an absolute http:// URL"))?;
        let (authority, path) = match rest.split_once('/') {
            Some((authority, path)) => (authority.to_string(), format!("/{path}")),
            None => (rest.to_string(), "/".to_string()),
        };
        let headers: Vec<(String, Vec<u8>)> = parsed
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
        };
        let framing = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            Framing::Chunked
        } else {
            match header("content-length").and_then(|v| v.trim().parse().ok()) {
                Some(0) | None => Framing::Empty,
                Some(n) => Framing::Length(n),
            }
        };
        Ok(Request {
            method,
            target,
            authority,
            path,
            headers,
            framing,
        })
    }

    /// The head for the target: origin-form, hop-by-hop headers dropped,
    /// `Connection: close`, and a new length for a rewritten body.
    fn onward_head(&self, body_len: Option<usize>) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path).into_bytes();
        for (name, value) in &self.headers {
            let name_lower = name.to_ascii_lowercase();
            let hop = matches!(
                name_lower.as_str(),
                "connection" | "proxy-connection" | "keep-alive"
            );
            if hop || (body_len.is_some() && name_lower == "content-length") {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(len) = body_len {
            out.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out
    }
}

/// One client connection: one request, passed on or broken as planned.
async fn relay(client: TcpStream, plan: &Mutex<Plan>) -> std::io::Result<()> {
    let (read, mut write) = client.into_split();
    let mut read = BufReader::new(read);
    let Some(head) = read_head(&mut read).await? else {
        return Ok(()); // an idle connection closed
    };
    let request = Request::parse(&head)?;
    let fault = plan
        .lock()
        .unwrap()
        .decide(&request.method, &request.target);
    match fault {
        None => pass(read, write, &request, None, None).await,
        Some(Fault::Cut(after)) => pass(read, write, &request, None, Some(after)).await,
        Some(Fault::Hold(gate)) => {
            gate.wait().await;
            pass(read, write, &request, None, None).await
        }
        Some(Fault::Rewrite(rewrite)) => {
            let Framing::Length(len) = request.framing else {
                return Err(std::io::Error::other("only a sized body can be rewritten"));
            };
            let mut body = vec![0; len as usize];
            read.read_exact(&mut body).await?;
            let json = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
            let body = serde_json::to_vec(&rewrite(json)).map_err(std::io::Error::other)?;
            pass(read, write, &request, Some(body), None).await
        }
        Some(Fault::Status(code)) => {
            forward_body(
                &mut read,
                request.framing,
                None::<&mut tokio::io::Sink>,
                None,
            )
            .await?;
            write.write_all(&canned(code, &request)).await?;
            write.shutdown().await
        }
        Some(Fault::Stall) => {
            forward_body(
                &mut read,
                request.framing,
                None::<&mut tokio::io::Sink>,
                None,
            )
            .await?;
            // Silence until the client hangs up.
            let mut buf = [0; 1024];
            while read.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            Ok(())
        }
    }
}

/// An answer made up here: JSON `detail` for the API, S3's XML for the store.
fn canned(code: u16, request: &Request) -> Vec<u8> {
    let (reason, s3_code) = match code {
        403 => ("Forbidden", "AccessDenied"),
        429 => ("Too Many Requests", "SlowDown"),
        500 => ("Internal Server Error", "InternalError"),
        503 => ("Service Unavailable", "ServiceUnavailable"),
        _ => ("Injected", "Injected"),
    };
    let (content_type, body) = if request.path.starts_with("/api/") {
        (
            "application/json",
            format!(r#"{{"detail": "{reason} (injected by the test proxy)"}}"#),
        )
    } else {
        (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{s3_code}</Code>\
                 <Message>{reason} (injected by the test proxy)</Message></Error>"
            ),
        )
    };
    let retry_after = if code == 429 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {retry_after}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Passes a request to its target and the answer back. With `cut`, only
/// that many body bytes go on, then both connections are dropped.
async fn pass(
    mut from_client: BufReader<OwnedReadHalf>,
    mut to_client: OwnedWriteHalf,
    request: &Request,
    body: Option<Vec<u8>>,
    cut: Option<u64>,
) -> std::io::Result<()> {
    let target = TcpStream::connect(&request.authority).await?;
    let (from_target, mut to_target) = target.into_split();
    to_target
        .write_all(&request.onward_head(body.as_ref().map(Vec::len)))
        .await?;
    let sending = async {
        match &body {
            Some(body) => {
                let _ = to_target.write_all(body).await;
                Ok(true)
            }
            None => {
                forward_body(&mut from_client, request.framing, Some(&mut to_target), cut).await
            }
        }
    };
    let answering = forward_answer(from_target, &mut to_client);
    tokio::pin!(sending, answering);
    let mut sent = false;
    loop {
        tokio::select! {
            whole = &mut sending, if !sent => match whole {
                // Dropping both ends now is the fault.
                Ok(false) => return Ok(()),
                _ => sent = true,
            },
            answered = &mut answering => {
                answered?;
                break;
            }
        }
    }
    // An answer that came before the whole body (a refusal): let the client
    // finish sending, so closing does not reset the connection under an
    // answer it has not read yet.
    if !sent {
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut sending).await;
    }
    Ok(())
}

/// Copies a request body as framed, counting bytes against `cut`: `false`
/// once that many went on. Without `to` the body is read and dropped; if
/// the target stops reading, the rest is dropped too.
async fn forward_body<W: AsyncWrite + Unpin>(
    from: &mut (impl AsyncBufRead + Unpin),
    framing: Framing,
    to: Option<&mut W>,
    cut: Option<u64>,
) -> std::io::Result<bool> {
    let mut onward = Onward { to, left: cut };
    match framing {
        Framing::Empty => Ok(true),
        Framing::Length(len) => copy_exact(from, len, &mut onward).await,
        Framing::Chunked => loop {
            let mut line = Vec::new();
            from.read_until(b'\n', &mut line).await?;
            if line.is_empty() {
                return Ok(true); // the client went away
            }
            if !onward.put(&line).await {
                return Ok(false);
            }
            let size = String::from_utf8_lossy(&line);
            let size = size.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::other("a bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut trailer = Vec::new();
                    from.read_until(b'\n', &mut trailer).await?;
                    if !onward.put(&trailer).await {
                        return Ok(false);
                    }
                    if trailer.is_empty() || trailer == b"\r\n" {
                        return Ok(true);
                    }
                }
            }
            // The chunk and its CRLF.
            if !copy_exact(from, size + 2, &mut onward).await? {
                return Ok(false);
            }
        },
    }
}

async fn copy_exact<W: AsyncWrite + Unpin>(
    from: &mut (impl AsyncBufRead + Unpin),
    mut len: u64,
    onward: &mut Onward<'_, W>,
) -> std::io::Result<bool> {
    while len > 0 {
        let buf = from.fill_buf().await?;
        if buf.is_empty() {
            return Ok(true); // the client went away
        }
        let n = buf.len().min(len as usize);
        let go_on = onward.put(&buf[..n]).await;
        from.consume(n);
        len -= n as u64;
        if !go_on {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Where body bytes go, and how many more may.
struct Onward<'a, W> {
    to: Option<&'a mut W>,
    left: Option<u64>,
}

impl<W: AsyncWrite + Unpin> Onward<'_, W> {
    /// Passes bytes on; `false` once the cut point is reached.
    async fn put(&mut self, bytes: &[u8]) -> bool {
        let (bytes, go_on) = match self.left {
            Some(left) if bytes.len() as u64 >= left => (&bytes[..left as usize], false),
            _ => (bytes, true),
        };
        if let Some(left) = &mut self.left {
            *left -= bytes.len() as u64;
        }
        if let Some(to) = self.to.as_mut()
            && (to.write_all(bytes).await.is_err() || to.flush().await.is_err())
        {
            self.to = None;
        }
        go_on
    }
}

/// The target's answer, back to the client with `Connection: close`,
/// streamed until the target closes.
async fn forward_answer(from: OwnedReadHalf, to: &mut OwnedWriteHalf) -> std::io::Result<()> {
    let mut from = BufReader::new(from);
    let head = read_head(&mut from)
        .await?
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut answer = httparse::Response::new(&mut headers);
    answer
        .parse(&head)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        answer.code.unwrap_or(502),
        answer.reason.unwrap_or_default()
    )
    .into_bytes();
    for h in answer.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") || h.name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    to.write_all(&out).await?;
    tokio::io::copy_buf(&mut from, to).await?;
    to.shutdown().await
}

/// A message head up to its empty line; `None` if the peer closed first.
async fn read_head(from: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        from.read_until(b'\n', &mut head).await?;
        if head.len() == before {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.ends_with(b"\r\n\r\n") {
            return Ok(Some(head));
        }
        if head.len() > 64 << 10 {
            return Err(std::io::Error::other("a request head over 64 KiB"));
        }
    }
}
