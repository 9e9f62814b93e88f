//! `owi`: the command line over the importer's core.
//!
//! Each subcommand parses its arguments, calls one core function and prints
//! the result (a table for people, `--json` for scripts). Errors end the
//! process with one sentence on stderr and a non-zero exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; for `owi upload`, the import is confirmed: reported by the server, or its data found there |
//! | 1 | an error, said in one sentence (a failed import gives the server's own reason) |
//! | 2 | the command line is wrong (usage) |
//! | 3 | `owi inspect`: the export is damaged; what came before the damage was read |
//! | 4 | `owi upload`: uploaded, but the server has not been seen to import it |

mod bar;
mod choice;
mod connect;
mod history;
mod inspect;
mod out;
mod paths;
mod sample;
mod serve;
mod status;
mod store;
mod upload;
mod workouts;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "owi",
    version,
    about = "Bring an Apple Health export into Open Wearables",
    after_help = "Exit codes: 0 done (an upload imported and confirmed); 1 error; 2 usage; \
                  3 an export read only in part; 4 uploaded, import not confirmed yet"
)]
struct Cli {
    /// Log details to stderr as well as to the log file.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read an export (export.zip or the XML) into the local database and summarise it.
    Inspect(inspect::Args),
    /// List the workouts of an export already read.
    Workouts(workouts::Args),
    /// Write a synthetic export, for trying things out without an iPhone.
    Sample(sample::Args),
    /// Run the bundled Open Wearables import server on this machine.
    Serve(serve::Args),
    /// Run only the bundled server's S3-compatible store (for a self-hosted server).
    Store(store::Args),
    /// Log in to an Open Wearables server (password or API key).
    Login(connect::LoginArgs),
    /// List, search or create the users of the server logged in to.
    Users(connect::UsersArgs),
    /// Send an export to a user's import and follow it to the end.
    Upload(upload::Args),
    /// Show (or follow) what the server says about a user's imports.
    Status(status::Args),
    /// What was sent where, and how it ended.
    History(history::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_guard = paths::init_logging(cli.verbose);
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Workouts(args) => workouts::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Store(args) => store::run(args),
        Command::Login(args) => connect::login(args),
        Command::Users(args) => connect::users(args),
        Command::Upload(args) => upload::run(args),
        Command::Status(args) => status::run(args),
        Command::History(args) => history::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`owi workouts | head`): done.
        Err(e) if e.downcast_ref::<out::Closed>().is_some() => ExitCode::SUCCESS,
        // Uploaded and not yet imported is news, not an error.
        Err(e) if e.downcast_ref::<upload::Unconfirmed>().is_some() => {
            let state = described(&e);
            tracing::warn!(state, "upload not confirmed");
            eprintln!("{state}");
            ExitCode::from(4)
        }
        Err(e) => {
            let error = described(&e);
            tracing::error!(error, "command failed");
            eprintln!("error: {error}");
            if e.downcast_ref::<inspect::Partial>().is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes, each said once: the libraries' messages end
/// with their source's already, which `{:#}` would say again.
fn described(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
