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

mod app;
pub mod bus;
mod drag;
mod memory;
pub mod preview;

pub use app::App;
pub use drag::{DragSource, drag_onto};
pub use memory::{Memory, memory_of};

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
