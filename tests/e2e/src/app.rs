//! One running app, driven over WebDriver.

use super::*;

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
        let mut last = String::new();
        let found = poll(async || {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                // innerText: WebKitWebDriver's element text is empty for
                // some visible elements (inside a button, say). The element
                // may also be re-rendered between find and read.
                if let Ok(Some(text)) = element.prop("innerText").await {
                    let text = text.trim().to_string();
                    if ok(&text) {
                        return Ok(Some(text));
                    }
                    last = text;
                }
            }
            Ok(None)
        })
        .await?;
        found.ok_or_else(|| Error::Timeout(format!("`{css}` to read as expected (last: {last:?})")))
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

    /// Waits until the window's size is `(width, height)`: the window
    /// manager applies a resize in its own time.
    pub async fn wait_for_window_size(&self, width: u32, height: u32) -> Result<()> {
        let want = (u64::from(width), u64::from(height));
        let mut last = (0, 0);
        let found = poll(async || {
            let (_, _, w, h) = self.window_rect().await?;
            last = (w, h);
            Ok((last == want).then_some(()))
        })
        .await?;
        found.ok_or_else(|| {
            Error::Timeout(format!(
                "the window to be {width}×{height} (last: {}×{})",
                last.0, last.1
            ))
        })
    }

    pub async fn script(&self, js: &str) -> Result<Value> {
        self.client.execute(js, vec![]).await.context("script")
    }

    /// Runs `js` until what it returns satisfies `ok`, and returns that:
    /// the page catches up with the window manager (a resize, say) in its
    /// own time.
    pub async fn wait_for_script(&self, js: &str, ok: impl Fn(&Value) -> bool) -> Result<Value> {
        let mut last = Value::Null;
        let found = poll(async || {
            last = self.script(js).await?;
            Ok(ok(&last).then(|| last.clone()))
        })
        .await?;
        found.ok_or_else(|| Error::Timeout(format!("`{js}` to return as expected (last: {last})")))
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

/// Runs `probe` every 50 ms until it finds something, for at most the
/// suite's patience; `None` when it never did.
async fn poll<T>(mut probe: impl AsyncFnMut() -> Result<Option<T>>) -> Result<Option<T>> {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(found) = probe().await? {
            return Ok(Some(found));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(None)
}
