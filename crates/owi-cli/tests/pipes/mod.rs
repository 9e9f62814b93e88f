//! A reader that goes away ends any command quietly, as it does other Unix
//! tools: `owi workouts | head` must not panic on the write that finds the
//! pipe gone.

use std::process::Stdio;

use crate::{Env, KEY, LocalServer, local_server, s};

/// Runs `owi ARGS` with standard output a pipe whose reading end is closed
/// before it starts, so its first write fails.
fn into_closed_pipe(mut cmd: std::process::Command, args: &[&str]) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = cmd
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "owi {args:?} panicked: {stderr}"
    );
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("error:"),
        "owi {args:?} ends quietly: {stderr}"
    );
    assert!(
        out.status.success(),
        "owi {args:?}: {:?}: {stderr}",
        out.status
    );
}

/// `owi` pointed at `server`, as a process.
fn with_server(server: &LocalServer, env: &Env) -> std::process::Command {
    let mut cmd = env.owi_process();
    cmd.env("OWI_SERVER", &server.url).env("OWI_API_KEY", KEY);
    cmd
}

#[test]
fn a_closed_pipe_ends_every_printing_command_quietly() {
    let env = Env::new();
    let manifest = env.sample(500, 4, &["--zip"]);
    let zip = s(&manifest["zip_path"]);
    let db = env.path("owi.sqlite");
    let db = db.to_str().unwrap();
    let out_dir = env.path("more");
    let out_dir = out_dir.to_str().unwrap();
    env.json(&["inspect", zip, "--db", db, "--json"]);
    for args in [
        vec!["inspect", zip, "--db", db],
        vec!["inspect", zip, "--db", db, "--json"],
        vec!["workouts", "--db", db],
        vec!["workouts", "--db", db, "--json"],
        vec!["history", "--db", db],
        vec!["history", "--db", db, "--json"],
        vec!["sample", "--out", out_dir, "--records", "50", "--json"],
    ] {
        into_closed_pipe(env.owi_process(), &args);
    }
    let server = local_server();
    let user = server.create_user(&env);
    for args in [
        vec!["users"],
        vec!["users", "--json"],
        vec!["upload", zip, "--user", &user, "--db", db],
        vec!["upload", zip, "--user", &user, "--db", db, "--dry-run"],
        vec!["status", "--user", &user, "--db", db],
    ] {
        into_closed_pipe(with_server(&server, &env), &args);
    }
}
