//! `owi inspect` on a terminal shows, under its bar, the running counts of
//! the live preview while it reads. `script` (util-linux) gives it a real
//! pseudo-terminal; the bar is drawn only on one.

use crate::{Env, s};

/// Every "N records of" the terminal showed, in order.
fn live_record_counts(screen: &str) -> Vec<u64> {
    screen
        .match_indices(" records of ")
        .filter_map(|(at, _)| {
            let before = &screen[..at];
            let digits: String = before
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit() || *c == ',')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .filter(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn inspect_on_a_terminal_shows_the_counts_growing_under_its_bar() {
    let env = Env::new();
    let sample = env.sample(150_000, 30, &[]);
    let xml = s(&sample["xml_path"]).to_string();
    let db = env.path("live.sqlite");
    let command = format!(
        "{} inspect '{}' --db '{}'",
        env!("CARGO_BIN_EXE_owi"),
        xml,
        db.display()
    );
    let out = env
        .owi_process()
        .get_envs()
        .fold(std::process::Command::new("script"), |mut cmd, (k, v)| {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
            cmd
        })
        .env("TERM", "xterm")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .expect("script runs");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "owi inspect failed: {screen}");

    let json = env.json(&[
        "inspect",
        &xml,
        "--db",
        db.to_str().expect("utf-8"),
        "--json",
    ]);
    let total = json["records"].as_u64().expect("records");
    let counts = live_record_counts(&screen);
    assert!(
        counts.iter().any(|&n| n > 0 && n < total),
        "a count from the middle of the read, under the bar (of {total}): {counts:?}\n{screen}"
    );
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "the counts only grow: {counts:?}"
    );
    assert!(
        screen.contains(&format!(
            "{} records ({} stored)",
            total, json["records_stored"]
        )),
        "the finished summary follows: {screen}"
    );
}
