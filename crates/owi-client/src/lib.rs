//! The Open Wearables server client shared by the CLI and the desktop app:
//! connect with a password or an API key (secrets in the OS keychain, never
//! in logs or errors), list, find and create users. The upload engine
//! builds on [`Client`].

pub mod api;
mod client;
mod error;
mod follow;
mod import;
mod probe;
mod profile;
mod readback;
pub mod secret;
mod settings;
mod upload;

pub use api::{NewUser, Page, User, UserQuery};
pub use client::{Client, ClientOptions, Credentials, RetryPolicy, ServerUrl, Timeouts, TokenHook};
pub use error::Error;
pub use follow::{FollowOptions, RunTarget, SyncEvent, WatchSink, Watched};
pub use import::{
    Checked, Ending, ImportReport, ImportRequest, Importer, PieceReport, Plan, Rechecked,
    SharedStore, Step,
};
pub use profile::Profile;
pub use readback::{Expected, OnServer};
pub use secret::{Kept, Secret, SecretStore};
pub use upload::{
    DIRECT_MAX, Job, Journal, MULTIPART_LIMIT, MULTIPART_MIN, Method, POST_LIMIT, Resume,
    UploadSource, Uploaded, presigned_fields, upload_name,
};
