//! Drives the desktop app in a real window, for the end-to-end tests and the
//! app's figures.
//!
//! The pieces are the real ones a person's session has, minus the person:
//! an Xvfb screen ([`Screen`]), `tauri-driver` with Debian's
//! `WebKitWebDriver` behind it starting the built app ([`Driver`]),
//! WebDriver commands through fantoccini ([`App`]), and a small GTK window
//! offering a file for dragging that `xdotool` drags onto the app
//! ([`DragSource`]), because WebDriver cannot produce an OS drop.
//!
//! Every wait here waits for a condition (a port that accepts, a line a
//! process prints, an element that appears) with a deadline; nothing
//! sleeps for a fixed time and hopes.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

pub use fantoccini;

pub mod bus;
pub mod preview;

/// How long any one thing may take before the harness gives up. Generous:
/// this 2-core machine also builds while it tests.
pub const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("WebDriver session: {0}")]
    Session(#[from] Box<fantoccini::error::NewSessionError>),
    #[error("WebDriver: {context}: {source}")]
    WebDriver {
        context: String,
        #[source]
        source: Box<fantoccini::error::CmdError>,
    },
    #[error("timed out after {patience:.0?} waiting for {0}", patience = PATIENCE)]
    Timeout(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
}

impl<T> Context<T> for Result<T, fantoccini::error::CmdError> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::WebDriver {
            context: context.into(),
            source: Box::new(source),
        })
    }
}

/// Where the tests leave what a reviewer looks at (screenshots): `OWI_E2E_OUT`,
/// else `e2e/` in the cargo target directory.
pub fn output_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OWI_E2E_OUT") {
        return PathBuf::from(dir);
    }
    target_dir().join("e2e")
}

fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        // Cargo reads a relative one from where it was run, the workspace
        // root; tests run in their package's folder.
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        return workspace.join(dir);
    }
    // A test or bench binary lives in <target>/<profile>/deps/.
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The built app: `OWI_APP`, else the release build `tauri build` leaves in
/// the target directory (the one with the UI embedded).
pub fn app_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("OWI_APP") {
        Some(path) => PathBuf::from(path),
        None => target_dir().join("release").join("owi-app"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Setup(format!(
            "no built app at {}: build it with `ui/node_modules/.bin/tauri build --bundles deb` \
             (scripts/test.sh does) or point OWI_APP at one",
            path.display()
        )))
    }
}

/// An Xvfb screen, stopped when dropped.
#[derive(Debug)]
pub struct Screen {
    child: Child,
    display: String,
}

impl Screen {
    /// Starts Xvfb on the first free display. Xvfb itself picks the number
    /// and prints it once it accepts clients (`-displayfd`).
    pub fn start(width: u32, height: u32) -> Result<Screen> {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting Xvfb (Debian package xvfb)"))?;
        let stdout = child.stdout.take();
        // Owned from here, so a failure below stops it too.
        let mut screen = Screen {
            child,
            display: String::new(),
        };
        let stdout = stdout.ok_or_else(|| Error::Setup("Xvfb has no stdout".into()))?;
        let number = line_channel(stdout)
            .recv_timeout(PATIENCE)
            .map_err(|_| Error::Timeout("Xvfb to print its display number".into()))?;
        screen.display = format!(":{}", number.trim());
        Ok(screen)
    }

    /// `:N`, for `DISPLAY`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Runs `xdotool` on this screen.
    pub fn xdotool(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .map_err(io("running xdotool (Debian package xdotool)"))?;
        if !out.status.success() {
            return Err(Error::Setup(format!(
                "xdotool {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Lets go of the mouse button: the drop, when a drag is over a window.
    pub fn release(&self) -> Result<()> {
        self.xdotool(&["mouseup", "1"]).map(drop)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its socket and lock file.
        terminate(&mut self.child);
    }
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// `tauri-driver` on free ports, with `WebKitWebDriver` behind it.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub fn start(screen: &Screen) -> Result<Driver> {
        Driver::start_with(screen, &[])
    }

    /// With extra environment for the apps it starts (a theme, say).
    pub fn start_with(screen: &Screen, env: &[(&str, &str)]) -> Result<Driver> {
        let [port, native] = free_ports()?;
        // Its complaints (a missing WebKitWebDriver, say) go to a log a
        // failure message points at.
        let log_path = output_dir().join(format!("tauri-driver-{port}.log"));
        std::fs::create_dir_all(output_dir()).map_err(io("creating the output folder"))?;
        let log = std::fs::File::create(&log_path)
            .map_err(io(format!("creating {}", log_path.display())))?;
        let child = Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .envs(env.iter().copied())
            .env("DISPLAY", screen.display())
            // No accessibility bus under Xvfb: without this GTK waits for one.
            .env("NO_AT_BRIDGE", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(io(
                "starting tauri-driver (cargo install tauri-driver@2.1.0 --locked)",
            ))?;
        let mut driver = Driver { child, port };
        // tauri-driver accepts connections before the WebKit driver behind it
        // listens: a session asked for then fails. Wait for both.
        for (port, what) in [(port, "tauri-driver"), (native, "WebKitWebDriver")] {
            wait_for_port(port, what, &mut driver.child)
                .map_err(|e| Error::Setup(format!("{e} (its log: {})", log_path.display())))?;
        }
        Ok(driver)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: killed outright, tauri-driver leaves
        // WebKitWebDriver (and the app) running.
        terminate(&mut self.child);
    }
}

/// Two distinct free ports (both held until both are known).
fn free_ports() -> Result<[u16; 2]> {
    let bind = || TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"));
    let (a, b) = (bind()?, bind()?);
    let port = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(io("finding a free port"))
    };
    Ok([port(&a)?, port(&b)?])
}

/// Waits until `port` accepts, or `child` (which should open it) exits.
fn wait_for_port(port: u16, what: &str, child: &mut Child) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Setup(format!(
                "{what} never listened: the driver exited ({status})"
            )));
        }
        // A refused loopback connect returns at once: don't spin a core.
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(Error::Timeout(format!("{what} to listen on port {port}")))
}

/// Forwards a child's output lines to a channel, so they can be waited for
/// with a deadline.
fn line_channel(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// One running app, driven over WebDriver.
#[derive(Debug)]
pub struct App {
    client: Client,
    shots: PathBuf,
}

impl App {
    /// Starts the built app with `args` and waits until its first screen
    /// is drawn (the header's "Open export…" button exists).
    pub async fn launch(driver: &Driver, args: &[&str], shots: &Path) -> Result<App> {
        App::launch_binary(driver, &app_binary()?, args, shots).await
    }

    /// [`App::launch`] of another build of the app (a benchmark's baseline).
    pub async fn launch_binary(
        driver: &Driver,
        binary: &Path,
        args: &[&str],
        shots: &Path,
    ) -> Result<App> {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            json!({ "application": binary, "args": args }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .map_err(Box::new)?;
        std::fs::create_dir_all(shots).map_err(io(format!("creating {}", shots.display())))?;
        let app = App {
            client,
            shots: shots.to_path_buf(),
        };
        app.wait_for("header button.primary").await?;
        Ok(app)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Waits for an element matching `css` to exist.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        self.wait_locator(Locator::Css(css), || format!("`{css}`"))
            .await
    }

    async fn wait_locator(
        &self,
        locator: Locator<'_>,
        what: impl FnOnce() -> String,
    ) -> Result<Element> {
        self.client
            .wait()
            .at_most(PATIENCE)
            .every(Duration::from_millis(50))
            .for_element(locator)
            .await
            .map_err(|_| Error::Timeout(what()))
    }

    /// Waits until the text of the first element matching `css` satisfies
    /// `ok`, and returns that text.
    pub async fn wait_for_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + PATIENCE;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                // innerText: WebKitWebDriver's element text is empty for
                // some visible elements (inside a button, say). The element
                // may also be re-rendered between find and read.
                if let Ok(Some(text)) = element.prop("innerText").await {
                    let text = text.trim().to_string();
                    if ok(&text) {
                        return Ok(text);
                    }
                    last = text;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::Timeout(format!(
            "`{css}` to read as expected (last: {last:?})"
        )))
    }

    /// Clicks the button whose text is exactly `label`.
    pub async fn click_button(&self, label: &str) -> Result<()> {
        let xpath = format!("//button[normalize-space(.)={}]", xpath_literal(label));
        let button = self
            .wait_locator(Locator::XPath(&xpath), || format!("a button {label:?}"))
            .await?;
        button.click().await.context(format!("clicking {label:?}"))
    }

    pub async fn click(&self, css: &str) -> Result<()> {
        let element = self.wait_for(css).await?;
        element.click().await.context(format!("clicking `{css}`"))
    }

    /// Types into the field labelled `label` (its `<label>` wraps it).
    pub async fn fill(&self, label: &str, text: &str) -> Result<()> {
        let xpath = format!(
            "//label[contains(normalize-space(.), {})]//input",
            xpath_literal(label)
        );
        let field = self
            .wait_locator(Locator::XPath(&xpath), || {
                format!("a field labelled {label:?}")
            })
            .await?;
        field
            .send_keys(text)
            .await
            .context(format!("typing into {label:?}"))
    }

    /// Saves what the window shows as `<name>.png` and returns the path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        // Let transitions land (a bar filling up), or the picture catches
        // them half-way; endless animations (a swaying bar) are left alone.
        self.client
            .execute_async(
                "const done = arguments[arguments.length - 1];\n\
                 const finite = document.getAnimations()\n\
                   .filter((a) => a.effect?.getComputedTiming().iterations !== Infinity);\n\
                 Promise.all(finite.map((a) => a.finished)).then(() => done(true), () => done(false));",
                vec![],
            )
            .await
            .context("waiting for transitions")?;
        let png = self.client.screenshot().await.context("screenshot")?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(io(format!("writing {}", path.display())))?;
        Ok(path)
    }

    /// The window's place on the screen and its size: `(x, y, width, height)`.
    pub async fn window_rect(&self) -> Result<(u64, u64, u64, u64)> {
        self.client.get_window_rect().await.context("window rect")
    }

    pub async fn script(&self, js: &str) -> Result<Value> {
        self.client.execute(js, vec![]).await.context("script")
    }

    /// Presses and releases Shift (harmless anywhere) and returns how long
    /// WebDriver took to deliver it: WebKit answers once the page has
    /// handled the key, so a busy page shows up here as latency.
    pub async fn press_shift(&self) -> Result<Duration> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        use fantoccini::key::Key;
        let shift = char::from(Key::Shift);
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: shift })
            .then(KeyAction::Up { value: shift });
        let started = Instant::now();
        self.client
            .perform_actions(keys)
            .await
            .context("pressing Shift")?;
        Ok(started.elapsed())
    }

    /// Starts recording the gaps between the page's animation frames; a
    /// frame late by more than ~17 ms is a stutter a person sees.
    pub async fn record_frames(&self) -> Result<()> {
        self.script(
            "window.__owiFrames = []; let last = performance.now();\n\
             const tick = (t) => { window.__owiFrames.push(t - last); last = t; requestAnimationFrame(tick); };\n\
             requestAnimationFrame(tick);",
        )
        .await
        .map(drop)
    }

    /// The frame gaps (ms) recorded since the last call, emptied.
    pub async fn take_frames(&self) -> Result<Vec<f64>> {
        let value = self
            .script("const f = window.__owiFrames || []; window.__owiFrames = []; return f;")
            .await?;
        Ok(value
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default())
    }

    pub async fn close(self) -> Result<()> {
        self.client.close().await.context("closing the session")
    }
}

fn xpath_literal(text: &str) -> String {
    if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        format!("'{text}'")
    }
}

/// The GTK drag source (`owi-drag-source`), offering one file.
#[derive(Debug)]
pub struct DragSource {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The centre of its window, in screen coordinates.
    pub centre: (i64, i64),
}

impl DragSource {
    /// Shows a window at `(x, y)` that drags `file`; returns once it is on
    /// the screen.
    pub fn start(
        binary: &Path,
        screen: &Screen,
        file: &Path,
        at: (i64, i64),
    ) -> Result<DragSource> {
        let mut child = Command::new(binary)
            .arg(file)
            .arg(at.0.to_string())
            .arg(at.1.to_string())
            .env("DISPLAY", screen.display())
            .env("NO_AT_BRIDGE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io(format!("starting {}", binary.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Setup("the drag source has no stdout".into()))?;
        let lines = line_channel(stdout);
        let mut source = DragSource {
            child,
            lines,
            centre: (0, 0),
        };
        // "ready X Y W H": where the window really is, once mapped.
        let ready = source.expect("ready", PATIENCE)?;
        let numbers: Vec<i64> = ready
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        let [x, y, w, h] = numbers[..] else {
            return Err(Error::Setup(format!("the drag source said {ready:?}")));
        };
        source.centre = (x + w / 2, y + h / 2);
        Ok(source)
    }

    /// The next line starting with `word`, waiting at most `within`.
    pub fn expect(&mut self, word: &str, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.split_whitespace().next() == Some(word) => return Ok(line),
                Ok(_) => continue,
                Err(_) => return Err(Error::Timeout(format!("the drag source to say {word:?}"))),
            }
        }
    }

    /// Whether a line starting with `word` arrived, waiting at most `within`.
    pub fn said(&mut self, word: &str, within: Duration) -> bool {
        self.expect(word, within).is_ok()
    }
}

impl Drop for DragSource {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drags the source's file over the app at `to` the way a hand does: press,
/// move until GTK starts the drag, glide onto the window until the app shows
/// its drop overlay. The button stays pressed: [`Screen::release`] drops.
pub async fn drag_onto(
    screen: &Screen,
    source: &mut DragSource,
    app: &App,
    to: (i64, i64),
) -> Result<()> {
    let (sx, sy) = source.centre;
    screen.xdotool(&["mousemove", &sx.to_string(), &sy.to_string()])?;
    screen.xdotool(&["mousedown", "1"])?;
    // GTK starts a drag once the pointer moves past its threshold while
    // pressed.
    let mut begun = false;
    for step in 1..=40 {
        let x = sx - step * 4;
        screen.xdotool(&["mousemove", &x.to_string(), &sy.to_string()])?;
        if source.said("drag-begin", Duration::from_millis(100)) {
            begun = true;
            break;
        }
    }
    if !begun {
        screen.xdotool(&["mouseup", "1"])?;
        return Err(Error::Timeout("GTK to start the drag".into()));
    }
    // Glide onto the window; the app's overlay says the drop is seen.
    let from = (sx - 160, sy);
    for step in 1..=20 {
        let x = from.0 + (to.0 - from.0) * step / 20;
        let y = from.1 + (to.1 - from.1) * step / 20;
        screen.xdotool(&["mousemove", &x.to_string(), &y.to_string()])?;
    }
    let deadline = Instant::now() + PATIENCE;
    let mut wiggle = 0;
    loop {
        if app.client.find(Locator::Css(".overlay")).await.is_ok() {
            break;
        }
        if Instant::now() > deadline {
            screen.xdotool(&["mouseup", "1"])?;
            return Err(Error::Timeout("the app to show its drop overlay".into()));
        }
        // XDND only speaks when the pointer moves.
        wiggle = 1 - wiggle;
        let x = to.0 + wiggle * 3;
        screen.xdotool(&["mousemove", &x.to_string(), &to.1.to_string()])?;
    }
    Ok(())
}

/// The resident set (current, peak) in kB of the process running `binary`
/// with `marker` among its arguments, and of the WebKit processes it
/// started.
pub fn memory_of(binary: &Path, marker: &str) -> Option<Memory> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut app = None;
    let mut all: Vec<(u32, u32, String)> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let ppid = field(&status, "PPid:").unwrap_or(0) as u32;
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| Path::new(a) == binary) && args.iter().any(|a| a == marker)
        {
            app = Some(pid);
        }
        all.push((pid, ppid, status));
    }
    let app = app?;
    let kb = |pid: u32, key: &str| {
        all.iter()
            .find(|(p, _, _)| *p == pid)
            .and_then(|(_, _, s)| field(s, key))
            .unwrap_or(0)
    };
    let web: u64 = all
        .iter()
        .filter(|(_, ppid, _)| *ppid == app)
        .map(|(pid, _, _)| kb(*pid, "VmRSS:"))
        .sum();
    Some(Memory {
        app_rss_kb: kb(app, "VmRSS:"),
        app_peak_kb: kb(app, "VmHWM:"),
        children_rss_kb: web,
    })
}

/// What [`memory_of`] found.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub app_rss_kb: u64,
    pub app_peak_kb: u64,
    /// WebKit's web and network processes, started by the app.
    pub children_rss_kb: u64,
}

fn field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
