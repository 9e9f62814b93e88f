//! The GPX reader with and without its lane, and the lane against quick-xml alone.

use std::cell::Cell;

use proptest::prelude::*;

use super::*;

thread_local! {
    /// Track points the lane read on this thread.
    pub(super) static LANED: Cell<u64> = const { Cell::new(0) };
}

#[test]
fn reads_apple_gpx_track_points() {
    let gpx = br#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="Apple Health Export" xmlns="http://www.topografix.com/GPX/1/1">
  <metadata><time>2019-11-07T03:43:52Z</time></metadata>
  <trk><name>Route</name><trkseg>
<trkpt lon="-122.396397" lat="37.781672"><ele>4.076904</ele><time>2019-06-11T22:00:42Z</time><extensions><speed>0.180883</speed><course>206.25</course><hAcc>8.06</hAcc><vAcc>6.42</vAcc></extensions></trkpt>
<trkpt lon="-122.396396" lat="37.781670"><time>2019-06-11T22:00:43Z</time></trkpt>
<trkpt lon="-122.4" lat="95.0"><time>2019-06-11T22:00:44Z</time></trkpt>
<trkpt lon="-122.4" lat="37.7"></trkpt>
  </trkseg></trk>
</gpx>"#;
    let mut points = Vec::new();
    let outcome = read_gpx(gpx, &mut points).expect("valid gpx");
    assert_eq!(
        outcome,
        GpxOutcome {
            points: 2,
            invalid: 2
        }
    );
    assert_eq!(points[0].lat, 37.781672);
    assert_eq!(points[0].speed_mps, Some(0.180883));
    assert_eq!(points[0].elevation_m, Some(4.076904));
    assert_eq!(points[1].at_ms - points[0].at_ms, 1000);
    assert_eq!(points[1].elevation_m, None);
}

#[test]
fn a_value_needing_repair_reads_as_it_did_when_decoded() {
    let gpx = b"<gpx><trk><trkseg><trkpt lon=\"1\" lat=\"2\"><ele>1\x0b2.5</ele>\
<time>2019-06-11T22:00:42Z</time><extensions><speed> 2.5 </speed>\
<course>9\xEF\xBF\xBF0</course></extensions></trkpt></trkseg></trk></gpx>";
    let mut points = Vec::new();
    read_gpx(gpx, &mut points).expect("valid gpx");
    assert_eq!(points.len(), 1);
    assert_eq!(
        points[0].elevation_m,
        Some(12.5),
        "a control character dropped"
    );
    assert_eq!(points[0].speed_mps, Some(2.5), "spaces trimmed");
    assert_eq!(points[0].course_deg, Some(90.0), "U+FFFF dropped");

    let referenced = b"<gpx><trk><trkseg><trkpt lon=\"&#49;\" lat=\"4\x0b5\">\
<time>2019-06-11T22:00:42Z</time></trkpt></trkseg></trk></gpx>";
    let mut points = Vec::new();
    read_gpx(referenced, &mut points).expect("valid gpx");
    let at = points.first().map(|p| (p.lon, p.lat));
    assert_eq!(at, Some((1.0, 45.0)), "attributes decoded as XML says");
}

#[test]
fn broken_gpx_is_an_error() {
    let mut points = Vec::new();
    assert!(read_gpx(b"<gpx><trk></gpx>", &mut points).is_err());
}

/// The fast path reads a number exactly as the decoded path would, or
/// leaves it to that path.
fn agrees_with_std(text: &str) {
    let std = text.trim().parse::<f64>().ok();
    if let Some(fast) = plain_number(text.as_bytes()) {
        let same =
            std.is_some_and(|s| s.to_bits() == fast.to_bits() || s.is_nan() && fast.is_nan());
        assert!(same, "{text:?}: fast {fast:?}, std {std:?}");
    }
    let read = Value::Raw(text.as_bytes()).number().expect("decodes");
    assert_eq!(read.map(f64::to_bits), std.map(f64::to_bits), "{text:?}");
}

#[test]
fn numbers_read_where_they_lie_read_as_std_reads_them() {
    for text in [
        "4.076904",
        " 2.5 ",
        "-122.396397",
        "+1",
        "1.",
        ".5",
        "-.5",
        "1e5",
        "1E-5",
        "1e",
        "e5",
        ".",
        "",
        "-",
        "+",
        "inf",
        "-Infinity",
        "1e400",
        "0x10",
        "1,5",
        "12abc",
        "1_000",
        "00012",
        "\u{0663}",
        "1\u{00A0}",
        "\u{00A0}1",
        "1.7976931348623157e308",
        "4.9e-324",
        "123456789012345678901234567890",
    ] {
        agrees_with_std(text);
    }
}

proptest::proptest! {
    #[test]
    fn any_written_float_reads_as_std_reads_it(bits: u64, digits in "[-+]?[0-9]{0,20}(\\.[0-9]{0,20})?([eE][-+]?[0-9]{1,3})?") {
        let value = f64::from_bits(bits);
        agrees_with_std(&value.to_string());
        agrees_with_std(&format!("{value:e}"));
        agrees_with_std(&digits);
    }
}

/// A track point as Apple writes it.
const APPLE: &[u8] = b"<trkpt lon=\"-122.403149\" lat=\"37.779143\"><ele>30.168904</ele>\
<time>2019-07-22T15:35:54Z</time><extensions><speed>3.471323</speed><course>25.987496</course>\
<hAcc>4.657501</hAcc><vAcc>3.158373</vAcc></extensions></trkpt>";

/// What a read gives, every number to the bit, and how many points the
/// lane read.
fn read(gpx: &[u8], lane: bool) -> (String, u64) {
    LANED.with(|n| n.set(0));
    let mut points = Vec::new();
    let outcome = read_gpx_with(gpx, &mut points, lane);
    let shown = format!("{outcome:?} {points:?}");
    (shown, LANED.with(Cell::get))
}

fn document(points: &[Vec<u8>], cut: Option<usize>) -> Vec<u8> {
    let mut gpx = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\">\n\
<metadata><time>2024-07-18T08:06:53Z</time></metadata><trk><name>R</name><trkseg>\n"
        .to_vec();
    for point in points {
        gpx.extend_from_slice(point);
    }
    gpx.extend_from_slice(b"</trkseg></trk></gpx>\n");
    if let Some(cut) = cut {
        gpx.truncate(cut % (gpx.len() + 1));
    }
    gpx
}

#[test]
fn points_as_apple_writes_them_take_the_lane() {
    let point = [APPLE, b"\n      "].concat();
    let gpx = document(&vec![point; 5], None);
    let (with, laned) = read(&gpx, true);
    assert_eq!(laned, 5);
    assert_eq!(with, read(&gpx, false).0);
    assert!(with.starts_with("Ok(GpxOutcome { points: 5, invalid: 0 })"));

    // The line break some exports have before the extensions.
    let broken = b"<trkpt lon=\"-2.538323\" lat=\"53.252917\"><ele>21.476473</ele><time>2020-07-29T13:51:19Z</time>
      <extensions><speed>1.642115</speed><course>-1.000000</course><hAcc>3.723220</hAcc><vAcc>2.774929</vAcc></extensions></trkpt>
    ";
    let gpx = document(&[broken.to_vec(), broken.to_vec()], None);
    let (with, laned) = read(&gpx, true);
    assert_eq!(laned, 2);
    assert_eq!(with, read(&gpx, false).0);
    assert!(with.starts_with("Ok(GpxOutcome { points: 2, invalid: 0 })"));

    // Back to back, and one quick-xml reads (a comment in it) between.
    let odd = b"<trkpt lon=\"1\" lat=\"2\"><!-- c --><time>2019-07-22T15:35:59Z</time></trkpt>";
    let gpx = document(
        &[APPLE.to_vec(), APPLE.to_vec(), odd.to_vec(), APPLE.to_vec()],
        None,
    );
    let (with, laned) = read(&gpx, true);
    assert_eq!(laned, 3);
    assert_eq!(with, read(&gpx, false).0);
}

#[test]
fn a_point_the_lane_refuses_is_read_by_quick_xml_from_its_start() {
    // A reference: quick-xml hands it over as an event of its own, which
    // the reader passes over, so the time is missing.
    let unknown = b"<trkpt lon=\"1\" lat=\"2\"><time>&bogus;</time></trkpt>\n";
    let gpx = document(&[APPLE.to_vec(), b"\n".to_vec(), unknown.to_vec()], None);
    let (with, laned) = read(&gpx, true);
    assert_eq!(laned, 1);
    assert!(
        with.starts_with("Ok(GpxOutcome { points: 1, invalid: 1 })"),
        "{with}"
    );
    assert_eq!(with, read(&gpx, false).0);

    // quick-xml's error after the lane's points names the file's byte.
    let broken = document(
        &[APPLE.to_vec(), b"\n".to_vec(), b"<trkpt></ele>".to_vec()],
        None,
    );
    let (with, _) = read(&broken, true);
    let at = broken.windows(6).rposition(|w| w == b"</ele>").unwrap_or(0);
    assert!(with.contains(&format!("at byte {at}:")), "{with}");
    assert_eq!(with, read(&broken, false).0);
}

/// Pieces of track points: in the lane's form (values it must read as
/// quick-xml's events are read), and odd ones it must leave to quick-xml
/// or read the same way all the same.
const OPENS: &[&[u8]] = &[
    b"<trkpt lon=\"-122.4\" lat=\"37.7\">",
    b"<trkpt lat='37.7' lon='-122.4'>",
    b"<trkpt\n lon=\"1\"\tlat=\"2\" >",
    b"<trkpt lon=\"1\" lat=\"95\">",
    b"<trkpt lat=\"1\" lat=\"3\" lon=\" 4 \">",
    b"<trkpt lon=\"1\x0b\" lat=\"2\xff\">",
    b"<trkpt lon=\"1\" lat=\"2\" hdop=\"3\">",
    b"<trkpt lon=\"1\" lat=\"nan\">",
    b"<trkpt>",
];
const ODD_OPENS: &[&[u8]] = &[
    b"<trkpt lon=\"&#49;\" lat=\"2\">",
    b"<trkpt lon=\"1\" lat=\"2\" x:y=\"3\">",
    b"<trkpt lon=\"1\"lat=\"2\">",
    b"<trkpt lon=\"1\" lat=\"2\"/>",
    b"<trkpt lon=1 lat=2>",
    b"<trkpt lon = \"1\" lat=\"2\">",
    b"<g:trkpt lon=\"1\" lat=\"2\">",
    b"<trkptx lon=\"1\" lat=\"2\">",
];
const FIELDS: &[&[u8]] = &[
    b"<ele>30.1</ele>",
    b"<time>2019-07-22T15:35:54Z</time>",
    b"<time>2019-07-22T15:35:56Z</time>",
    b"<time> 2019-07-22T15:35:55Z </time>",
    b"<time>2019-07-22T15:35:54+00:00</time>",
    b"<time>bad</time>",
    b"<time>2019-07-22T15:35:5\xff</time>",
    b"<ele></ele>",
    b"<ele>1\x0b2</ele>",
    b"<speed>3.4</speed>",
    b"<course>nan</course>",
    b"<hAcc>4.6</hAcc>",
    b"<vAcc>-0.0</vAcc>",
    b"<ele>\xef\xbf\xbf1</ele>",
    b"<extensions>",
    b"</extensions>",
    b" ",
    b"\n  ",
];
const ODD_FIELDS: &[&[u8]] = &[
    b"<ele>1&#50;</ele>",
    b"<time>&bogus;</time>",
    b"<foo>1</foo>",
    b"<ele/>",
    b"<g:speed>2</g:speed>",
    b"<ele>1</ele >",
    b"<ele><time>x</time></ele>",
    b"<!-- c -->",
    b"junk",
    b"<ele>1</elf>",
    b"<speed>1<![CDATA[2]]></speed>",
];
const CLOSES: &[&[u8]] = &[b"</trkpt>", b"</trkpt >", b"", b"</trkpt", b"</g:trkpt>"];
const BETWEEN: &[&[u8]] = &[b"\n      ", b"", b" x ", b"<!-- -->", b"\t", b"&amp;"];

fn pick(from: &'static [&'static [u8]]) -> impl Strategy<Value = &'static [u8]> + Clone {
    (0..from.len()).prop_map(move |i| from[i])
}

/// Mostly in the lane's form, with an odd piece now and then.
fn piece(
    usual: &'static [&'static [u8]],
    odd: &'static [&'static [u8]],
) -> impl Strategy<Value = &'static [u8]> + Clone {
    prop_oneof![9 => pick(usual), 1 => pick(odd)]
}

fn point() -> impl Strategy<Value = Vec<u8>> {
    let made = (
        piece(OPENS, ODD_OPENS),
        prop::collection::vec(piece(FIELDS, ODD_FIELDS), 0..8),
        prop_oneof![6 => Just(CLOSES[0]), 1 => pick(CLOSES)],
        pick(BETWEEN),
    )
        .prop_map(|(open, fields, close, between)| {
            [&[open][..], &fields, &[close, between]].concat().concat()
        });
    prop_oneof![
        1 => pick(BETWEEN).prop_map(|between| [APPLE, between].concat()),
        3 => made,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Any document, whole or cut anywhere, reads the same with the lane
    /// as with quick-xml alone: the same points to the bit, the same
    /// counts, the same error at the same byte.
    #[test]
    fn the_lane_reads_any_document_as_quick_xml_does(
        points in prop::collection::vec(point(), 0..12),
        cut in prop::option::weighted(0.3, any::<usize>()),
    ) {
        let gpx = document(&points, cut);
        let (with, _) = read(&gpx, true);
        let (without, never) = read(&gpx, false);
        prop_assert_eq!(never, 0);
        prop_assert_eq!(with, without);
    }
}
