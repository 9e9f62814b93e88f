//! Which server the bundled one behaves like, wherever a client can tell.
//!
//! `Native` is this project's own server: every import reports its stages
//! and runs under the task id its upload returned. `OpenWearables06` is a
//! real Open Wearables 0.6 server as it behaves on the wire (checked against
//! 0.6.3-38 on loopback), so clients are tested against what they will meet.

use crate::jobs::Origin;
use crate::sync::Stage;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compat {
    #[default]
    Native,
    /// Open Wearables 0.6: a direct upload's run has an id of its own
    /// (`xml_` + 16 hex digits), found by the file name in its events, and
    /// reports only `started` and then `completed` or `failed`; an S3
    /// import reports nothing at all (it is imported silently, as a server
    /// with bucket notifications does); there are no multipart routes; an
    /// upload for an unknown or malformed user id is accepted; an export
    /// with iOS 16's malformed DTD or a character XML forbids fails (a
    /// strict parser); `/events/workouts` lists the workouts that *end*
    /// before `end_date` (the real server's filter), not those that start.
    OpenWearables06,
}

impl Compat {
    pub const NAMES: [&str; 2] = ["native", "open-wearables-0.6"];

    pub fn parse(name: &str) -> Option<Compat> {
        match name {
            "native" => Some(Compat::Native),
            "open-wearables-0.6" => Some(Compat::OpenWearables06),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compat::Native => Self::NAMES[0],
            Compat::OpenWearables06 => Self::NAMES[1],
        }
    }

    /// Whether each upload's object key is its own (natively) rather than
    /// the file name alone, reused by the next upload of the same name
    /// (Open Wearables 0.6).
    pub(crate) fn unique_object_keys(self) -> bool {
        self == Compat::Native
    }

    /// Whether `/events/workouts`' `end_date` bounds a workout's end
    /// (exclusive, as Open Wearables 0.6 filters) rather than its start.
    pub(crate) fn lists_workouts_by_end(self) -> bool {
        self == Compat::OpenWearables06
    }

    /// The id of the run that imports the upload answered with `task_id`.
    pub(crate) fn run_id(self, task_id: &str) -> String {
        match self {
            Compat::Native => task_id.to_string(),
            Compat::OpenWearables06 => {
                let hex = crate::auth::hex(&crate::auth::random_bytes::<8>());
                format!("xml_{hex}")
            }
        }
    }

    /// Whether an import from `origin` reports `stage` to its followers.
    pub(crate) fn reports(self, origin: Origin, stage: Stage) -> bool {
        match self {
            Compat::Native => true,
            Compat::OpenWearables06 => {
                origin == Origin::Direct
                    && matches!(stage, Stage::Started | Stage::Completed | Stage::Failed)
            }
        }
    }

    /// Whether uploads refuse a user id that is malformed or unknown
    /// before taking the file.
    pub(crate) fn checks_user_on_upload(self) -> bool {
        self == Compat::Native
    }

    /// Whether an export with iOS 16's malformed DTD or characters XML
    /// forbids fails, as it does under a strict XML parser.
    pub(crate) fn parses_strictly(self) -> bool {
        self == Compat::OpenWearables06
    }

    pub(crate) fn offers_multipart(self) -> bool {
        self == Compat::Native
    }
}
