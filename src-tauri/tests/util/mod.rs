//! The app on Tauri's mock runtime, driven through IPC with the JSON the UI
//! sends; channel messages are caught by a channel interceptor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody, InvokeResponseBody};
use tauri::test::{INVOKE_KEY, MockRuntime, mock_builder, mock_context, noop_assets};
use tauri::webview::InvokeRequest;
use tauri::{WebviewWindow, WebviewWindowBuilder};

/// One message a channel delivered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub index: usize,
    pub message: Value,
}

type Channels = Arc<Mutex<HashMap<u32, Vec<Recorded>>>>;

pub struct App {
    _app: tauri::App<MockRuntime>,
    webview: WebviewWindow<MockRuntime>,
    channels: Channels,
    /// Told of every channel message, for tests that wait for one.
    notify: Arc<Mutex<Option<mpsc::Sender<u32>>>>,
    next_channel: Mutex<u32>,
}

impl App {
    /// The app with its store in `data_dir`, as if started with `export`,
    /// with a context that allows every command.
    pub fn new(data_dir: &Path, export: Option<PathBuf>) -> App {
        App::with_context(data_dir, export, mock_context(noop_assets()))
    }

    /// The same with a given context: `tauri::generate_context!()` brings the
    /// app's real capabilities.
    pub fn with_context(
        data_dir: &Path,
        export: Option<PathBuf>,
        context: tauri::Context<MockRuntime>,
    ) -> App {
        let channels: Channels = Arc::default();
        let notify: Arc<Mutex<Option<mpsc::Sender<u32>>>> = Arc::default();
        let (caught, told) = (channels.clone(), notify.clone());
        let builder = mock_builder().channel_interceptor(move |_webview, callback, index, body| {
            let message = match body {
                InvokeResponseBody::Json(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                InvokeResponseBody::Raw(_) => Value::Null,
            };
            caught
                .lock()
                .unwrap()
                .entry(callback.0)
                .or_default()
                .push(Recorded { index, message });
            if let Some(tx) = told.lock().unwrap().as_ref() {
                let _ = tx.send(callback.0);
            }
            true
        });
        // Secrets in memory: a test never touches the machine's keychain.
        let state = owi_app::AppState::with_secrets(
            data_dir.join(owi_app::DATABASE_FILE),
            export,
            owi_client::SecretStore::in_memory(),
        );
        let app = owi_app::app(builder)
            .manage(state)
            .build(context)
            .expect("build the app on the mock runtime");
        let webview = WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .expect("open the main window");
        App {
            _app: app,
            webview,
            channels,
            notify,
            next_channel: Mutex::new(100),
        }
    }

    /// Calls a command as the UI does; the answer or the `{kind, message}` error.
    pub fn invoke(&self, cmd: &str, body: Value) -> Result<Value, Value> {
        invoke(&self.webview, cmd, body)
    }

    fn channel(&self) -> u32 {
        let mut next = self.next_channel.lock().unwrap();
        *next += 1;
        *next
    }

    fn recorded(&self, channel: u32) -> Vec<Recorded> {
        self.channels
            .lock()
            .unwrap()
            .get(&channel)
            .cloned()
            .unwrap_or_default()
    }

    /// `open_export` with a fresh progress channel: the answer and every
    /// progress message.
    pub fn open(&self, path: &Path, operation: &str) -> (Result<Value, Value>, Vec<Recorded>) {
        let (answer, progress, _) = self.open_live(path, operation);
        (answer, progress)
    }

    /// `open_export` with fresh channels: the answer, every progress
    /// message and every glimpse of the live preview.
    pub fn open_live(
        &self,
        path: &Path,
        operation: &str,
    ) -> (Result<Value, Value>, Vec<Recorded>, Vec<Recorded>) {
        let (progress, glimpses) = (self.channel(), self.channel());
        let answer = self.invoke(
            "open_export",
            open_body(path, operation, progress, glimpses),
        );
        (answer, self.recorded(progress), self.recorded(glimpses))
    }

    /// Calls a command that streams over a channel passed as `channel_arg`:
    /// the answer and every message.
    pub fn invoke_streaming(
        &self,
        cmd: &str,
        mut body: Value,
        channel_arg: &str,
    ) -> (Result<Value, Value>, Vec<Recorded>) {
        let channel = self.channel();
        body[channel_arg] = json!(format!("__CHANNEL__:{channel}"));
        let answer = self.invoke(cmd, body);
        (answer, self.recorded(channel))
    }

    /// `open_export` on another thread, for cancelling it meanwhile.
    pub fn open_in_background(&self, path: &Path, operation: &str) -> Running {
        let channel = self.channel();
        let (tx, rx) = mpsc::channel();
        *self.notify.lock().unwrap() = Some(tx);
        let webview = self.webview.clone();
        let body = open_body(path, operation, channel, self.channel());
        let handle = std::thread::spawn(move || invoke(&webview, "open_export", body));
        Running {
            channel,
            progress: rx,
            handle,
        }
    }
}

pub struct Running {
    channel: u32,
    progress: mpsc::Receiver<u32>,
    handle: std::thread::JoinHandle<Result<Value, Value>>,
}

impl Running {
    /// Waits until the operation has reported its first progress.
    pub fn wait_for_progress(&self) {
        loop {
            match self.progress.recv_timeout(Duration::from_secs(60)) {
                Ok(channel) if channel == self.channel => return,
                Ok(_) => continue,
                Err(e) => panic!("no progress from the operation: {e}"),
            }
        }
    }

    pub fn finish(self) -> Result<Value, Value> {
        self.handle.join().expect("the command thread")
    }
}

fn open_body(path: &Path, operation: &str, progress: u32, glimpses: u32) -> Value {
    json!({
        "request": {"path": path, "operation": operation},
        "onProgress": format!("__CHANNEL__:{progress}"),
        "onGlimpse": format!("__CHANNEL__:{glimpses}"),
    })
}

fn invoke(webview: &WebviewWindow<MockRuntime>, cmd: &str, body: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("a URL"),
        body: InvokeBody::Json(body),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    tauri::test::get_ipc_response(webview, request)
        .map(|body| body.deserialize::<Value>().expect("a JSON answer"))
}
