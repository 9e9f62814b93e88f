//! A track point as Apple writes it, read in one strict pass over the
//! file's bytes: the coordinates' attributes, then each field a plain text
//! element, some inside `<extensions>`. quick-xml spends most of a route
//! file's time handing such a point over as some twenty events. The lane
//! takes a point only in forms it reads exactly as those events are read
//! (fields in any order, whitespace between them); anything else (a
//! prefix, a reference, a comment, an unknown child, spacing inside a tag)
//! it leaves to quick-xml, from the point's `<` on.

use super::{Field, PartialPoint, Value, finish, number};
use crate::model::RoutePoint;
use crate::text::whitespace;

/// A point the lane read: the bytes it takes, and the point (`None`: not
/// usable, as the events would have found).
pub(super) struct Laned {
    pub len: usize,
    pub point: Option<RoutePoint>,
}

/// Reads the `<trkpt …>…</trkpt>` at the front of `input`; `None` when it
/// is not in a form the lane reads.
pub(super) fn track_point(input: &[u8]) -> Option<Laned> {
    let mut scan = Scan { input, at: 0 };
    if !scan.eat(b"<trkpt") {
        return None;
    }
    let (mut lat, mut lon) = (None, None);
    loop {
        let spaced = scan.space();
        if scan.eat(b">") {
            break;
        }
        let (name, value) = spaced.then(|| scan.attribute()).flatten()?;
        match name {
            b"lat" => lat = number(value),
            b"lon" => lon = number(value),
            _ => {}
        }
    }
    let mut partial = PartialPoint::default();
    let mut in_extensions = false;
    loop {
        scan.space();
        if scan.eat(b"</trkpt>") {
            break;
        }
        if in_extensions && scan.eat(b"</extensions>") {
            in_extensions = false;
            continue;
        }
        if !in_extensions && scan.eat(b"<extensions>") {
            in_extensions = true;
            continue;
        }
        let (field, name) = scan.field_start()?;
        let text = scan.text()?;
        if !(scan.eat(b"</") && scan.eat(name) && scan.eat(b">")) {
            return None;
        }
        // A value fails only on a reference, which `text` refuses; were
        // one to, quick-xml's events would meet it again.
        partial.set(field, &Value::Raw(text)).ok()?;
    }
    (!in_extensions).then(|| Laned {
        len: scan.at,
        point: finish(lat, lon, partial),
    })
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
        let n = whitespace(self.rest());
        self.at += n;
        n > 0
    }

    /// `name="value"` (or single quotes): a name without a prefix, no
    /// space around `=`, a value without references or markup.
    fn attribute(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let rest = self.rest();
        let name_len = rest.iter().position(|&b| !b.is_ascii_alphanumeric())?;
        let (name, after) = rest.split_at(name_len);
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
        self.at += name_len + 2 + end + 1;
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
