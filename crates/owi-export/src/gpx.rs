//! The GPX 1.1 route files Apple writes next to the export
//! (`workout-routes/route_….gpx`).

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::model::RoutePoint;
use crate::text::{decode_cow, decode_into};
use crate::time::{parse_gpx_time, parse_gpx_time_bytes};

/// What reading one GPX file gave.
#[derive(Debug, Default, PartialEq)]
pub struct GpxOutcome {
    pub points: usize,
    /// Track points without usable coordinates or time.
    pub invalid: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Field {
    None,
    Ele,
    Time,
    Speed,
    Course,
    HAcc,
    VAcc,
}

/// Appends the track points of `gpx` to `out`.
pub fn read_gpx(gpx: &[u8], out: &mut Vec<RoutePoint>) -> Result<GpxOutcome, String> {
    let mut reader = Reader::from_reader(gpx);
    let mut outcome = GpxOutcome::default();
    // A field's text as written, while it comes in one piece without
    // references (numbers and times always do); else decoded into `text`.
    let mut raw: Option<&[u8]> = None;
    let mut text = String::new();
    let mut piece = String::new();
    let mut point: Option<(Option<f64>, Option<f64>, PartialPoint)> = None;
    let mut field = Field::None;
    loop {
        // Events borrow from the file's bytes: nothing is copied.
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Empty(e) if e.local_name().as_ref() == b"trkpt" => {
                // A point without children has no time: not usable.
                outcome.invalid += 1;
            }
            Event::Start(e) if e.local_name().as_ref() == b"trkpt" => {
                let mut lat = None;
                let mut lon = None;
                for attr in e.attributes().with_checks(false).flatten() {
                    let v = number(&attr.value);
                    match attr.key.local_name().as_ref() {
                        b"lat" => lat = v,
                        b"lon" => lon = v,
                        _ => {}
                    }
                }
                point = Some((lat, lon, PartialPoint::default()));
            }
            Event::Start(e) => {
                field = match e.local_name().as_ref() {
                    b"ele" => Field::Ele,
                    b"time" => Field::Time,
                    b"speed" => Field::Speed,
                    b"course" => Field::Course,
                    b"hAcc" => Field::HAcc,
                    b"vAcc" => Field::VAcc,
                    _ => Field::None,
                };
                text.clear();
                raw = None;
            }
            Event::Text(t) if field != Field::None => match t.into_inner() {
                Cow::Borrowed(bytes)
                    if raw.is_none()
                        && text.is_empty()
                        && memchr::memchr(b'&', bytes).is_none() =>
                {
                    raw = Some(bytes);
                }
                bytes => {
                    for part in raw.take().into_iter().chain([&*bytes]) {
                        decode_into(part, &mut piece).map_err(|e| e.to_string())?;
                        text.push_str(&piece);
                    }
                }
            },
            Event::End(e) => {
                if e.local_name().as_ref() == b"trkpt" {
                    if let Some((lat, lon, partial)) = point.take() {
                        match finish(lat, lon, partial) {
                            Some(p) => {
                                out.push(p);
                                outcome.points += 1;
                            }
                            None => outcome.invalid += 1,
                        }
                    }
                } else if let Some((_, _, partial)) = point.as_mut() {
                    let value = match raw.take() {
                        Some(bytes) => Value::Raw(bytes),
                        None => Value::Text(text.as_str()),
                    };
                    match field {
                        Field::Time => partial.at_ms = value.time()?,
                        Field::Ele => partial.ele = value.number()?,
                        Field::Speed => partial.speed = value.number()?,
                        Field::Course => partial.course = value.number()?,
                        Field::HAcc => partial.h_acc = value.number()?,
                        Field::VAcc => partial.v_acc = value.number()?,
                        Field::None => {}
                    }
                }
                field = Field::None;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(outcome)
}

/// A field's text: as written in the file, or decoded from pieces.
enum Value<'a> {
    Raw(&'a [u8]),
    Text(&'a str),
}

impl Value<'_> {
    /// Numbers and times are ASCII and read where they lie. Anything else
    /// is decoded (references, characters to repair) and read from that.
    fn read<T>(
        &self,
        fast: impl Fn(&[u8]) -> Option<T>,
        slow: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, String> {
        match *self {
            Value::Raw(bytes) => match fast(bytes) {
                Some(found) => Ok(Some(found)),
                None => Ok(slow(decode_cow(bytes).map_err(|e| e.to_string())?.0.trim())),
            },
            Value::Text(text) => Ok(slow(text.trim())),
        }
    }

    fn number(&self) -> Result<Option<f64>, String> {
        self.read(plain_number, |s| s.parse().ok())
    }

    fn time(&self) -> Result<Option<i64>, String> {
        self.read(|b| parse_gpx_time_bytes(b.trim_ascii()), parse_gpx_time)
    }
}

/// A number written plainly (surrounding spaces aside).
fn plain_number(bytes: &[u8]) -> Option<f64> {
    fast_float2::parse(bytes.trim_ascii()).ok()
}

/// An attribute's number, decoded first only when it is not plain.
fn number(bytes: &[u8]) -> Option<f64> {
    Value::Raw(bytes).number().ok().flatten()
}

#[derive(Default)]
struct PartialPoint {
    at_ms: Option<i64>,
    ele: Option<f64>,
    speed: Option<f64>,
    course: Option<f64>,
    h_acc: Option<f64>,
    v_acc: Option<f64>,
}

fn finish(lat: Option<f64>, lon: Option<f64>, p: PartialPoint) -> Option<RoutePoint> {
    let (lat, lon, at_ms) = (lat?, lon?, p.at_ms?);
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return None;
    }
    Some(RoutePoint {
        at_ms,
        lat,
        lon,
        elevation_m: p.ele,
        speed_mps: p.speed,
        course_deg: p.course,
        h_acc_m: p.h_acc,
        v_acc_m: p.v_acc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
