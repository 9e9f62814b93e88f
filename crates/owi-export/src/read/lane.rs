//! The fast lane: a run of records read straight from the parser's input
//! buffer, without quick-xml's events.
//!
//! Nearly every byte of an export is a `Record`, self-closing or with a
//! `MetadataEntry` or two, and quick-xml spends most of its time on them
//! with events between: whitespace text, the tag scanned for its end and
//! copied out, each child the same, the end tag. Here a record is scanned
//! once, strictly; anything the lane is not sure of (another child, an
//! element not wholly in the buffer, a stray character, a comment) goes back
//! to quick-xml, which then reads it exactly as it would have.
//!
//! This is only sound where quick-xml expects markup next and has nothing of
//! its own in hand: right after a text event that ended at a `<` (its
//! `InsideMarkup` state with the `<` not consumed yet, as 0.41 leaves it;
//! the tests below fail should a release change that). The lane then
//! leaves the input at the next `<` again, so quick-xml's state stays true,
//! and keeps its own count of the bytes it took so offsets stay those of
//! the file.

use std::ops::Range;

use super::record::Children;
use super::*;

/// Children of one record the lane takes; more go to quick-xml.
const MAX_LANE_CHILDREN: usize = 64;
/// Attributes of one tag the lane takes, well under [`MAX_ATTRIBUTES`], so
/// that a record the lane takes never meets a bound (its values cannot
/// either: they lie in a buffer smaller than [`MAX_ATTRIBUTE_BYTES`]).
const MAX_LANE_ATTRIBUTES: usize = 64;

/// An attribute the lane read: its name and raw value, as places in the
/// element.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pair {
    name: (u32, u32),
    value: (u32, u32),
}

impl Pair {
    pub(super) fn of(self, element: &[u8]) -> (&[u8], &[u8]) {
        let at = |(start, end): (u32, u32)| &element[start as usize..end as usize];
        (at(self.name), at(self.value))
    }
}

/// A `MetadataEntry` the lane read: where its `<` is in the element, and
/// which pairs are its attributes.
pub(super) type Entry = (usize, Range<usize>);

impl<R: BufRead> Parser<'_, R> {
    /// Reads the records at the front of the input, as many as it can.
    /// Call only right after a text event at the top level.
    pub(super) fn record_lane(&mut self, seen: &mut u64, tracker: &mut Tracker<'_>) -> Res<()> {
        let mut lane = std::mem::take(&mut self.record.lane);
        let read = self.record_lane_with(&mut lane, seen, tracker);
        self.record.lane = lane;
        read
    }

    fn record_lane_with(
        &mut self,
        lane: &mut Lane,
        seen: &mut u64,
        tracker: &mut Tracker<'_>,
    ) -> Res<()> {
        loop {
            let at = self.offset();
            let found = {
                // Only what is already buffered: an element across the
                // buffer's end is quick-xml's to read.
                let Ok(available) = self.xml.get_mut().fill_buf() else {
                    return Ok(());
                };
                let Some(found) = record_element(available, &mut lane.pairs, &mut lane.entries)
                else {
                    return Ok(());
                };
                lane.element.clear();
                lane.element.extend_from_slice(&available[..found.len]);
                found
            };
            self.xml.get_mut().consume(found.next);
            self.base += found.next as u64;
            depth_held(&self.path, self.depth + 1, at)?;
            if !self.header_sent {
                self.send_header()?;
            }
            let Lane {
                element,
                pairs,
                entries,
            } = &*lane;
            let attrs = pairs[found.pairs].iter().map(|p| p.of(element));
            let children = match found.empty {
                true => Children::None,
                false => Children::Metadata {
                    element,
                    pairs,
                    entries,
                },
            };
            self.record_from(attrs, children, at)?;
            self.stats.records += 1;
            let flow = self.visitor.extent(b"Record", at, at + found.len as u64);
            self.flow(flow)?;
            #[cfg(test)]
            tests::LANED.with(|n| n.set(n.get() + 1));
            *seen += 1;
            if seen.is_multiple_of(CHECK_EVERY) {
                self.checkpoint(tracker)?;
            }
        }
    }
}

/// The lane's buffers, reused from record to record.
#[derive(Default)]
pub(super) struct Lane {
    /// The record's bytes, copied out of the input buffer.
    element: Vec<u8>,
    pairs: Vec<Pair>,
    entries: Vec<Entry>,
}

/// A record the lane can take at the front of a buffer.
#[derive(Debug, PartialEq)]
struct Found {
    /// Which pairs are its attributes.
    pairs: Range<usize>,
    /// Whether it is one self-closing tag.
    empty: bool,
    /// Its length, `<` to the last `>`.
    len: usize,
    /// Where the next `<` is, after the whitespace that follows.
    next: usize,
}

/// A `Record`, self-closing or with only self-closing `MetadataEntry`
/// children, then whitespace and `<`, at the front of `buf`; the attributes
/// go to `pairs`, the entries to `entries`. `None` for anything else: any
/// doubt sends the bytes to quick-xml.
fn record_element(buf: &[u8], pairs: &mut Vec<Pair>, entries: &mut Vec<Entry>) -> Option<Found> {
    // A tag's places are kept in u32; a buffer is far smaller.
    if buf.len() > u32::MAX as usize {
        return None;
    }
    pairs.clear();
    entries.clear();
    let record = tag(buf, 0, b"Record", pairs)?;
    let mut len = record.end;
    if !record.empty {
        loop {
            len += whitespace(&buf[len..]);
            if buf[len..].starts_with(b"</Record>") {
                len += b"</Record>".len();
                break;
            }
            if entries.len() == MAX_LANE_CHILDREN {
                return None;
            }
            let entry = tag(buf, len, b"MetadataEntry", pairs).filter(|t| t.empty)?;
            entries.push((len, entry.pairs));
            len = entry.end;
        }
    }
    let next = len + whitespace(&buf[len..]);
    (buf.get(next) == Some(&b'<')).then_some(Found {
        pairs: record.pairs,
        empty: record.empty,
        len,
        next,
    })
}

/// A start tag read by [`tag`].
struct Tag {
    /// Which pairs are its attributes.
    pairs: Range<usize>,
    /// Just past its `>`.
    end: usize,
    /// `/>`.
    empty: bool,
}

/// `<name a="…" b='…'>` or `/>` at `buf[at..]`, strictly; its attributes
/// are added to `pairs`.
fn tag(buf: &[u8], at: usize, name: &[u8], pairs: &mut Vec<Pair>) -> Option<Tag> {
    let open = at + 1 + name.len();
    if buf.get(at) != Some(&b'<') || buf.get(at + 1..open)? != name {
        return None;
    }
    if !is_space(*buf.get(open)?) {
        return None;
    }
    let first = pairs.len();
    let mut i = open;
    loop {
        let before = i;
        i += whitespace(&buf[i..]);
        match *buf.get(i)? {
            b'/' | b'>' => break,
            _ if i == before => return None, // attributes need space between them
            _ => {}
        }
        if pairs.len() - first == MAX_LANE_ATTRIBUTES {
            return None;
        }
        let name_len = buf[i..].iter().position(|&b| !NAME[usize::from(b)])?;
        if name_len == 0 {
            return None;
        }
        let name = (i as u32, (i + name_len) as u32);
        i += name_len;
        i += whitespace(&buf[i..]);
        if *buf.get(i)? != b'=' {
            return None;
        }
        i += 1;
        i += whitespace(&buf[i..]);
        let quote = *buf.get(i)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let len = memchr::memchr2(quote, b'<', buf.get(i + 1..)?)?;
        if buf[i + 1 + len] != quote {
            return None;
        }
        let value = ((i + 1) as u32, (i + 1 + len) as u32);
        pairs.push(Pair { name, value });
        i += len + 2;
    }
    let (empty, end) = match buf[i] {
        b'>' => (false, i + 1),
        _ if buf.get(i + 1) == Some(&b'>') => (true, i + 2),
        _ => return None,
    };
    Some(Tag {
        pairs: first..pairs.len(),
        end,
        empty,
    })
}

/// Bytes of an attribute's name as the lane takes it: anything but
/// whitespace, `=`, `/`, `<`, `>` and quotes.
const NAME: [bool; 256] = {
    let mut table = [true; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = !is_space(b) && !matches!(b, b'=' | b'/' | b'<' | b'>' | b'"' | b'\'');
        i += 1;
    }
    table
};

const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn whitespace(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(bytes.len())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use proptest::prelude::*;

    use super::*;

    thread_local! {
        /// Records the lane read on this thread, so a test can tell it ran.
        pub(super) static LANED: Cell<u64> = const { Cell::new(0) };
    }

    /// The attributes, the element, the entries' attributes and what
    /// follows, of a record the lane takes from the front of `s`.
    fn found(s: &str) -> Option<(String, String, Vec<String>, String)> {
        let (mut pairs, mut entries) = (Vec::new(), Vec::new());
        let f = record_element(s.as_bytes(), &mut pairs, &mut entries)?;
        assert_eq!(f.empty, entries.is_empty() && s[..f.len].ends_with("/>"));
        let element = &s.as_bytes()[..f.len];
        let attrs = |of: Range<usize>| {
            let pairs = pairs[of].iter().map(|p| p.of(element));
            pairs
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(v)
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let entries = entries
            .iter()
            .map(|(at, of)| {
                assert!(s[*at..].starts_with("<MetadataEntry"));
                attrs(of.clone())
            })
            .collect();
        Some((
            attrs(f.pairs),
            s[..f.len].to_string(),
            entries,
            s[f.next..].to_string(),
        ))
    }

    #[test]
    fn a_whole_record_and_the_next_markup_are_taken() {
        let (attrs, tag, entries, rest) =
            found("<Record type=\"A\" value='1&gt;'  />\n  <Record").expect("taken");
        assert_eq!(attrs, "type=A value=1&gt;");
        assert_eq!(tag, "<Record type=\"A\" value='1&gt;'  />");
        assert!(entries.is_empty());
        assert_eq!(rest, "<Record");
        let (attrs, _, _, rest) = found("<Record\n a = \"x\"/></HealthData>").expect("taken");
        assert_eq!(attrs, "a=x");
        assert_eq!(rest, "</HealthData>");
        let with = "<Record a=\"1\">\n  <MetadataEntry key=\"k\" value=\"v\"/>\n  \
                    <MetadataEntry\tkey='j' value=\"w\" />\n </Record>\n <Workout";
        let (attrs, tag, entries, rest) = found(with).expect("taken");
        assert_eq!(attrs, "a=1");
        assert!(tag.ends_with("</Record>"));
        assert_eq!(entries, ["key=k value=v", "key=j value=w"]);
        assert_eq!(rest, "<Workout");
        let (_, _, entries, _) = found("<Record a=\"1\"></Record><R").expect("taken");
        assert!(entries.is_empty());
    }

    #[test]
    fn anything_doubtful_is_left_to_quick_xml() {
        for s in [
            "<Record type=\"A\">\n <MetadataEntry/></Record><R", // no attributes
            "<Record type=\"A\"><HeartRateVariabilityMetadataList/></Record><R", // beats
            "<Record type=\"A\"><MetadataEntry k=\"v\"></MetadataEntry></Record><R",
            "<Record type=\"A\"><MetadataEntry k=\"v\"/></Record ><R", // space in the end tag
            "<Record type=\"A\"><MetadataEntry k=\"v\"/>x</Record><R", // text inside
            "<Record type=\"A\"><MetadataEntry k=\"v\"/></Record",     // cut in the end tag
            "<Record type=\"A\"/>\n",                                  // next markup not in hand
            "<Record type=\"A\"/>text<Record",                         // text between
            "<Record type=\"A\"/>&amp;<Record",                        // a reference between
            "<Record type=\"A",                                        // cut by the buffer
            "<Record type=\"A\" /",                                    // cut before `>`
            "<Record type=\"A\"b=\"B\"/><R",                           // no space between
            "<Record type=A/><R",                                      // unquoted
            "<Record type=\"a<b\"/><R",                                // `<` in a value
            "<Record =\"A\"/><R",                                      // no name
            "<Record type/><R",                                        // no value
            "<Records type=\"A\"/><R",                                 // another element
            "<Record/><R",                                             // no attributes
            "<Record type=\"A\"/ ><R",                                 // `/` then space
            "<!-- <Record type=\"A\"/> --><R",                         // a comment
        ] {
            assert_eq!(found(s), None, "{s}");
        }
    }

    /// Everything a read hands over, in order, and how it ended.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Visitor for Log {
        fn header(&mut self, header: &Header) -> ControlFlow<()> {
            self.0.push(format!("{header:?}"));
            ControlFlow::Continue(())
        }
        fn record(&mut self, record: &Record<'_>) -> ControlFlow<()> {
            self.0.push(format!("{record:?}"));
            ControlFlow::Continue(())
        }
        fn workout(&mut self, workout: &Workout) -> ControlFlow<()> {
            self.0.push(format!("{workout:?}"));
            ControlFlow::Continue(())
        }
        fn skip(&mut self, skip: &Skip) -> ControlFlow<()> {
            self.0.push(format!("{skip:?}"));
            ControlFlow::Continue(())
        }
        fn extent(&mut self, name: &[u8], start: u64, end: u64) -> ControlFlow<()> {
            self.0
                .push(format!("{} {start}..{end}", String::from_utf8_lossy(name)));
            ControlFlow::Continue(())
        }
    }

    /// The log of a read of `xml`, with the lane or without, and how many
    /// records the lane read.
    fn read(xml: &[u8], lane: bool) -> (Vec<String>, u64) {
        LANED.with(|n| n.set(0));
        let mut log = Log::default();
        let stream = Box::new(Cursor::new(xml.to_vec()));
        let path = Path::new("export.xml");
        let size = xml.len() as u64;
        let options = ReadOptions::default();
        let ended = read_stream(stream, path, size, None, &mut log, options, lane);
        log.0.push(match ended {
            Ok(report) => format!("{report:?}"),
            Err(failure) => format!("{} {:?}", failure.error, failure.stats),
        });
        (log.0, LANED.with(Cell::get))
    }

    /// One top-level piece of a document: mostly records as Apple writes
    /// them, with the variations XML allows and some it does not.
    fn piece() -> impl Strategy<Value = String> {
        let date = prop_oneof![
            Just("2024-03-01 08:00:00 +0100"),
            Just("2024-03-01 08:05:00 +0100"),
            Just("not a date"),
        ];
        let value = prop_oneof![
            Just("72"),
            Just("1.5e2"),
            Just("HKCategoryValueSleepAnalysisAsleepCore"),
            Just("&lt;x&gt; &amp; &#65;"),
            Just("oops"),
        ];
        let space = prop_oneof![Just(" "), Just("\n   "), Just("\t"), Just("  ")];
        let after = prop_oneof![Just("\n "), Just(""), Just(" "), Just("\r\n  ")];
        let quote = prop_oneof![Just('"'), Just('\'')];
        let record = (date.clone(), date, value, space, after, quote, any::<u8>()).prop_map(
            |(start, end, value, sp, after, q, bits)| {
                let kind = match bits % 4 {
                    0 => "HKQuantityTypeIdentifierHeartRate",
                    1 => "HKCategoryTypeIdentifierSleepAnalysis",
                    2 => "HKQuantityTypeIdentifierStepCount",
                    _ => "",
                };
                let kind = if kind.is_empty() {
                    String::new()
                } else {
                    format!("{sp}type={q}{kind}{q}")
                };
                let device = if bits & 8 != 0 {
                    format!("{sp}device={q}&lt;&lt;HKDevice: 0x{bits:x}&gt;, name:Watch&gt;{q}")
                } else {
                    String::new()
                };
                let close = match bits >> 5 {
                    0..=3 => "/>".to_string(),
                    4 => " />".to_string(),
                    5 => ">\n </Record>".to_string(),
                    n => {
                        let entry = format!(
                            "<MetadataEntry{sp}key={q}HKMetadataKey{n}{q} value={q}&lt;{n}&gt;{q}/>"
                        );
                        format!(
                            ">\n  {entry}{sp}{}</Record>",
                            entry.repeat(usize::from(n - 5))
                        )
                    }
                };
                format!(
                    "<Record{kind}{sp}sourceName={q}Watch{q}{device}{sp}unit={q}count/min{q}\
                     {sp}creationDate={q}{end}{q} startDate={q}{start}{q}{sp}endDate={q}{end}{q}\
                     {sp}value={q}{value}{q}{close}{after}"
                )
            },
        );
        prop_oneof![
            12 => record,
            1 => Just(
                "<Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"W\" \
                 startDate=\"2024-03-01 08:00:00 +0100\" endDate=\"2024-03-01 08:00:00 +0100\" \
                 value=\"70\">\n  <MetadataEntry key=\"k\" value=\"v\"/>\n </Record>\n "
                    .to_string()
            ),
            1 => Just("<!-- a <Record type=\"x\"/> in a comment -->\n ".to_string()),
            1 => Just("text &amp; more\n ".to_string()),
            1 => Just("<Record type=A sourceName=\"W\"/>\n ".to_string()),
            1 => Just(
                "<Workout workoutActivityType=\"HKWorkoutActivityTypeRunning\" \
                 startDate=\"2024-03-01 08:00:00 +0100\" endDate=\"2024-03-01 09:00:00 +0100\"/>\n "
                    .to_string()
            ),
        ]
    }

    fn document(padding: usize, pieces: &[String]) -> Vec<u8> {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        xml.push_str("<HealthData locale=\"en_US\">\n");
        xml.push_str(&" ".repeat(padding));
        // Enough copies to cross the read-ahead's buffers several times.
        while xml.len() < 700_000 {
            for piece in pieces {
                xml.push_str(piece);
            }
        }
        xml.push_str("</HealthData>\n");
        xml.into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Whatever the document, and wherever it is cut, the lane hands
        /// over exactly what quick-xml alone does, at the same offsets.
        #[test]
        fn the_lane_reads_what_quick_xml_reads(
            padding in 0usize..70_000,
            pieces in proptest::collection::vec(piece(), 1..40),
            cut in proptest::option::of(0.0f64..1.0),
        ) {
            let mut xml = document(padding, &pieces);
            if let Some(cut) = cut {
                xml.truncate((xml.len() as f64 * cut) as usize);
            }
            let (with, _) = read(&xml, true);
            let (without, none) = read(&xml, false);
            prop_assert_eq!(none, 0);
            prop_assert_eq!(with.len(), without.len());
            for (a, b) in with.iter().zip(&without) {
                prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn apple_s_records_take_the_lane() {
        let record = "<Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"W\" \
                      unit=\"count/min\" startDate=\"2024-03-01 08:00:00 +0100\" \
                      endDate=\"2024-03-01 08:00:00 +0100\" value=\"70\"/>\n ";
        let with = "<Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"W\" \
                    unit=\"count/min\" startDate=\"2024-03-01 08:00:00 +0100\" \
                    endDate=\"2024-03-01 08:00:00 +0100\" value=\"70\">\n  \
                    <MetadataEntry key=\"HKMetadataKeyHeartRateMotionContext\" value=\"0\"/>\n \
                    </Record>\n ";
        let xml = document(0, &[record.to_string(), with.to_string()]);
        let records = 2 * (xml.len() - 80) / (record.len() + with.len());
        let (log, laned) = read(&xml, true);
        let entries = log
            .iter()
            .filter(|seen| seen.contains("HeartRateMotionContext"));
        assert_eq!(entries.count(), records / 2);
        assert!(
            log.last().is_some_and(|end| end.starts_with("Report")),
            "{:?}",
            log.last()
        );
        // All but those across a buffer's end and the first, after the root's tag.
        assert!(laned as usize + 8 >= records, "{laned} of {records}");
    }
}
