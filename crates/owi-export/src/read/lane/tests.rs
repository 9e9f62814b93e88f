//! The lane against quick-xml alone: the same documents read both ways.

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
        .map(|entry| {
            assert!(s[entry.at..].starts_with("<MetadataEntry"));
            attrs(entry.pairs.clone())
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

/// Everything a read hands over, in order, and how it ended; it stops
/// the read, or cancels it, after so many records when asked.
#[derive(Default)]
struct Log {
    seen: Vec<String>,
    records: usize,
    stop_after: Option<usize>,
    cancel_after: Option<(usize, CancelToken)>,
}

impl Visitor for Log {
    fn header(&mut self, header: &Header) -> ControlFlow<()> {
        self.seen.push(format!("{header:?}"));
        ControlFlow::Continue(())
    }
    fn record(&mut self, record: &Record<'_>) -> ControlFlow<()> {
        self.seen.push(format!("{record:?}"));
        self.records += 1;
        if let Some((n, token)) = &self.cancel_after
            && self.records == *n
        {
            token.cancel();
        }
        match self.stop_after {
            Some(n) if self.records >= n => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
    fn workout(&mut self, workout: &Workout) -> ControlFlow<()> {
        self.seen.push(format!("{workout:?}"));
        ControlFlow::Continue(())
    }
    fn skip(&mut self, skip: &Skip) -> ControlFlow<()> {
        self.seen.push(format!("{skip:?}"));
        ControlFlow::Continue(())
    }
    fn extent(&mut self, name: &[u8], start: u64, end: u64) -> ControlFlow<()> {
        let name = String::from_utf8_lossy(name);
        self.seen.push(format!("{name} {start}..{end}"));
        ControlFlow::Continue(())
    }
}

/// How a read is ended early, if it is: stopped by the visitor or
/// cancelled, after so many records.
#[derive(Debug, Clone, Copy)]
enum End {
    Whole,
    Stop(usize),
    Cancel(usize),
}

/// The log of a read of `xml`, with the lane or without, and how many
/// records the lane read.
fn read(xml: &[u8], lane: bool, end: End) -> (Vec<String>, u64) {
    LANED.with(|n| n.set(0));
    let token = CancelToken::new();
    let mut log = Log::default();
    match end {
        End::Whole => {}
        End::Stop(n) => log.stop_after = Some(n),
        End::Cancel(n) => log.cancel_after = Some((n, token.clone())),
    }
    let stream = Box::new(Cursor::new(xml.to_vec()));
    let path = Path::new("export.xml");
    let size = xml.len() as u64;
    let options = ReadOptions {
        cancel: Some(&token),
        ..ReadOptions::default()
    };
    let ended = read_stream(stream, path, size, None, &mut log, options, lane);
    log.seen.push(match ended {
        Ok(report) => format!("{report:?}"),
        Err(failure) => format!("{} {:?}", failure.error, failure.stats),
    });
    (log.seen, LANED.with(Cell::get))
}

/// Whether the lane should take a piece.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Lane,
    Other,
}

/// One top-level piece of a document: mostly records as Apple writes
/// them, with the variations XML allows and some it does not.
fn piece() -> impl Strategy<Value = (String, Kind)> {
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
        Just("a/b>c"),
        Just("oops"),
    ];
    let space = prop_oneof![Just(" "), Just("\n   "), Just("\t"), Just("  ")];
    let after = prop_oneof![Just("\n "), Just(""), Just(" "), Just("\r\n  ")];
    let quote = prop_oneof![Just('"'), Just('\'')];
    let equals = prop_oneof![Just("="), Just(" = "), Just("\n=\t")];
    let record = (
        date.clone(),
        date,
        value,
        (space, after, quote, equals),
        any::<u16>(),
    )
        .prop_map(|(start, end, value, (sp, after, q, eq), bits)| {
            let kind = match bits % 4 {
                0 => "HKQuantityTypeIdentifierHeartRate",
                1 => "HKCategoryTypeIdentifierSleepAnalysis",
                2 => "HKQuantityTypeIdentifierStepCount",
                _ => "",
            };
            let kind = if kind.is_empty() {
                String::new()
            } else {
                format!("{sp}type{eq}{q}{kind}{q}")
            };
            let device = if bits & 8 != 0 {
                format!("{sp}device={q}&lt;&lt;HKDevice: 0x{bits:x}&gt;, name:Watch&gt;{q}")
            } else {
                String::new()
            };
            let entries = usize::from(bits >> 8) % 6;
            let close = match (bits >> 4) % 4 {
                0 | 1 if entries == 0 => "/>".to_string(),
                2 if entries == 0 => " />".to_string(),
                _ => {
                    let entry = |n| {
                        format!(
                            "<MetadataEntry{sp}key{eq}{q}HKMetadataKey{n}{q} \
                             value={q}&lt;{n}&gt;/{q}/>{after}"
                        )
                    };
                    let entries: String = (0..entries).map(entry).collect();
                    format!(">{after}{entries}</Record>")
                }
            };
            let record = format!(
                "<Record{kind}{sp}sourceName={q}Watch{q}{device}{sp}unit={q}count/min{q}\
                 {sp}creationDate={q}{end}{q} startDate={q}{start}{q}{sp}endDate={q}{end}{q}\
                 {sp}value{eq}{q}{value}{q}{close}{after}"
            );
            (record, Kind::Lane)
        });
    let other = |s: &str| Just((s.to_string(), Kind::Other));
    prop_oneof![
        24 => record,
        1 => other("<!-- a <Record type=\"x\"/> in a comment -->\n "),
        1 => other("text &amp; more\n "),
        1 => other("<Record type=A sourceName=\"W\"/>\n "),
        1 => other("<Record \x0Ctype=\"HKQuantityTypeIdentifierHeartRate\" value=\"1\"/>\n "),
        1 => other("<Record type=\"HKQuantityTypeIdentifierHeartRate\">\
                    <HeartRateVariabilityMetadataList/></Record>\n "),
        1 => other(
            "<Workout workoutActivityType=\"HKWorkoutActivityTypeRunning\" \
             startDate=\"2024-03-01 08:00:00 +0100\" endDate=\"2024-03-01 09:00:00 +0100\"/>\n "
        ),
    ]
}

/// A record whose child fails: the lane has taken the whole record
/// when the error is found, so the failure counts its bytes, where
/// quick-xml counts those up to the failing child.
const CHILD_FAILS: &str =
    "<Record type=\"A\"><MetadataEntry key=\"&bogus;\" value=\"1\"/></Record>\n ";

/// A failure's log line with its byte count left out.
fn without_bytes(ended: &str) -> String {
    let Some(at) = ended.find("bytes: ") else {
        return ended.to_string();
    };
    let digits = ended[at + 7..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    format!("{}bytes: _{}", &ended[..at], &ended[at + 7 + digits..])
}

/// A piece that ends the read with an error where it lies.
fn failing() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("<Record type=\"&bogus;\" value=\"1\"/>\n "),
        Just(CHILD_FAILS),
        Just("</Record>\n "),
        Just("a & b\n "),
    ]
}

/// `pieces` over and over, then `last` (a piece that fails, say).
fn document(padding: usize, pieces: &[(String, Kind)], last: &str) -> Vec<u8> {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str("<HealthData locale=\"en_US\">\n");
    xml.push_str(&" ".repeat(padding));
    // Enough copies to cross the read-ahead's buffers several times.
    while xml.len() < 700_000 {
        for (piece, _) in pieces {
            xml.push_str(piece);
        }
    }
    xml.push_str(last);
    xml.push_str("</HealthData>\n");
    xml.into_bytes()
}

/// Whether the lane must take some record of a document of `pieces`:
/// one after text (or the root's start) with markup next.
fn some_record_fits(pieces: &[(String, Kind)]) -> bool {
    let n = pieces.len();
    (0..n).any(|i| {
        let after_text = i == 0 || !pieces[i - 1].0.ends_with('>');
        let markup_next = pieces[(i + 1) % n].0.starts_with('<');
        pieces[i].1 == Kind::Lane && after_text && markup_next
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the document, wherever it is cut and however the read
    /// ends, the lane hands over exactly what quick-xml alone does, at
    /// the same offsets, and fails or stops in the same place.
    #[test]
    fn the_lane_reads_what_quick_xml_reads(
        padding in 0usize..70_000,
        pieces in proptest::collection::vec(piece(), 1..40),
        last in proptest::option::of(failing()),
        cut in proptest::option::of(0.0f64..1.0),
        end in prop_oneof![
            2 => Just(End::Whole),
            1 => (1usize..3_000).prop_map(End::Stop),
            1 => (1usize..3_000).prop_map(End::Cancel),
        ],
    ) {
        let mut xml = document(padding, &pieces, last.unwrap_or_default());
        if let Some(cut) = cut {
            xml.truncate((xml.len() as f64 * cut) as usize);
        }
        let (mut with, laned) = read(&xml, true, end);
        let (mut without, none) = read(&xml, false, end);
        prop_assert_eq!(none, 0);
        if last == Some(CHILD_FAILS) {
            for log in [&mut with, &mut without] {
                if let Some(ended) = log.last_mut() {
                    *ended = without_bytes(ended);
                }
            }
        }
        prop_assert_eq!(with.len(), without.len());
        for (a, b) in with.iter().zip(&without) {
            prop_assert_eq!(a, b);
        }
        if cut.is_none() && matches!(end, End::Whole) && some_record_fits(&pieces) {
            prop_assert!(laned > 0);
        }
    }
}

#[test]
fn a_cancelled_or_stopped_read_ends_where_quick_xml_s_would() {
    let record = "<Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"W\" \
                  startDate=\"2024-03-01 08:00:00 +0100\" \
                  endDate=\"2024-03-01 08:00:00 +0100\" value=\"70\"/>\n ";
    let xml = String::from_utf8(document(0, &[(record.to_string(), Kind::Lane)], ""))
        .expect("a document is text");
    // A comment before the first record moves the checks from the
    // whitespace between records to the records themselves.
    let shifted = xml.replacen("<Record", "<!----><Record", 1);
    for xml in [xml, shifted] {
        // Past the first 64 KiB, which the prolog's read takes whole, a
        // cancelled read's byte count shows where its check fell.
        let ends = [300, 1_000, 2_001, 3_500].map(End::Cancel);
        for end in ends.into_iter().chain([End::Stop(300)]) {
            let (with, laned) = read(xml.as_bytes(), true, end);
            let (without, _) = read(xml.as_bytes(), false, end);
            assert!(laned > 0);
            assert_eq!(with.last(), without.last(), "{end:?}");
            assert_eq!(with.len(), without.len(), "{end:?}");
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
    let pieces = [record, with].map(|p| (p.to_string(), Kind::Lane));
    let xml = document(0, &pieces, "");
    let (log, laned) = read(&xml, true, End::Whole);
    let records = log
        .iter()
        .filter(|seen| seen.starts_with("Record {"))
        .count();
    let entries = log
        .iter()
        .filter(|seen| seen.contains("HeartRateMotionContext"));
    assert_eq!(entries.count(), records / 2);
    assert!(records > 3_000, "{records}");
    assert!(
        log.last().is_some_and(|end| end.starts_with("Report")),
        "{:?}",
        log.last()
    );
    // All but those across a buffer's end.
    assert!(laned as usize + 8 >= records, "{laned} of {records}");
}
