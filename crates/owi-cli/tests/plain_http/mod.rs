//! Plain HTTP beyond this computer: the client will not send a password or
//! key over it unless told to, and the bundled server says what listening
//! there means.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::{Env, KEY};

#[test]
fn a_key_is_not_sent_over_plain_http_to_another_computer_unless_allowed() {
    let env = Env::new();
    // TEST-NET-1: nothing is ever there, and nothing is sent to find out.
    let server = "http://192.0.2.10:8000";
    let out = env
        .owi()
        .args(["login", "--server", server, "--api-key", KEY])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plain HTTP") && err.contains("--insecure-http"),
        "{err}"
    );
    assert!(!err.contains(KEY), "never echoes the key: {err}");
    assert!(
        !err.contains("192.0.2.10:8000 could not be reached"),
        "{err}"
    );
}

#[test]
fn serving_beyond_loopback_warns_that_it_is_plain_http() {
    let env = Env::new();
    let data = env.path("server");
    let mut child = env
        .owi_process()
        .args(["serve", "--addr", "0.0.0.0:0", "--data"])
        .arg(&data)
        .env("OWI_API_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let warning = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(30)).ok())
        .find(|line| line.starts_with("warning:"));
    child.kill().unwrap();
    child.wait().unwrap();
    let warning = warning.expect("a warning before serving beyond loopback");
    assert!(
        warning.contains("plain HTTP") && warning.contains("TLS"),
        "{warning}"
    );
}
