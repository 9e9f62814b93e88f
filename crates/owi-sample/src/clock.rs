//! Civil calendar arithmetic, the time zones the synthetic owner lives in and
//! travels to, and a fast formatter for Apple's `yyyy-MM-dd HH:mm:ss ±HHMM`.
//!
//! Everything works on UTC seconds since the Unix epoch (`i64`); no wall clock
//! is ever read, so output depends on the seed only.

pub(crate) const DAY: i64 = 86_400;
pub(crate) const HOUR: i64 = 3_600;

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let m = i64::from(month);
    let d = i64::from(day);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) for days since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// 0 = Sunday ... 6 = Saturday.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

fn last_sunday(year: i64, month: u32) -> i64 {
    let last = days_from_civil(year, month + 1, 1) - 1;
    last - weekday(last)
}

fn nth_sunday(year: i64, month: u32, n: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    first + (7 - weekday(first)) % 7 + 7 * (n - 1)
}

/// Daylight-saving rule of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dst {
    None,
    /// EU: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
    Eu,
    /// US: second Sunday of March 02:00 local to first Sunday of November 02:00 local.
    Us,
}

/// A time zone plus a place in it (routes start there).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Zone {
    pub name: &'static str,
    pub std_minutes: i32,
    pub dst: Dst,
    pub lat: f64,
    pub lon: f64,
}

impl Zone {
    const fn new(name: &'static str, std_minutes: i32, dst: Dst, lat: f64, lon: f64) -> Zone {
        Zone {
            name,
            std_minutes,
            dst,
            lat,
            lon,
        }
    }

    /// Instants (UTC) where this zone's offset changes during `year`.
    fn transitions(&self, year: i64) -> [i64; 2] {
        let std = i64::from(self.std_minutes) * 60;
        match self.dst {
            Dst::None => [i64::MIN, i64::MIN],
            Dst::Eu => [
                last_sunday(year, 3) * DAY + HOUR,
                last_sunday(year, 10) * DAY + HOUR,
            ],
            Dst::Us => [
                nth_sunday(year, 3, 2) * DAY + 2 * HOUR - std,
                nth_sunday(year, 11, 1) * DAY + 2 * HOUR - std - HOUR,
            ],
        }
    }

    /// UTC offset in minutes at `utc`.
    pub(crate) fn offset_at(&self, utc: i64) -> i32 {
        if self.dst == Dst::None {
            return self.std_minutes;
        }
        let (year, _, _) = civil_from_days(utc.div_euclid(DAY));
        let [on, off] = self.transitions(year);
        if utc >= on && utc < off {
            self.std_minutes + 60
        } else {
            self.std_minutes
        }
    }
}

pub(crate) const LOS_ANGELES: Zone =
    Zone::new("America/Los_Angeles", -480, Dst::Us, 37.7793, -122.4193);
pub(crate) const NEW_YORK: Zone = Zone::new("America/New_York", -300, Dst::Us, 40.7812, -73.9665);
pub(crate) const LONDON: Zone = Zone::new("Europe/London", 0, Dst::Eu, 51.5073, -0.1657);
pub(crate) const PARIS: Zone = Zone::new("Europe/Paris", 60, Dst::Eu, 48.8530, 2.3499);
pub(crate) const BERLIN: Zone = Zone::new("Europe/Berlin", 60, Dst::Eu, 52.5145, 13.3501);
pub(crate) const MADRID: Zone = Zone::new("Europe/Madrid", 60, Dst::Eu, 40.4153, -3.6845);
pub(crate) const ROME: Zone = Zone::new("Europe/Rome", 60, Dst::Eu, 41.9145, 12.4923);
pub(crate) const HELSINKI: Zone = Zone::new("Europe/Helsinki", 120, Dst::Eu, 60.1756, 24.9342);
pub(crate) const MOSCOW: Zone = Zone::new("Europe/Moscow", 180, Dst::None, 55.7304, 37.6011);
pub(crate) const TOKYO: Zone = Zone::new("Asia/Tokyo", 540, Dst::None, 35.6717, 139.6949);
pub(crate) const SEOUL: Zone = Zone::new("Asia/Seoul", 540, Dst::None, 37.5284, 126.9326);
pub(crate) const SHANGHAI: Zone = Zone::new("Asia/Shanghai", 480, Dst::None, 31.2304, 121.4737);
pub(crate) const TAIPEI: Zone = Zone::new("Asia/Taipei", 480, Dst::None, 25.0330, 121.5654);
pub(crate) const HONG_KONG: Zone = Zone::new("Asia/Hong_Kong", 480, Dst::None, 22.2793, 114.1628);

/// Where the owner lives and the two places they travel to, by locale.
pub(crate) fn zones_for_locale(locale: &str) -> [Zone; 3] {
    let lower = locale.to_ascii_lowercase().replace('-', "_");
    let lang = lower.split('_').next().unwrap_or("");
    let home = match lang {
        "en" if lower == "en" || lower.starts_with("en_us") => LOS_ANGELES,
        "en" => LONDON,
        "fr" => PARIS,
        "de" => BERLIN,
        "es" => MADRID,
        "it" => ROME,
        "fi" => HELSINKI,
        "ru" => MOSCOW,
        "ja" => TOKYO,
        "ko" => SEOUL,
        "zh" if lower.contains("hk") => HONG_KONG,
        "zh" if lower.contains("tw") || lower.contains("hant") => TAIPEI,
        "zh" => SHANGHAI,
        _ => PARIS,
    };
    let first = if home.std_minutes < 0 {
        PARIS
    } else {
        NEW_YORK
    };
    let second = if home.std_minutes >= 480 {
        LONDON
    } else {
        TOKYO
    };
    [home, first, second]
}

/// The owner's whereabouts over time: the home zone with a few trips.
#[derive(Debug)]
pub(crate) struct Timeline {
    zones: [Zone; 3],
    /// (from_utc, offset_minutes, zone index), sorted; the first starts at `i64::MIN`.
    changes: Vec<(i64, i32, u8)>,
}

impl Timeline {
    /// `trips` are (from_utc, to_utc, zone index 1 or 2).
    pub(crate) fn new(zones: [Zone; 3], trips: &[(i64, i64, u8)], from: i64, to: i64) -> Timeline {
        let slow = |utc: i64| -> (i32, u8) {
            for &(a, b, z) in trips {
                if utc >= a && utc < b {
                    return (zones[usize::from(z)].offset_at(utc), z);
                }
            }
            (zones[0].offset_at(utc), 0)
        };
        let mut points: Vec<i64> = Vec::new();
        let (y0, _, _) = civil_from_days(from.div_euclid(DAY));
        let (y1, _, _) = civil_from_days(to.div_euclid(DAY));
        for year in (y0 - 1)..=(y1 + 1) {
            for zone in &zones {
                for t in zone.transitions(year) {
                    if t != i64::MIN {
                        points.push(t);
                    }
                }
            }
        }
        for &(a, b, _) in trips {
            points.push(a);
            points.push(b);
        }
        points.sort_unstable();
        points.dedup();
        let (off0, z0) = slow(i64::MIN / 2);
        let mut changes = vec![(i64::MIN, off0, z0)];
        for t in points {
            let (off, z) = slow(t);
            if let Some(&(_, last_off, last_z)) = changes.last()
                && (last_off != off || last_z != z)
            {
                changes.push((t, off, z));
            }
        }
        Timeline { zones, changes }
    }

    fn index(&self, utc: i64) -> usize {
        self.changes
            .partition_point(|c| c.0 <= utc)
            .saturating_sub(1)
    }

    /// Offset in minutes at `utc`.
    pub(crate) fn offset(&self, utc: i64) -> i32 {
        self.changes[self.index(utc)].1
    }

    /// The zone the owner is in at `utc`.
    pub(crate) fn zone(&self, utc: i64) -> &Zone {
        &self.zones[usize::from(self.changes[self.index(utc)].2)]
    }

    /// (local day number, seconds into the local day) at `utc`.
    pub(crate) fn local(&self, utc: i64) -> (i64, i64) {
        let local = utc + i64::from(self.offset(utc)) * 60;
        (local.div_euclid(DAY), local.rem_euclid(DAY))
    }

    /// The UTC instant of local `day` + `secs` (using the offset in force
    /// around that time; good enough for picking times of day).
    pub(crate) fn utc_of_local(&self, day: i64, secs: i64) -> i64 {
        let guess = day * DAY + secs;
        guess - i64::from(self.offset(guess)) * 60
    }
}

/// Writes two ASCII digits.
#[inline]
fn two(buf: &mut [u8], at: usize, v: u32) {
    buf[at] = b'0' + (v / 10 % 10) as u8;
    buf[at + 1] = b'0' + (v % 10) as u8;
}

/// Formats `yyyy-MM-dd HH:mm:ss ±HHMM`, caching the date part and the offset.
#[derive(Debug)]
pub(crate) struct DateFmt {
    seg_from: i64,
    seg_to: i64,
    offset_secs: i64,
    offset_txt: [u8; 6],
    day: i64,
    day_txt: [u8; 11],
}

impl Default for DateFmt {
    fn default() -> Self {
        DateFmt {
            seg_from: 1,
            seg_to: 0,
            offset_secs: 0,
            offset_txt: *b" +0000",
            day: i64::MIN,
            day_txt: *b"1970-01-01 ",
        }
    }
}

pub(crate) fn put_ymd(buf: &mut [u8], at: usize, days: i64) {
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    two(buf, at, y / 100);
    two(buf, at + 2, y % 100);
    buf[at + 4] = b'-';
    two(buf, at + 5, m);
    buf[at + 7] = b'-';
    two(buf, at + 8, d);
}

impl DateFmt {
    pub(crate) fn format(&mut self, tl: &Timeline, utc: i64) -> [u8; 25] {
        if utc < self.seg_from || utc >= self.seg_to {
            let i = tl.index(utc);
            self.seg_from = tl.changes[i].0;
            self.seg_to = tl.changes.get(i + 1).map_or(i64::MAX, |c| c.0);
            let minutes = tl.changes[i].1;
            self.offset_secs = i64::from(minutes) * 60;
            let abs = minutes.unsigned_abs();
            self.offset_txt[1] = if minutes < 0 { b'-' } else { b'+' };
            two(&mut self.offset_txt, 2, abs / 60);
            two(&mut self.offset_txt, 4, abs % 60);
        }
        let local = utc + self.offset_secs;
        let day = local.div_euclid(DAY);
        if day != self.day {
            self.day = day;
            put_ymd(&mut self.day_txt, 0, day);
        }
        let secs = local.rem_euclid(DAY) as u32;
        let mut out = [0u8; 25];
        out[..11].copy_from_slice(&self.day_txt);
        two(&mut out, 11, secs / 3600);
        out[13] = b':';
        two(&mut out, 14, secs / 60 % 60);
        out[16] = b':';
        two(&mut out, 17, secs % 60);
        out[19..].copy_from_slice(&self.offset_txt);
        out
    }
}

/// `yyyy-MM-ddTHH:mm:ssZ` in UTC (GPX times).
pub(crate) fn format_utc_z(utc: i64) -> [u8; 20] {
    let mut out = *b"0000-00-00T00:00:00Z";
    put_ymd(&mut out, 0, utc.div_euclid(DAY));
    let secs = utc.rem_euclid(DAY) as u32;
    two(&mut out, 11, secs / 3600);
    two(&mut out, 14, secs / 60 % 60);
    two(&mut out, 17, secs % 60);
    out
}

/// Parses `yyyy-MM-dd HH:mm:ss ±HHMM` into UTC seconds (used by tests and
/// by callers comparing the manifest's first/last dates).
pub fn parse_export_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 25 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let days = days_from_civil(num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let secs = num(11..13)? * HOUR + num(14..16)? * 60 + num(17..19)?;
    let off = (num(21..23)? * 60 + num(23..25)?) * 60;
    let off = match b[20] {
        b'+' => off,
        b'-' => -off,
        _ => return None,
    };
    Some(days * DAY + secs - off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for d in -800_000..800_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn dst_rules() {
        // 2023: EU switches on 26 March and 29 October at 01:00 UTC.
        let on = days_from_civil(2023, 3, 26) * DAY + HOUR;
        assert_eq!(PARIS.offset_at(on - 1), 60);
        assert_eq!(PARIS.offset_at(on), 120);
        let off = days_from_civil(2023, 10, 29) * DAY + HOUR;
        assert_eq!(PARIS.offset_at(off - 1), 120);
        assert_eq!(PARIS.offset_at(off), 60);
        // US 2023: 12 March 02:00 EST = 07:00 UTC; 5 November 02:00 EDT = 06:00 UTC.
        let on = days_from_civil(2023, 3, 12) * DAY + 7 * HOUR;
        assert_eq!(NEW_YORK.offset_at(on - 1), -300);
        assert_eq!(NEW_YORK.offset_at(on), -240);
        let off = days_from_civil(2023, 11, 5) * DAY + 6 * HOUR;
        assert_eq!(NEW_YORK.offset_at(off - 1), -240);
        assert_eq!(NEW_YORK.offset_at(off), -300);
    }

    #[test]
    fn format_and_parse() {
        let tl = Timeline::new(zones_for_locale("fr_FR"), &[], 0, 2_000_000_000);
        let mut f = DateFmt::default();
        let t = days_from_civil(2023, 6, 11) * DAY + 13 * HOUR + 5 * 60 + 9;
        let s = f.format(&tl, t);
        assert_eq!(&s, b"2023-06-11 15:05:09 +0200");
        let w = days_from_civil(2023, 1, 2) * DAY + 23 * HOUR + 30 * 60;
        assert_eq!(&f.format(&tl, w), b"2023-01-03 00:30:00 +0100");
        let text = std::str::from_utf8(&s).unwrap_or_default();
        assert_eq!(parse_export_date(text), Some(t));
        assert_eq!(&format_utc_z(t), b"2023-06-11T13:05:09Z");
    }

    #[test]
    fn trips_change_offset() {
        let zones = zones_for_locale("de_DE");
        let a = days_from_civil(2023, 2, 1) * DAY;
        let b = a + 10 * DAY;
        let tl = Timeline::new(zones, &[(a, b, 1)], a - 100 * DAY, b + 100 * DAY);
        assert_eq!(tl.offset(a - 1), 60);
        assert_eq!(tl.offset(a), -300);
        assert_eq!(tl.zone(a).name, "America/New_York");
        assert_eq!(tl.offset(b), 60);
    }
}
