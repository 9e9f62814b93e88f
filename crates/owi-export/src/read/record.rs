//! `Record`, 99 % of an export: attributes read in place, children into reused buffers.

use super::bounds::MAX_RECORD_CHILDREN;
use super::*;
use crate::time::LastDay;

/// Children of the record being read, in buffers reused across records.
#[derive(Default)]
pub(super) struct RecordChildren {
    pub(super) metadata: Vec<Meta>,
    pub(super) metadata_len: usize,
    pub(super) beats: Vec<Beat>,
    /// Children of the record being read, heartbeats included.
    pub(super) count: usize,
    /// The event buffer for children, kept between records.
    buf: Vec<u8>,
    /// The fast lane's buffers (`lane/`).
    pub(super) lane: super::lane::Lane,
    /// The calendar day of the last date read.
    day: LastDay,
    /// The last value seen in each text slot (type, source, version,
    /// device, unit), raw and decoded: consecutive records nearly always
    /// repeat them, and a repeat costs one comparison instead of a decode.
    recent: [Recent; 5],
}

#[derive(Default)]
struct Recent {
    /// The raw bytes, without a device's `&lt;&lt;HKDevice: 0x…` pointer.
    raw: Vec<u8>,
    /// Whether that pointer was there (and left out of `raw`).
    pointer: bool,
    text: String,
    repaired: u32,
}

/// Where a record's children are read from.
pub(super) enum Children<'a> {
    /// A self-closing tag.
    Childless,
    /// From the XML, by quick-xml's events.
    InXml,
    /// The `MetadataEntry` tags the fast lane read (`lane/`) in the
    /// record's `element`, their attributes among `pairs`: they were all
    /// its children.
    Metadata {
        element: &'a [u8],
        pairs: &'a [super::lane::Pair],
        entries: &'a [super::lane::Entry],
    },
}

/// A device's raw bytes without the object pointer that differs from one
/// record to the next: `&lt;&lt;HKDevice: 0x2ef724d20&gt;, name:…` →
/// `(true, &gt;, name:…)`. Whatever else is compared whole.
fn device_key(raw: &[u8]) -> (bool, &[u8]) {
    const PREFIX: &[u8] = b"&lt;&lt;HKDevice: 0x";
    match raw.strip_prefix(PREFIX) {
        Some(rest) => {
            let hex = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
            (true, &rest[hex..])
        }
        None => (false, raw),
    }
}

/// A minimal tokenizer for the attributes of a start tag: `name = "value"`
/// pairs, either quote. Malformed input ends the iteration early; the
/// document's well-formedness is quick-xml's to judge elsewhere, and a record
/// missing attributes is reported as such.
struct RawAttributes<'a> {
    rest: &'a [u8],
}

impl<'a> RawAttributes<'a> {
    pub(super) fn new(raw: &'a [u8]) -> Self {
        RawAttributes { rest: raw }
    }
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest;
        let start = s.iter().position(|b| !b.is_ascii_whitespace())?;
        let eq = start + memchr::memchr(b'=', &s[start..])?;
        let key = s[start..eq].trim_ascii_end();
        let open = eq + 1 + s[eq + 1..].iter().position(|b| !b.is_ascii_whitespace())?;
        let quote = *s.get(open).filter(|&&q| q == b'"' || q == b'\'')?;
        let close = open + 1 + memchr::memchr(quote, &s[open + 1..])?;
        self.rest = &s[close + 1..];
        Some((key, &s[open + 1..close]))
    }
}

// Slots of a record's attributes.
const KIND: usize = 0;
const SOURCE: usize = 1;
const SOURCE_VERSION: usize = 2;
const DEVICE: usize = 3;
const UNIT: usize = 4;
const CREATED: usize = 5;
const START: usize = 6;
const END: usize = 7;
const VALUE: usize = 8;

impl<R: BufRead> Parser<'_, R> {
    pub(super) fn record(&mut self, e: &BytesStart<'_>, empty: bool, offset: u64) -> Res<()> {
        let children = if empty {
            Children::Childless
        } else {
            Children::InXml
        };
        self.record_from(RawAttributes::new(e.attributes_raw()), children, offset)
    }

    /// A record from the attributes of its start tag, raw, and its children.
    pub(super) fn record_from<'x>(
        &mut self,
        attrs: impl Iterator<Item = (&'x [u8], &'x [u8])>,
        children: Children<'_>,
        offset: u64,
    ) -> Res<()> {
        // The decoded values are lent from here while `self` reads on.
        let mut recent = std::mem::take(&mut self.record.recent);
        let read = self.record_with(attrs, children, offset, &mut recent);
        self.record.recent = recent;
        read
    }

    fn record_with<'x>(
        &mut self,
        attrs: impl Iterator<Item = (&'x [u8], &'x [u8])>,
        children: Children<'_>,
        offset: u64,
        recent: &mut [Recent; 5],
    ) -> Res<()> {
        // Attribute values are borrowed from the tag's buffer, which stays
        // untouched while children are read into another one.
        let mut raw: [Option<&[u8]>; 9] = [None; 9];
        for ((key, value), count) in attrs.zip(1..) {
            self.attribute_held(count, value.len(), offset)?;
            let slot = match key {
                b"type" => KIND,
                b"sourceName" => SOURCE,
                b"sourceVersion" => SOURCE_VERSION,
                b"device" => DEVICE,
                b"unit" => UNIT,
                b"creationDate" => CREATED,
                b"startDate" => START,
                b"endDate" => END,
                b"value" => VALUE,
                _ => continue,
            };
            raw[slot] = Some(value);
        }
        let mut repaired = 0;
        let mut present = [false; 5];
        for slot in [KIND, SOURCE, SOURCE_VERSION, DEVICE, UNIT] {
            let Some(bytes) = raw[slot] else { continue };
            present[slot] = true;
            let (pointer, key) = match slot {
                DEVICE => device_key(bytes),
                _ => (false, bytes),
            };
            let last = &mut recent[slot];
            if last.pointer != pointer || last.raw != key {
                let (t, n) = decode_cow(bytes)
                    .map_err(|err| self_text_error(&self.path, offset, "Record", err))?;
                last.text.clear();
                last.text.push_str(match slot {
                    DEVICE => strip_device_pointer(&t),
                    _ => &t,
                });
                last.raw.clear();
                last.raw.extend_from_slice(key);
                last.pointer = pointer;
                last.repaired = n;
            }
            repaired += last.repaired;
        }
        self.stats.repaired_chars += u64::from(repaired);
        let text = |slot: usize| present[slot].then(|| recent[slot].text.as_str());
        // Dates are ASCII by format: parsed from the bytes, no decoding.
        let start = raw[START].and_then(|b| Timestamp::parse_bytes_near(b, &mut self.record.day));
        self.record.metadata_len = 0;
        self.record.beats.clear();
        self.record.count = 0;
        match children {
            Children::Childless => {}
            Children::InXml => self.record_children(offset, start)?,
            Children::Metadata {
                element,
                pairs,
                entries,
            } => {
                // No children bound to hold here: the lane takes at most 64.
                for entry in entries {
                    let attributes = pairs[entry.pairs.clone()].iter().map(|p| p.of(element));
                    self.metadata_entry(attributes, offset, offset + entry.at as u64)?;
                }
            }
        }
        let Some(kind) = text(KIND) else {
            return self.skip(SkipReason::MissingAttribute, "Record", offset, "type");
        };
        let end = raw[END].and_then(|b| Timestamp::parse_bytes_near(b, &mut self.record.day));
        let (Some(start), Some(end)) = (start, end) else {
            fn lossy(b: Option<&[u8]>) -> Option<Cow<'_, str>> {
                b.map(String::from_utf8_lossy)
            }
            let detail = format!(
                "{kind} startDate={:?} endDate={:?}",
                lossy(raw[START]),
                lossy(raw[END])
            );
            let kind = Some(kind.to_string());
            return self.skip_typed(SkipReason::InvalidDate, "Record", offset, &detail, kind);
        };
        let value_text = match raw[VALUE] {
            None => None,
            Some(bytes) => {
                let (text, repaired) = decode_cow(bytes)
                    .map_err(|err| self_text_error(&self.path, offset, "Record", err))?;
                self.stats.repaired_chars += u64::from(repaired);
                Some(text)
            }
        };
        let value = match value_text.as_deref() {
            None => Value::None,
            Some(v) => match parse_number(v) {
                Ok(n) => Value::Number(n),
                Err(err) if kind.starts_with("HKQuantityTypeIdentifier") => {
                    let detail = format!("{kind} value={v:?}");
                    let kind = Some(kind.to_string());
                    return self.skip_typed(
                        number_skip_reason(err),
                        "Record",
                        offset,
                        &detail,
                        kind,
                    );
                }
                Err(_) => Value::Text(v),
            },
        };
        let created =
            raw[CREATED].and_then(|b| Timestamp::parse_bytes_near(b, &mut self.record.day));
        if created.is_none()
            && let Some(bytes) = raw[CREATED]
        {
            let detail = format!("{kind} creationDate={:?}", String::from_utf8_lossy(bytes));
            self.skip(SkipReason::InvalidDate, "attribute", offset, &detail)?;
        }
        let r = &self.record;
        let record = Record {
            kind,
            source_name: text(SOURCE).unwrap_or_default(),
            source_version: text(SOURCE_VERSION),
            device: text(DEVICE),
            unit: text(UNIT),
            created,
            start,
            end,
            value,
            metadata: &r.metadata[..r.metadata_len],
            beats: &r.beats,
            offset,
        };
        let flow = self.visitor.record(&record);
        self.flow(flow)
    }

    pub(super) fn record_children(&mut self, offset: u64, start: Option<Timestamp>) -> Res<()> {
        let mut buf = std::mem::take(&mut self.record.buf);
        let read = self.record_children_into(&mut buf, offset, start);
        self.record.buf = buf;
        read
    }

    fn record_children_into(
        &mut self,
        buf: &mut Vec<u8>,
        offset: u64,
        start: Option<Timestamp>,
    ) -> Res<()> {
        loop {
            let (event, at) = self.next_child(buf, "Record")?;
            match event {
                Event::Empty(e) => self.record_child(&e, true, offset, start, at)?,
                Event::Start(e) => self.record_child(&e, false, offset, start, at)?,
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(self.truncated("Record")),
                _ => {}
            }
        }
    }

    /// The next event inside a record, each element counted as one more
    /// of its children (heartbeats included).
    fn next_child<'b>(&mut self, buf: &'b mut Vec<u8>, inside: &str) -> Res<(Event<'b>, u64)> {
        let (event, at) = self.next_held(buf, inside)?;
        if !matches!(event, Event::Start(_) | Event::Empty(_)) {
            return Ok((event, at));
        }
        self.record.count += 1;
        if self.record.count > MAX_RECORD_CHILDREN {
            return Err(self.over(
                at,
                format!("a Record with more than {MAX_RECORD_CHILDREN} children"),
            ));
        }
        Ok((event, at))
    }

    pub(super) fn record_child(
        &mut self,
        e: &BytesStart<'_>,
        empty: bool,
        offset: u64,
        start: Option<Timestamp>,
        at: u64,
    ) -> Res<()> {
        match e.name().as_ref() {
            b"MetadataEntry" => {
                let mut attributes = e.attributes();
                attributes.with_checks(false);
                let attributes = attributes.flatten().map(|a| (a.key.0, a.value));
                self.metadata_entry(attributes, offset, at)?;
                self.skip_subtree(empty)
            }
            b"HeartRateVariabilityMetadataList" if !empty => self.beats(offset, start),
            b"HeartRateVariabilityMetadataList" => Ok(()),
            other => {
                self.unknown(other, at)?;
                self.skip_subtree(empty)
            }
        }
    }

    /// A `MetadataEntry` of the record at `offset`, from its attributes (the
    /// entry's tag starts at byte `at`), into the next reused slot.
    fn metadata_entry<'v>(
        &mut self,
        attributes: impl Iterator<Item = (&'v [u8], impl AsRef<[u8]>)>,
        offset: u64,
        at: u64,
    ) -> Res<()> {
        let r = &mut self.record;
        if r.metadata_len == r.metadata.len() {
            r.metadata.push(Meta {
                key: String::new(),
                value: String::new(),
            });
        }
        let slot = r.metadata_len;
        r.metadata_len += 1;
        let (mut key, mut value) = (
            std::mem::take(&mut r.metadata[slot].key),
            std::mem::take(&mut r.metadata[slot].value),
        );
        key.clear();
        value.clear();
        for ((name, raw), count) in attributes.zip(1..) {
            let raw = raw.as_ref();
            self.attribute_held(count, raw.len(), at)?;
            let target = match name {
                b"key" => &mut key,
                b"value" => &mut value,
                _ => continue,
            };
            let repaired = decode_into(raw, target)
                .map_err(|err| self_text_error(&self.path, offset, "MetadataEntry", err))?;
            self.stats.repaired_chars += u64::from(repaired);
        }
        self.record.metadata[slot] = Meta { key, value };
        Ok(())
    }

    /// `InstantaneousBeatsPerMinute` times are local times of day; they are
    /// placed on the record's local date, moving to the next day when the
    /// clock wraps past midnight.
    pub(super) fn beats(&mut self, offset: u64, start: Option<Timestamp>) -> Res<()> {
        let mut buf = Vec::new();
        let mut reference_ms = start.map(|s| s.local_secs() * 1000);
        let mut day_shift_ms = 0i64;
        let mut hour_shift_ms: Option<i64> = None;
        loop {
            let (event, at) = self.next_child(&mut buf, "HeartRateVariabilityMetadataList")?;
            let (e, empty) = match event {
                Event::Empty(e) => (e, true),
                Event::Start(e) => (e, false),
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(self.truncated("HeartRateVariabilityMetadataList")),
                _ => continue,
            };
            if e.name().as_ref() != b"InstantaneousBeatsPerMinute" {
                self.unknown(e.name().as_ref(), at)?;
                self.skip_subtree(empty)?;
                continue;
            }
            let bpm = self.attr(&e, b"bpm", at)?;
            let time = self.attr(&e, b"time", at)?;
            self.skip_subtree(empty)?;
            let bpm = bpm.as_deref().and_then(|b| parse_number(b).ok());
            let tod = time.as_deref().and_then(parse_time_of_day);
            let (Some(bpm), Some(tod), Some(start), Some(reference)) =
                (bpm, tod, start, reference_ms)
            else {
                let detail = format!("bpm={bpm:?} time={time:?}");
                self.skip(
                    SkipReason::InvalidBeat,
                    "InstantaneousBeatsPerMinute",
                    offset,
                    &detail,
                )?;
                continue;
            };
            let midnight_ms = start.local_day() * 86_400_000;
            let mut local_ms = midnight_ms + day_shift_ms + hour_shift_ms.unwrap_or(0) + tod;
            if local_ms + 12 * 3_600_000 < reference {
                day_shift_ms += 86_400_000;
                local_ms += 86_400_000;
            }
            // Some exports write the beats' clock an hour off the record's
            // (a DST quirk); the beats belong just after startDate, so the
            // first one decides whether the whole list is shifted.
            if hour_shift_ms.is_none() {
                let delta = local_ms - start.local_secs() * 1000;
                let shift = [-3_600_000, 3_600_000]
                    .into_iter()
                    .find(|h| (delta + h).abs() <= 10 * 60_000)
                    .filter(|_| delta.abs() > 10 * 60_000)
                    .unwrap_or(0);
                hour_shift_ms = Some(shift);
                local_ms += shift;
            }
            reference_ms = Some(local_ms);
            self.record.beats.push(Beat {
                bpm,
                at_ms: local_ms - i64::from(start.offset_min) * 60_000,
            });
        }
    }
}
