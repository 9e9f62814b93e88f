//! A D-Bus session of the test's own: the bus the app finds its running
//! twin on (single instance) and sends notifications over, and a monitor
//! that records what was said on it. Real `dbus-daemon` and `dbus-monitor`
//! (Debian's dbus packages); no notification daemon runs under Xvfb, so a
//! notification is seen as the call the app makes, answered or not.

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Error, PATIENCE, Result, io, line_channel, terminate};

/// A private session bus, stopped when dropped.
#[derive(Debug)]
pub struct SessionBus {
    child: Child,
    address: String,
}

impl SessionBus {
    pub fn start() -> Result<SessionBus> {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            // Its notes (fd limits, services it starts) are not the test's.
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting dbus-daemon (Debian package dbus-daemon)"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Setup("dbus-daemon has no stdout".into()))?;
        let address = line_channel(stdout)
            .recv_timeout(PATIENCE)
            .map_err(|_| Error::Timeout("dbus-daemon to print its address".into()))?;
        Ok(SessionBus { child, address })
    }

    /// For `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Starts recording the calls made to `interface`.
    pub fn monitor(&self, interface: &str) -> Result<Monitor> {
        let mut child = Command::new("dbus-monitor")
            .args([
                "--address",
                &self.address,
                &format!("type='method_call',interface='{interface}'"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io("starting dbus-monitor (Debian package dbus-bin)"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Setup("dbus-monitor has no stdout".into()))?;
        let mut monitor = Monitor {
            child,
            lines: line_channel(stdout),
            seen: Vec::new(),
        };
        // Its own NameAcquired signal says it is on the bus and listening.
        monitor.wait_for("NameAcquired", PATIENCE)?;
        Ok(monitor)
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// What `dbus-monitor` printed, line by line.
#[derive(Debug)]
pub struct Monitor {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Monitor {
    /// Waits until a line containing `text` arrives; returns every line
    /// read up to it.
    pub fn wait_for(&mut self, text: &str, within: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + within;
        loop {
            if self.seen.iter().any(|l| l.contains(text)) {
                return Ok(self.seen.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => return Err(Error::Timeout(format!("D-Bus to carry {text:?}"))),
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
