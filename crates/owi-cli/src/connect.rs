//! `owi login` and `owi users`: connecting to a server and picking the
//! person whose data is imported. The work is `owi_client`'s; this module
//! reads arguments, prompts, and prints.

use std::io::BufRead;
use std::path::PathBuf;

use crate::out::out;
use anyhow::Context;
use owi_client::{
    Client, ClientOptions, Credentials, Kept, NewUser, Profile, Secret, SecretStore, UserQuery,
};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The server, e.g. `http://127.0.0.1:8000` or `https://ow.example.com`.
    #[arg(long, env = "OWI_SERVER")]
    server: String,
    /// Log in with this account's password (asked for, or read from stdin).
    #[arg(long, env = "OWI_EMAIL", conflicts_with = "api_key")]
    email: Option<String>,
    /// Use an API key (`sk-…`) instead of a password.
    #[arg(long, env = "OWI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Read the password from the first line of stdin (for scripts).
    #[arg(long, requires = "email")]
    password_stdin: bool,
    /// Allow plain http:// to a server on another computer: the password
    /// or key then crosses the network unencrypted. Remembered with the
    /// login (`OWI_INSECURE_HTTP=1` for credentials from the environment).
    #[arg(long)]
    insecure_http: bool,
}

#[derive(Debug, clap::Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    command: Option<UsersCommand>,
    /// Only users whose name or email contains this.
    #[arg(long)]
    search: Option<String>,
    #[arg(long, default_value_t = 1)]
    page: u32,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Print the page as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum UsersCommand {
    /// Create a user (every field optional).
    Create {
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn profile_path() -> anyhow::Result<PathBuf> {
    Ok(crate::paths::data_dir()?.join("server.json"))
}

pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    let credentials = match (&args.api_key, &args.email) {
        (Some(key), _) => Credentials::ApiKey(Secret::new(key.clone())),
        (None, Some(email)) => Credentials::Password {
            email: email.clone(),
            password: read_password(email, args.password_stdin)?,
        },
        (None, None) => anyhow::bail!("say how to log in: --email EMAIL or --api-key KEY"),
    };
    let api_key = match &credentials {
        Credentials::ApiKey(key) => Some(key.clone()),
        _ => None,
    };
    runtime()?.block_on(async move {
        let options = ClientOptions {
            insecure_http: args.insecure_http || insecure_from_env(),
            ..ClientOptions::default()
        };
        let client = Client::connect_with(&args.server, credentials, options)
            .await
            .map_err(with_flag)?;
        let profile = Profile {
            server: client.server().origin().to_string(),
            email: client.email().map(str::to_string),
            insecure_http: args.insecure_http,
        };
        let kept = profile
            .keep(&client, api_key.as_ref(), &SecretStore::system())
            .await;
        profile.save(&profile_path()?)?;
        match &profile.email {
            Some(email) => out!("logged in to {} as {email}", profile.server)?,
            None => out!("connected to {} with an API key", profile.server)?,
        }
        if kept == Kept::ProcessOnly {
            out!(
                "note: this machine has no keychain, so the credentials were not saved; \
                 set OWI_API_KEY (or OWI_EMAIL and OWI_PASSWORD) for the next commands"
            )?;
        }
        anyhow::Ok(())
    })
}

fn read_password(email: &str, from_stdin: bool) -> anyhow::Result<Secret> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else if let Ok(p) = std::env::var("OWI_PASSWORD") {
        p
    } else {
        rpassword::prompt_password(format!("password for {email}: "))
            .context("reading the password (use --password-stdin when there is no terminal)")?
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    Ok(Secret::new(password))
}

/// Connects as the last login (or the environment) says, keeping the
/// rotated refresh token for next time.
pub async fn connect() -> anyhow::Result<Client> {
    let path = profile_path()?;
    let profile = Profile::load(&path)?;
    let secrets = SecretStore::system();
    let (server, credentials) = Profile::credentials(profile.as_ref(), &secrets).await?;
    let from_profile = matches!(credentials, Credentials::RefreshToken { .. });
    let options = ClientOptions {
        on_refresh_token: profile
            .as_ref()
            .filter(|_| from_profile)
            .map(|p| p.token_keeper(secrets.clone())),
        insecure_http: insecure_from_env()
            || profile
                .as_ref()
                .is_some_and(|p| p.insecure_http && p.server == server),
        ..ClientOptions::default()
    };
    Client::connect_with(&server, credentials, options)
        .await
        .map_err(with_flag)
}

/// The client's refusal of plain HTTP, with how to allow it here.
fn with_flag(e: owi_client::Error) -> anyhow::Error {
    match e {
        owi_client::Error::InsecureHttp { .. } => anyhow::anyhow!(
            "{e}: owi login --insecure-http, or OWI_INSECURE_HTTP=1 with credentials from the environment"
        ),
        e => e.into(),
    }
}

/// `OWI_INSECURE_HTTP=1` allows plain HTTP to another computer.
fn insecure_from_env() -> bool {
    std::env::var("OWI_INSECURE_HTTP").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

pub fn users(args: UsersArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = connect().await?;
        if let Some(UsersCommand::Create {
            email,
            first_name,
            last_name,
            json,
        }) = args.command
        {
            let user = client
                .create_user(&NewUser {
                    first_name,
                    last_name,
                    email,
                })
                .await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&user)?)?;
            } else {
                out!("created {} ({})", user.display_name(), user.id)?;
            }
            return anyhow::Ok(());
        }
        let page = client
            .users(&UserQuery {
                page: args.page,
                limit: args.limit,
                search: args.search,
            })
            .await?;
        if args.json {
            out!("{}", serde_json::to_string_pretty(&page)?)?;
            return Ok(());
        }
        if page.items.is_empty() {
            out!("no users on {}", client.server().origin())?;
            return Ok(());
        }
        out!("{:<36}  {:<40}  last synced", "id", "name")?;
        for user in &page.items {
            out!(
                "{:<36}  {:<40}  {}",
                user.id,
                user.display_name(),
                user.last_synced_at.as_deref().unwrap_or("never")
            )?;
        }
        if page.has_next {
            out!(
                "page {} of {} ({} users): --page {} for more",
                page.page,
                page.pages,
                page.total,
                page.page + 1
            )?;
        }
        Ok(())
    })
}

/// The runtime of a command that talks to a server: one thread, so an
/// upload's body chunks are read where they are sent. On a multi-threaded
/// runtime each read hands the worker to another thread, and the direct
/// upload of 1 GB took 0.75 s against 0.68 s (median of 12 rounds each).
/// A multipart upload's parts in flight take turns on it, and measured no
/// slower for it (the upload bench). Blocking work, the store's above all,
/// still goes to tokio's blocking threads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
