//! Attributes of rare elements, decoded and typed.

use super::*;

impl<R: BufRead> Parser<'_, R> {
    /// A date attribute; present but unparseable counts as a skip (the
    /// element is kept without it).
    pub(super) fn date(&mut self, el: &Element, name: &str) -> Option<Timestamp> {
        let raw = el.attr(name)?;
        let parsed = Timestamp::parse(raw);
        if parsed.is_none() {
            let detail = format!("{}@{name}={raw:?}", el.name);
            // Counting cannot fail the read; a visitor's stop shows at the next element.
            let _ = self.skip(SkipReason::InvalidDate, "attribute", el.offset, &detail);
        }
        parsed
    }

    /// A numeric attribute; present but unparseable counts as a skip.
    pub(super) fn number(&mut self, el: &Element, name: &str) -> Res<Option<f64>> {
        let Some(raw) = el.attr(name) else {
            return Ok(None);
        };
        match parse_number(raw) {
            Ok(v) => Ok(Some(v)),
            Err(err) => {
                let detail = format!("{}@{name}={raw:?}", el.name);
                self.skip(number_skip_reason(err), "attribute", el.offset, &detail)?;
                Ok(None)
            }
        }
    }

    /// A numeric attribute converted to a base unit by its unit attribute.
    /// An unknown unit leaves the value unconverted only when it is already
    /// the base (no unit attribute at all).
    pub(super) fn measure(
        &mut self,
        el: &Element,
        name: &str,
        unit_attr: &str,
        factor: fn(&str) -> Option<f64>,
    ) -> Res<Option<f64>> {
        let Some(v) = self.number(el, name)? else {
            return Ok(None);
        };
        match el.attr(unit_attr) {
            None => Ok(Some(v)),
            Some(unit) => match factor(unit) {
                Some(f) => Ok(Some(v * f)),
                None => {
                    let detail = format!("{}@{unit_attr}={unit:?}", el.name);
                    self.skip(SkipReason::InvalidValue, "attribute", el.offset, &detail)?;
                    Ok(None)
                }
            },
        }
    }

    /// An attribute value of `e`, decoded, its forbidden characters counted.
    fn decoded(&mut self, e: &BytesStart<'_>, raw: &[u8]) -> Res<String> {
        let mut out = String::new();
        let repaired = decode_into(raw, &mut out).map_err(|err| {
            self_text_error(
                &self.path,
                self.offset(),
                &String::from_utf8_lossy(e.name().as_ref()),
                err,
            )
        })?;
        self.stats.repaired_chars += u64::from(repaired);
        Ok(out)
    }

    /// One attribute of the element whose tag starts at byte `at`.
    pub(super) fn attr(&mut self, e: &BytesStart<'_>, name: &[u8], at: u64) -> Res<Option<String>> {
        for (attr, count) in e.attributes().with_checks(false).zip(1..) {
            let attr = attr.map_err(|err| self.attribute_error(e, err))?;
            self.attribute_held(count, attr.value.len(), at)?;
            if attr.key.as_ref() == name {
                return self.decoded(e, &attr.value).map(Some);
            }
        }
        Ok(None)
    }

    /// Every attribute of the element whose tag starts at byte `at`.
    pub(super) fn attrs(&mut self, e: &BytesStart<'_>, at: u64) -> Res<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (attr, count) in e.attributes().with_checks(false).zip(1..) {
            let attr = attr.map_err(|err| self.attribute_error(e, err))?;
            self.attribute_held(count, attr.value.len(), at)?;
            let value = self.decoded(e, &attr.value)?;
            out.push((
                String::from_utf8_lossy(attr.key.as_ref()).into_owned(),
                value,
            ));
        }
        Ok(out)
    }

    pub(super) fn attribute_error(
        &self,
        e: &BytesStart<'_>,
        err: quick_xml::events::attributes::AttrError,
    ) -> Error {
        Error::Malformed {
            path: self.path.clone(),
            offset: self.offset(),
            message: format!(
                "bad attribute in <{}>: {err}",
                String::from_utf8_lossy(e.name().as_ref())
            ),
        }
    }
}
