//! Apple's date formats, parsed by hand: this runs several million times per
//! export, and the format is fixed.
//!
//! A [`Timestamp`] keeps both the exact instant and the offset the sample was
//! written with, so a run recorded while travelling stays in its local day.

use serde::Serialize;

/// An instant with the UTC offset it was recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub utc: i64,
    /// Minutes east of UTC.
    pub offset_min: i16,
}

const SECS_PER_DAY: i64 = 86_400;

/// The last calendar day [`Timestamp::parse_bytes_near`] read: its
/// `yyyy-MM-dd` and its days since the epoch.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LastDay(Option<([u8; 10], i64)>);

impl Timestamp {
    /// Parses `yyyy-MM-dd HH:mm:ss ±HHMM`.
    pub fn parse(s: &str) -> Option<Timestamp> {
        Self::parse_bytes(s.as_bytes())
    }

    /// [`Timestamp::parse`] on raw bytes (no UTF-8 check needed: the format
    /// is ASCII, and anything else fails to parse).
    pub fn parse_bytes(b: &[u8]) -> Option<Timestamp> {
        Self::parse_bytes_near(b, &mut LastDay::default())
    }

    /// [`Timestamp::parse_bytes`], the calendar day taken from `last` when
    /// it is the same: an export's dates come in long runs of one day.
    pub(crate) fn parse_bytes_near(b: &[u8], last: &mut LastDay) -> Option<Timestamp> {
        if b.len() != 25 || b[10] != b' ' || b[19] != b' ' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let days = match last.0 {
            Some((date, days)) if date == b[..10] => days,
            _ => {
                let days = parse_date_bytes(&b[..10])?;
                let mut date = [0; 10];
                date.copy_from_slice(&b[..10]);
                last.0 = Some((date, days));
                days
            }
        };
        let (hour, minute, second) = (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
        );
        let sign = match b[20] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (off_h, off_m) = (digits(&b[21..23])?, digits(&b[23..25])?);
        // 60 admits a leap second rather than dropping the sample.
        if hour > 23 || minute > 59 || second > 60 || off_h > 18 || off_m > 59 {
            return None;
        }
        let offset_min = sign * (off_h * 60 + off_m);
        let local = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second;
        Some(Timestamp {
            utc: local - offset_min * 60,
            offset_min: offset_min as i16,
        })
    }

    /// Seconds since the epoch of the same wall-clock time read as UTC.
    pub fn local_secs(self) -> i64 {
        self.utc + i64::from(self.offset_min) * 60
    }

    /// Days since 1970-01-01 of the local calendar day.
    pub fn local_day(self) -> i64 {
        self.local_secs().div_euclid(SECS_PER_DAY)
    }

    /// Formats back to Apple's own form.
    pub fn to_apple_string(self) -> String {
        let (y, mo, d, h, mi, s) = civil_from_local(self.local_secs());
        let sign = if self.offset_min < 0 { '-' } else { '+' };
        let off = i64::from(self.offset_min).abs();
        format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} {sign}{:02}{:02}",
            off / 60,
            off % 60
        )
    }

    /// RFC 3339 with the original offset, e.g. `2024-01-01T01:01:36+02:00`.
    pub fn to_rfc3339(self) -> String {
        let (y, mo, d, h, mi, s) = civil_from_local(self.local_secs());
        if self.offset_min == 0 {
            return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
        }
        let sign = if self.offset_min < 0 { '-' } else { '+' };
        let off = i64::from(self.offset_min).abs();
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{sign}{:02}:{:02}",
            off / 60,
            off % 60
        )
    }
}

/// Parses `yyyy-MM-dd` into days since the epoch.
pub fn parse_date(s: &str) -> Option<i64> {
    parse_date_bytes(s.as_bytes())
}

fn parse_date_bytes(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Formats days since the epoch as `yyyy-MM-dd`.
pub fn format_day(day: i64) -> String {
    let (y, m, d, ..) = civil_from_local(day * SECS_PER_DAY);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses an ISO 8601 UTC time as GPX writes it (`2019-06-11T22:00:42Z`,
/// optionally with fractional seconds). Returns milliseconds since the epoch.
pub fn parse_gpx_time(s: &str) -> Option<i64> {
    parse_gpx_time_bytes(s.as_bytes())
}

/// [`parse_gpx_time`] on raw bytes (ASCII, so no UTF-8 check is needed).
pub fn parse_gpx_time_bytes(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[10] != b'T' || *b.last()? != b'Z' {
        return None;
    }
    let day = parse_date_bytes(&b[..10])?;
    let (h, m, sec) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if b[13] != b':' || b[16] != b':' || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let millis = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', frac @ ..] => fraction_millis(frac)?,
        _ => return None,
    };
    Some((day * SECS_PER_DAY + h * 3600 + m * 60 + sec) * 1000 + millis)
}

/// Reads a locale-formatted time of day as Apple writes it in
/// `InstantaneousBeatsPerMinute` (`7:47:41.86 PM`, `12:21:00,30`, `19:47:41`,
/// `下午7:47:41.86`). Returns milliseconds since local midnight.
pub fn parse_time_of_day(s: &str) -> Option<i64> {
    let s = s.trim();
    match ascii_time_of_day(s.as_bytes()) {
        Some(found) => found,
        None => any_time_of_day(s),
    }
}

/// `7:47:41.86 PM`, `19:47:41,3`: the common case, read without
/// allocating. `None` when `s` is not of that shape (the general reading
/// takes it); otherwise what [`any_time_of_day`] finds, as the test shows.
fn ascii_time_of_day(s: &[u8]) -> Option<Option<i64>> {
    let (clock, marker) = match s {
        [clock @ .., b' ', a, b'M' | b'm'] => (clock, Some(a.to_ascii_lowercase())),
        _ => (s, None),
    };
    let pm = match marker {
        None => false,
        Some(b'p') => true,
        Some(b'a') => false,
        Some(_) => return None,
    };
    let digits = |b: &[u8]| -> Option<i64> {
        b.iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (clock, frac) = match clock.iter().position(|&b| b == b'.' || b == b',') {
        Some(at) if at + 1 < clock.len() && clock[at + 1..].iter().all(u8::is_ascii_digit) => {
            (&clock[..at], Some(&clock[at + 1..]))
        }
        Some(_) => return None,
        None => (clock, None),
    };
    let (hour, minute, second) = match clock {
        [h @ .., b':', m1, m2, b':', s1, s2] => (h, [*m1, *m2], [*s1, *s2]),
        _ => return None,
    };
    if hour.is_empty() || hour.len() > 2 {
        return None;
    }
    let (hour, minute, second) = (digits(hour)?, digits(&minute)?, digits(&second)?);
    let millis = match frac {
        None => 0,
        Some(frac) => match fraction_millis(frac) {
            Some(millis) => millis,
            None => return Some(None),
        },
    };
    Some(clock_millis(
        marker == Some(b'a'),
        pm,
        hour,
        minute,
        second,
        millis,
    ))
}

fn clock_millis(
    am: bool,
    pm: bool,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
) -> Option<i64> {
    let hour = match (am, pm, hour) {
        (true, _, 12) => 0,
        (_, true, h) if h < 12 => h + 12,
        (_, _, h) => h,
    };
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(((hour * 60 + minute) * 60 + second) * 1000 + millis)
}

/// Any locale's time of day: AM/PM markers in many scripts, any clock.
fn any_time_of_day(s: &str) -> Option<i64> {
    // Markers compared without dots and spaces: `p. m.`, `μ.μ.`, `pm`.
    let lower: String = s
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '.' | ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    let pm_markers = ["pm", "下午", "午後", "오후", "μμ", "م", "ös", "ch", "nachm"];
    let am_markers = ["am", "上午", "午前", "오전", "πμ", "ص", "öö", "sa", "vorm"];
    let is_pm = pm_markers.iter().any(|m| lower.contains(m));
    let is_am = !is_pm && am_markers.iter().any(|m| lower.contains(m));
    // Keep only the clock: digits and separators.
    let clock: String = s
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || matches!(c, ':' | '.' | ','))
        .collect();
    let mut parts = clock.split(':');
    let hour: i64 = parts.next()?.parse().ok()?;
    let minute: i64 = parts.next()?.parse().ok()?;
    let sec_part = parts.next().unwrap_or("0");
    if parts.next().is_some() {
        return None;
    }
    let (sec_str, frac) = match sec_part.find(['.', ',']) {
        Some(i) => (&sec_part[..i], &sec_part[i + 1..]),
        None => (sec_part, ""),
    };
    let second: i64 = sec_str.parse().ok()?;
    let millis = if frac.is_empty() {
        0
    } else {
        fraction_millis(frac.as_bytes())?
    };
    clock_millis(is_am, is_pm, hour, minute, second, millis)
}

fn fraction_millis(frac: &[u8]) -> Option<i64> {
    if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut millis = 0;
    for i in 0..3 {
        millis = millis * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    Some(millis)
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &d in b {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(n)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// well-known algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_local(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(SECS_PER_DAY);
    let rem = secs.rem_euclid(SECS_PER_DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_apple_dates_with_their_offset() {
        let t = Timestamp::parse("2024-01-01 01:01:36 +0200");
        assert_eq!(
            t,
            Some(Timestamp {
                utc: 1_704_063_696,
                offset_min: 120
            })
        );
        let t = Timestamp::parse("2016-11-14 07:25:41 -0700").map(Timestamp::to_apple_string);
        assert_eq!(t.as_deref(), Some("2016-11-14 07:25:41 -0700"));
    }

    #[test]
    fn a_late_evening_abroad_stays_in_its_local_day() {
        let evening = Timestamp::parse("2023-03-01 23:30:00 -0500");
        let same_instant_home = Timestamp::parse("2023-03-02 05:30:00 +0100");
        let (Some(evening), Some(home)) = (evening, same_instant_home) else {
            panic!("both dates parse");
        };
        assert_eq!(evening.utc, home.utc);
        assert_eq!(format_day(evening.local_day()), "2023-03-01");
        assert_eq!(format_day(home.local_day()), "2023-03-02");
    }

    #[test]
    fn the_quick_time_of_day_reads_as_the_general_one() {
        let mut taken = 0;
        for hour in ["0", "7", "07", "11", "12", "13", "23", "24", "123", ""] {
            for minute in ["00", "5", "47", "59", "60"] {
                for second in ["00", "41", "60", "61"] {
                    for frac in ["", ".86", ",30", ".999", ".1234", ".", ",x", ".8.6"] {
                        for marker in ["", " AM", " PM", " am", " pm", " XM", "PM", " p. m."] {
                            let text = format!("{hour}:{minute}:{second}{frac}{marker}");
                            if let Some(quick) = ascii_time_of_day(text.as_bytes()) {
                                taken += 1;
                                assert_eq!(quick, any_time_of_day(&text), "{text}");
                            }
                        }
                    }
                }
            }
        }
        assert!(taken > 1000, "the quick reading took only {taken}");
        assert!(ascii_time_of_day(b"7:47:41.86 PM").is_some());
        assert!(ascii_time_of_day(b"19:47:41").is_some());
    }

    #[test]
    fn refuses_malformed_dates() {
        for bad in [
            "",
            "2024-01-01",
            "2024-02-30 10:00:00 +0000",
            "2024-01-01T01:01:36 +0200",
            "2024-01-01 25:01:36 +0200",
            "2024-01-01 01:01:36 0200",
            "2024-01-01 01:01:36 +0200 ",
            "nan",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad:?} should not parse");
        }
    }

    #[test]
    fn reads_locale_times_of_day() {
        let ms = |h: i64, m: i64, s: i64, f: i64| ((h * 60 + m) * 60 + s) * 1000 + f;
        assert_eq!(
            parse_time_of_day("7:47:41.86 PM"),
            Some(ms(19, 47, 41, 860))
        );
        assert_eq!(parse_time_of_day("12:21:00,30"), Some(ms(12, 21, 0, 300)));
        assert_eq!(parse_time_of_day("12:05:01.5 AM"), Some(ms(0, 5, 1, 500)));
        assert_eq!(parse_time_of_day("12:05:01 p.m."), Some(ms(12, 5, 1, 0)));
        assert_eq!(
            parse_time_of_day("下午7:47:41.86"),
            Some(ms(19, 47, 41, 860))
        );
        assert_eq!(parse_time_of_day("午前0:10:00"), Some(ms(0, 10, 0, 0)));
        assert_eq!(
            parse_time_of_day("7:47:41,86 μ.μ."),
            Some(ms(19, 47, 41, 860))
        );
        assert_eq!(parse_time_of_day("7:47:41 p. m."), Some(ms(19, 47, 41, 0)));
        assert_eq!(
            parse_time_of_day("7:47:41\u{202f}PM"),
            Some(ms(19, 47, 41, 0))
        );
        assert_eq!(parse_time_of_day("7:47:41 ÖS"), Some(ms(19, 47, 41, 0)));
        assert_eq!(parse_time_of_day("23:59:59,999"), Some(ms(23, 59, 59, 999)));
        assert_eq!(parse_time_of_day("soon"), None);
    }

    #[test]
    fn reads_gpx_times() {
        assert_eq!(parse_gpx_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_gpx_time("1970-01-01T00:00:01.25Z"), Some(1250));
        assert_eq!(parse_gpx_time("2019-06-11T22:00:42"), None);
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for day in (-200_000..200_000).step_by(997) {
            let s = format_day(day);
            assert_eq!(parse_date(&s), Some(day), "{s}");
        }
    }

    proptest::proptest! {
        /// A run of dates read with the day kept from one to the next reads
        /// exactly as each alone, whatever repeats and whatever is invalid.
        #[test]
        fn keeping_the_last_day_changes_nothing(
            dates in proptest::collection::vec(
                (0usize..4, 0u32..30, 0u32..86_401, proptest::bool::ANY, 0usize..25),
                1..60,
            )
        ) {
            let days = ["2024-02-29", "2023-02-29", "2024-12-31", "1999-13-01"];
            let mut last = LastDay::default();
            for (day, tweak, secs, east, damage) in dates {
                let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
                let sign = if east { '+' } else { '-' };
                let mut text = format!("{} {h:02}:{m:02}:{s:02} {sign}{:02}00", days[day], tweak % 20)
                    .into_bytes();
                if tweak == 29 {
                    text[damage] = b'x';
                }
                let alone = Timestamp::parse_bytes(&text);
                proptest::prop_assert_eq!(Timestamp::parse_bytes_near(&text, &mut last), alone);
            }
        }
    }
}
