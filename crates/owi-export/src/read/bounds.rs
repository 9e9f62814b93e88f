//! What keeps memory bounded whatever the input. Each bound is far above
//! anything Apple writes (ARCHITECTURE.md, "Bounds") and, when crossed,
//! fails the read at the offending element's byte offset.

use super::*;

/// The longest run of bytes without `<` or `>` accepted: the parser buffers
/// a whole tag or text run, so this bounds its memory on hostile input.
/// Apple's longest tags are a few kilobytes.
pub const MAX_MARKUP_RUN: u64 = 64 << 20;

/// The bytes since the last `<` or `>` once `chunk` follows a run of `run`;
/// an error past [`MAX_MARKUP_RUN`].
pub(crate) fn markup_run(run: u64, chunk: &[u8]) -> io::Result<u64> {
    let run = match memchr::memrchr2(b'<', b'>', chunk) {
        Some(last) => (chunk.len() - last - 1) as u64,
        None => run + chunk.len() as u64,
    };
    if run > MAX_MARKUP_RUN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a single tag or text run longer than {} MiB: not an Apple Health export",
                MAX_MARKUP_RUN >> 20
            ),
        ));
    }
    Ok(run)
}

/// Elements open at once, `HealthData` included. Apple nests 5 deep at most
/// (`HealthData > Workout > WorkoutActivity > WorkoutEvent > MetadataEntry`).
pub const MAX_DEPTH: usize = 32;
/// Bytes of an element's name. Apple's longest is 32
/// (`HeartRateVariabilityMetadataList`).
pub const MAX_NAME_BYTES: usize = 256;
/// Children of one `Record`: metadata entries plus heartbeats of its
/// `HeartRateVariabilityMetadataList` (about one a second, over a minute or two).
pub const MAX_RECORD_CHILDREN: usize = 10_000;
/// Attributes of one element the reader keeps. Apple's most is 14 (`Workout`).
pub const MAX_ATTRIBUTES: usize = 256;
/// Bytes of one attribute value the reader keeps. Apple's longest are
/// device descriptions of a few hundred bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 1 << 20;
/// Different names of elements the reader does not know, counted by name.
pub const MAX_UNKNOWN_NAMES: usize = 1_000;
/// Bytes of names, attribute values and text kept for one rare element
/// (a workout and everything in it); past it the element is skipped as
/// too large, like past `MAX_ELEMENT_NODES` nodes.
pub const MAX_ELEMENT_BYTES: usize = 64 << 20;

impl<R: BufRead> Parser<'_, R> {
    /// The next event, held to the bounds, and the byte it starts at;
    /// `inside` names the open element in a parser error.
    pub(super) fn next_held<'b>(
        &mut self,
        buf: &'b mut Vec<u8>,
        inside: &str,
    ) -> Res<(Event<'b>, u64)> {
        buf.clear();
        let at = self.offset();
        let event = match self.xml.read_event_into(buf) {
            Ok(event) => event,
            Err(e) => return Err(self.xml_error(e, inside)),
        };
        self.held(&event, at)?;
        Ok((event, at))
    }

    /// Holds the event just read (from byte `at`) to the depth and name
    /// bounds, and keeps the depth.
    pub(super) fn held(&mut self, event: &Event<'_>, at: u64) -> Res<()> {
        let e = match event {
            Event::Start(e) => {
                self.depth += 1;
                e
            }
            Event::Empty(e) => e,
            Event::End(_) => {
                self.depth = self.depth.saturating_sub(1);
                return Ok(());
            }
            _ => return Ok(()),
        };
        let depth = self.depth + usize::from(matches!(event, Event::Empty(_)));
        depth_held(&self.path, depth, at)?;
        if e.name().as_ref().len() > MAX_NAME_BYTES {
            return Err(self.over(
                at,
                format!("an element name longer than {MAX_NAME_BYTES} bytes"),
            ));
        }
        Ok(())
    }

    /// Holds one more attribute of an element being kept (the `count`th,
    /// of `len` bytes) to the attribute bounds.
    pub(super) fn attribute_held(&self, count: usize, len: usize, at: u64) -> Res<()> {
        if count > MAX_ATTRIBUTES {
            return Err(self.over(
                at,
                format!("an element with more than {MAX_ATTRIBUTES} attributes"),
            ));
        }
        if len > MAX_ATTRIBUTE_BYTES {
            return Err(self.over(
                at,
                format!(
                    "an attribute value longer than {} KiB",
                    MAX_ATTRIBUTE_BYTES >> 10
                ),
            ));
        }
        Ok(())
    }

    /// Counts an element this reader does not know, by name.
    pub(super) fn unknown(&mut self, name: &[u8], at: u64) -> Res<()> {
        let name = String::from_utf8_lossy(name);
        if let Some(count) = self.stats.unknown.get_mut(name.as_ref()) {
            *count += 1;
            return Ok(());
        }
        if self.stats.unknown.len() >= MAX_UNKNOWN_NAMES {
            return Err(self.over(
                at,
                format!("more than {MAX_UNKNOWN_NAMES} different unknown element names"),
            ));
        }
        self.stats.unknown.insert(name.into_owned(), 1);
        Ok(())
    }

    pub(super) fn over(&self, at: u64, what: String) -> Error {
        over_bound(&self.path, at, &what)
    }
}

/// Past a bound at byte `at`: the file is damaged or was never an export.
pub(crate) fn over_bound(path: &Path, at: u64, what: &str) -> Error {
    Error::Malformed {
        path: path.to_path_buf(),
        offset: at,
        message: format!(
            "{what}; Apple Health exports stay far below this, so the file is damaged or not an export"
        ),
    }
}

/// The depth bound for a scan that tracks depth itself (the splitter).
pub(crate) fn depth_held(path: &Path, depth: usize, at: u64) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(over_bound(
            path,
            at,
            &format!("elements nested more than {MAX_DEPTH} deep (Apple nests 5)"),
        ));
    }
    Ok(())
}
