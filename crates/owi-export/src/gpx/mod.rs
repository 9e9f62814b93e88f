//! The GPX 1.1 route files Apple writes next to the export
//! (`workout-routes/route_….gpx`).

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::model::RoutePoint;
use crate::text::{decode_cow, decode_into, whitespace};
use crate::time::{parse_gpx_time, parse_gpx_time_bytes};

mod lane;

/// What reading one GPX file gave.
#[derive(Debug, Default, PartialEq)]
pub struct GpxOutcome {
    pub points: usize,
    /// Track points without usable coordinates or time.
    pub invalid: usize,
}

impl GpxOutcome {
    /// A track point read: kept when usable, else counted as invalid.
    fn count(&mut self, point: Option<RoutePoint>, out: &mut Vec<RoutePoint>) {
        match point {
            Some(point) => {
                out.push(point);
                self.points += 1;
            }
            None => self.invalid += 1,
        }
    }
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
    read_gpx_with(gpx, out, true)
}

/// The read itself, with the lane for track points (`lane.rs`) on or off:
/// off, quick-xml reads every tag, which the lane's tests compare against.
fn read_gpx_with(gpx: &[u8], out: &mut Vec<RoutePoint>, lane: bool) -> Result<GpxOutcome, String> {
    let mut reader = Reader::from_reader(gpx);
    let mut outcome = GpxOutcome::default();
    // Bytes the lane took: quick-xml never saw them, so its positions
    // are short of the file's by that much.
    let mut laned = 0;
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
            .map_err(|e| format!("at byte {}: {e}", reader.error_position() + laned))?;
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
                        outcome.count(finish(lat, lon, partial), out);
                    }
                } else if let Some((_, _, partial)) = point.as_mut() {
                    let value = match raw.take() {
                        Some(bytes) => Value::Raw(bytes),
                        None => Value::Text(text.as_str()),
                    };
                    partial.set(field, &value)?;
                }
                field = Field::None;
            }
            Event::Eof => break,
            _ => {}
        }
        // Between points the lane may take over: quick-xml's slice reader
        // keeps a `<` it stopped before in its input, so it goes on from
        // any `<` the lane leaves it at; the lane takes whole elements
        // only, so the elements quick-xml holds open stay the same; and
        // outside a point and a field, nothing read before a point is used
        // in it.
        if lane && field == Field::None && point.is_none() {
            laned += lane_points(reader.get_mut(), out, &mut outcome);
        }
    }
    Ok(outcome)
}

/// Takes the track points at the front of `rest` while the lane reads
/// them, each with the whitespace after it; the bytes taken. A point is
/// taken only when markup follows: quick-xml, standing before markup when
/// the lane began, must be left before markup again.
fn lane_points(rest: &mut &[u8], out: &mut Vec<RoutePoint>, outcome: &mut GpxOutcome) -> u64 {
    let mut taken = 0;
    while let Some(laned) = lane::track_point(rest) {
        let after = &rest[laned.len..];
        let space = whitespace(after);
        if after.get(space) != Some(&b'<') {
            break;
        }
        outcome.count(laned.point, out);
        *rest = &after[space..];
        taken += (laned.len + space) as u64;
        #[cfg(test)]
        tests::LANED.with(|n| n.set(n.get() + 1));
    }
    taken
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

impl PartialPoint {
    fn set(&mut self, field: Field, value: &Value<'_>) -> Result<(), String> {
        match field {
            Field::Time => self.at_ms = value.time()?,
            Field::Ele => self.ele = value.number()?,
            Field::Speed => self.speed = value.number()?,
            Field::Course => self.course = value.number()?,
            Field::HAcc => self.h_acc = value.number()?,
            Field::VAcc => self.v_acc = value.number()?,
            Field::None => {}
        }
        Ok(())
    }
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
mod tests;
