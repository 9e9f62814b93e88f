//! A track point as Apple writes it, read in one strict pass over the
//! file's bytes: its two coordinates, then each field a plain text element,
//! the last four inside `<extensions>`. quick-xml spends most of a route
//! file's time handing such a point over as some twenty events; anything the
//! lane does not read exactly as those events would be read (a prefix, a
//! reference, a comment, an unknown child, odd spacing) it leaves to
//! quick-xml, from the point's `<` on.

use super::{Field, PartialPoint, Value, finish, number};
use crate::model::RoutePoint;

/// A point the lane read: the bytes it takes, and the point (`None`: not
/// usable, as the events would have found).
pub(super) struct Laned {
    pub len: usize,
    pub point: Option<RoutePoint>,
}

/// Reads the `<trkpt …>…</trkpt>` at the front of `input`. `Ok(None)`:
/// not in the form the lane reads. `Err`: a value the events would have
/// refused, at the same place.
pub(super) fn track_point(input: &[u8]) -> Result<Option<Laned>, String> {
    let mut at = Scan { input, at: 0 };
    if !at.eat(b"<trkpt") {
        return Ok(None);
    }
    let (mut lat, mut lon) = (None, None);
    loop {
        let spaced = at.space();
        if at.eat(b">") {
            break;
        }
        let Some((name, value)) = spaced.then(|| at.attribute()).flatten() else {
            return Ok(None);
        };
        match name {
            b"lat" => lat = number(value),
            b"lon" => lon = number(value),
            _ => {}
        }
    }
    let mut partial = PartialPoint::default();
    let mut in_extensions = false;
    loop {
        at.space();
        if at.eat(b"</trkpt>") {
            break;
        }
        if in_extensions && at.eat(b"</extensions>") {
            in_extensions = false;
            continue;
        }
        if !in_extensions && at.eat(b"<extensions>") {
            in_extensions = true;
            continue;
        }
        let Some((field, name)) = at.field_start() else {
            return Ok(None);
        };
        let Some(text) = at.text() else {
            return Ok(None);
        };
        if !(at.eat(b"</") && at.eat(name) && at.eat(b">")) {
            return Ok(None);
        }
        partial.set(field, &Value::Raw(text))?;
    }
    if in_extensions {
        return Ok(None);
    }
    Ok(Some(Laned {
        len: at.at,
        point: finish(lat, lon, partial),
    }))
}

/// XML's whitespace: what a whitespace text event between elements holds.
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

struct Scan<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.input[self.at..]
    }

    fn eat(&mut self, expected: &[u8]) -> bool {
        let found = self.rest().starts_with(expected);
        if found {
            self.at += expected.len();
        }
        found
    }

    /// Skips whitespace; whether there was any.
    fn space(&mut self) -> bool {
        let n = self.rest().iter().take_while(|&&b| is_space(b)).count();
        self.at += n;
        n > 0
    }

    /// `name="value"` (or single quotes): a name without a prefix, no
    /// space around `=`, a value without references or markup.
    fn attribute(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let rest = self.rest();
        let eq = rest.iter().position(|&b| !b.is_ascii_alphanumeric())?;
        let (name, after) = rest.split_at(eq);
        let (&[b'=', quote], value) = after.split_first_chunk::<2>()? else {
            return None;
        };
        if name.is_empty() || !matches!(quote, b'"' | b'\'') {
            return None;
        }
        let end = memchr::memchr(quote, value)?;
        let value = &value[..end];
        if memchr::memchr2(b'&', b'<', value).is_some() {
            return None;
        }
        self.at += eq + 2 + end + 1;
        Some((name, value))
    }

    /// The start tag of a field the point keeps, with its name.
    fn field_start(&mut self) -> Option<(Field, &'static [u8])> {
        const FIELDS: [(&[u8], Field); 6] = [
            (b"<ele>", Field::Ele),
            (b"<time>", Field::Time),
            (b"<speed>", Field::Speed),
            (b"<course>", Field::Course),
            (b"<hAcc>", Field::HAcc),
            (b"<vAcc>", Field::VAcc),
        ];
        let (tag, field) = FIELDS
            .iter()
            .find(|(tag, _)| self.rest().starts_with(tag))?;
        self.at += tag.len();
        Some((*field, &tag[1..tag.len() - 1]))
    }

    /// A field's text up to the next markup, when it holds no reference.
    fn text(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest();
        let end = memchr::memchr2(b'<', b'&', rest)?;
        (rest[end] == b'<').then(|| {
            self.at += end;
            &rest[..end]
        })
    }
}
