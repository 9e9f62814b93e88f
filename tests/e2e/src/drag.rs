//! A real drag and drop onto the window: a GTK drag source and xdotool.

use super::*;

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
        if app.client().find(Locator::Css(".overlay")).await.is_ok() {
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
