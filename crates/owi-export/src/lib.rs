//! Reading Apple Health exports.
//!
//! [`ExportSource::open`] takes what the Health app wrote — `export.zip`, or
//! the XML inside it under any locale's name — and finds the HealthData
//! document by its content. [`read_export`] then streams it once, straight
//! out of the zip, handing every element to a [`Visitor`] while hashing the
//! bytes into a fingerprint and reporting progress. Memory stays bounded
//! whatever the export's size: records are lent to the visitor from reused
//! buffers, and only rare elements (workouts, correlations) are built whole.
//!
//! [`outgoing`] gives the exact bytes an uploader sends: the XML whole, or
//! split into pieces that are each an export, optionally cleaned for strict
//! parsers without changing its length, readable from any offset.
//!
//! Nothing here touches a database or the network; see `FORMAT.md` for the
//! facts about the format this code relies on.

mod checking;
mod chooser;
mod error;
mod gpx;
pub mod identity;
mod judged;
mod kept;
mod kinds;
pub mod model;
pub mod names;
pub mod outgoing;
pub mod preflight;
pub mod prolog;
mod read;
mod rechoose;
mod sample_keys;
pub mod selection;
mod server_types;
pub mod share;
mod source;
mod spill;
pub mod text;
pub mod time;
pub mod units;

pub use checking::Checking;
pub use chooser::{Tally, TallyRow};
pub use error::{Error, Result};
pub use identity::{Identities, Identity, SentItems};
pub use kept::{KeptCheck, KeptOutcome, check_logic};
pub use kinds::resolve_kinds;
pub use model::*;
pub use outgoing::{Cleaning, Outgoing};
pub use preflight::{
    Choice, Preflight, nested_server_value, nested_value_for_server, preflight, preflight_choosing,
    server_value, value_for_server,
};
pub use read::{
    Failure, ReadOptions, Report, Stats, Visitor, read_export, read_xml_stream,
    strip_device_pointer,
};
/// The reader's bounds on hostile input (ARCHITECTURE.md, "Bounds").
pub mod bounds {
    pub use crate::prolog::MAX_PROLOG;
    pub use crate::read::{
        MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTES, MAX_DEPTH, MAX_ELEMENT_BYTES, MAX_ELEMENT_NODES,
        MAX_MARKUP_RUN, MAX_NAME_BYTES, MAX_RECORD_CHILDREN, MAX_UNKNOWN_NAMES,
    };
    pub use crate::source::MAX_COMPRESSION_RATIO;
}
pub use selection::{LeftOut, Selection};
pub use server_types::server_stores;
pub use share::{Kinds, Share};
pub use source::{ExportSource, MAX_COMPRESSION_RATIO, RouteLoad, Routes, SkippedEntry};
pub use time::Timestamp;
