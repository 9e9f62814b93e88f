//! The main XML: prolog and DTD, `Me`, records, correlations, then (via
//! `workouts.rs`) workouts, then activity summaries.

use std::path::Path;

use fastrand::Rng;

use crate::clock::{self, DAY, DateFmt, HOUR, Timeline};
use crate::out::{Out, put_escaped, put_hex, put_trimmed, put_u64, sin_cos};
use crate::{Error, SampleManifest, SampleSpec};

/// What the zip step needs besides the manifest.
#[derive(Debug, Clone)]
pub(crate) struct Extras {
    /// GPX file names (no directory), in the order written.
    pub route_names: Vec<String>,
    /// Export instant as local civil time: year, month, day, hour, minute, second.
    pub export_civil: [i64; 6],
    /// Export instant as written in `ExportDate`.
    pub export_text: String,
    /// Date of birth written in `Me` (yyyy-MM-dd).
    pub birth_date: String,
    /// Owner's given name.
    pub owner: &'static str,
}

/// Which of the three data sources wrote a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    Watch = 0,
    Phone = 1,
    App = 2,
}

/// Pre-rendered attributes of one source in one software era.
#[derive(Debug)]
pub(crate) struct SourceEra {
    /// ` sourceName="…" sourceVersion="…"`
    attrs: Vec<u8>,
    /// What follows the device pointer: `&gt;, name:…&gt;"`.
    device: Option<Vec<u8>>,
}

/// Source names and versions for the owner's devices and third-party app.
#[derive(Debug)]
pub(crate) struct Sources {
    eras: [[SourceEra; 3]; 3],
}

const WATCH_VERSIONS: [&str; 3] = ["8.7.1", "9.6.3", "10.2"];
const WATCH_HARDWARE: [&str; 3] = ["Watch5,4", "Watch6,2", "Watch6,2"];
const PHONE_VERSIONS: [&str; 3] = ["15.7.1", "16.6.1", "17.2.1"];
const PHONE_HARDWARE: [&str; 3] = ["iPhone12,1", "iPhone14,2", "iPhone14,2"];
const APP_VERSIONS: [&str; 3] = ["5.2.1", "5.9", "6.3.0"];
/// Third-party app; its name needs escaping on purpose.
pub(crate) const APP_NAME: &str = "Health & Fitness";

/// Owner's given name and localized device names, by locale.
fn persona(locale: &str) -> (&'static str, String, String) {
    let lower = locale.to_ascii_lowercase();
    let lang = lower.split(['_', '-']).next().unwrap_or("");
    let (name, watch, phone): (&str, String, String) = match lang {
        "en" => (
            "Simon",
            "Simon’s Apple Watch".into(),
            "Simon’s iPhone".into(),
        ),
        "fr" => (
            "Camille",
            "Apple Watch de Camille".into(),
            "iPhone de Camille".into(),
        ),
        "de" => (
            "Jonas",
            "Apple Watch von Jonas".into(),
            "iPhone von Jonas".into(),
        ),
        "es" => (
            "Lucía",
            "Apple Watch de Lucía".into(),
            "iPhone de Lucía".into(),
        ),
        "it" => (
            "Giulia",
            "Apple Watch di Giulia".into(),
            "iPhone di Giulia".into(),
        ),
        "fi" => ("Aino", "Ainon Apple Watch".into(), "Ainon iPhone".into()),
        "ru" => (
            "Алексей",
            "Apple Watch (Алексей)".into(),
            "iPhone (Алексей)".into(),
        ),
        "ja" => ("健太", "健太のApple Watch".into(), "健太のiPhone".into()),
        "ko" => ("지민", "지민의 Apple Watch".into(), "지민의 iPhone".into()),
        "zh" => ("小明", "小明的Apple Watch".into(), "小明的iPhone".into()),
        _ => ("Sam", "Sam’s Apple Watch".into(), "Sam’s iPhone".into()),
    };
    (name, watch, phone)
}

impl Sources {
    fn new(watch: &str, phone: &str) -> Sources {
        let make = |name: &str, version: &str, device: Option<String>| {
            let mut attrs = Vec::new();
            attrs.extend_from_slice(b" sourceName=\"");
            put_escaped(&mut attrs, name);
            attrs.extend_from_slice(b"\" sourceVersion=\"");
            put_escaped(&mut attrs, version);
            attrs.push(b'"');
            let device = device.map(|d| {
                let mut v = Vec::new();
                put_escaped(&mut v, &d);
                v.push(b'"');
                v
            });
            SourceEra { attrs, device }
        };
        let era = |i: usize| {
            [
                make(
                    watch,
                    WATCH_VERSIONS[i],
                    Some(format!(
                        ">, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:{}, software:{}>",
                        WATCH_HARDWARE[i], WATCH_VERSIONS[i]
                    )),
                ),
                make(
                    phone,
                    PHONE_VERSIONS[i],
                    Some(format!(
                        ">, name:iPhone, manufacturer:Apple Inc., model:iPhone, hardware:{}, software:{}>",
                        PHONE_HARDWARE[i], PHONE_VERSIONS[i]
                    )),
                ),
                make(APP_NAME, APP_VERSIONS[i], None),
            ]
        };
        let [a, b, c] = [era(0), era(1), era(2)];
        let [w0, p0, x0] = a;
        let [w1, p1, x1] = b;
        let [w2, p2, x2] = c;
        Sources {
            eras: [[w0, w1, w2], [p0, p1, p2], [x0, x1, x2]],
        }
    }
}

/// A record's value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val {
    Int(u64),
    /// Printed with up to this many decimals, trailing zeros dropped.
    Dec(f64, usize),
    Cat(&'static str),
    /// 0 = "nan", 1 = "", 2 = "abc".
    Junk(u8),
}

/// A record's children.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Extra {
    None,
    Motion(u8),
    Hrv,
    TimeZone,
    /// Third-party sync link (has `&amp;` in the value).
    Link,
    UserEntered,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Rec {
    pub ty: &'static str,
    pub src: Src,
    pub device: bool,
    pub unit: Option<&'static str>,
    pub created: i64,
    pub start: i64,
    pub end: i64,
    pub value: Val,
    pub extra: Extra,
}

/// Record kinds, each with its own timing and value model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    BodyMass,
    HeartRate,
    SpO2,
    BpSystolic,
    BpDiastolic,
    Respiratory,
    Steps,
    Distance,
    Basal,
    Active,
    Flights,
    Exercise,
    RestingHr,
    WalkingHr,
    Headphone,
    StandTime,
    WalkingSpeed,
    Hrv,
    Sleep,
    StandHour,
}

#[derive(Debug)]
struct TypeDef {
    id: &'static str,
    unit: Option<&'static str>,
    weight: u64,
    kind: Kind,
}

const fn t(id: &'static str, unit: &'static str, weight: u64, kind: Kind) -> TypeDef {
    TypeDef {
        id,
        unit: Some(unit),
        weight,
        kind,
    }
}

/// Record types in the order they are written (Apple writes one type after
/// the other). Weights are per mille of the non-blood-pressure records.
const TYPES: [TypeDef; 20] = [
    t("HKQuantityTypeIdentifierBodyMass", "kg", 1, Kind::BodyMass),
    t(
        "HKQuantityTypeIdentifierHeartRate",
        "count/min",
        310,
        Kind::HeartRate,
    ),
    t(
        "HKQuantityTypeIdentifierOxygenSaturation",
        "%",
        8,
        Kind::SpO2,
    ),
    t(
        "HKQuantityTypeIdentifierBloodPressureSystolic",
        "mmHg",
        0,
        Kind::BpSystolic,
    ),
    t(
        "HKQuantityTypeIdentifierBloodPressureDiastolic",
        "mmHg",
        0,
        Kind::BpDiastolic,
    ),
    t(
        "HKQuantityTypeIdentifierRespiratoryRate",
        "count/min",
        10,
        Kind::Respiratory,
    ),
    t(
        "HKQuantityTypeIdentifierStepCount",
        "count",
        150,
        Kind::Steps,
    ),
    t(
        "HKQuantityTypeIdentifierDistanceWalkingRunning",
        "km",
        110,
        Kind::Distance,
    ),
    t(
        "HKQuantityTypeIdentifierBasalEnergyBurned",
        "kcal",
        90,
        Kind::Basal,
    ),
    t(
        "HKQuantityTypeIdentifierActiveEnergyBurned",
        "kcal",
        160,
        Kind::Active,
    ),
    t(
        "HKQuantityTypeIdentifierFlightsClimbed",
        "count",
        15,
        Kind::Flights,
    ),
    t(
        "HKQuantityTypeIdentifierAppleExerciseTime",
        "min",
        25,
        Kind::Exercise,
    ),
    t(
        "HKQuantityTypeIdentifierRestingHeartRate",
        "count/min",
        3,
        Kind::RestingHr,
    ),
    t(
        "HKQuantityTypeIdentifierWalkingHeartRateAverage",
        "count/min",
        2,
        Kind::WalkingHr,
    ),
    t(
        "HKQuantityTypeIdentifierHeadphoneAudioExposure",
        "dBASPL",
        8,
        Kind::Headphone,
    ),
    t(
        "HKQuantityTypeIdentifierAppleStandTime",
        "min",
        20,
        Kind::StandTime,
    ),
    t(
        "HKQuantityTypeIdentifierWalkingSpeed",
        "km/hr",
        15,
        Kind::WalkingSpeed,
    ),
    t(
        "HKQuantityTypeIdentifierHeartRateVariabilitySDNN",
        "ms",
        6,
        Kind::Hrv,
    ),
    TypeDef {
        id: "HKCategoryTypeIdentifierSleepAnalysis",
        unit: None,
        weight: 30,
        kind: Kind::Sleep,
    },
    TypeDef {
        id: "HKCategoryTypeIdentifierAppleStandHour",
        unit: None,
        weight: 17,
        kind: Kind::StandHour,
    },
];

fn is_quantity(kind: Kind) -> bool {
    !matches!(
        kind,
        Kind::Sleep | Kind::StandHour | Kind::BpSystolic | Kind::BpDiastolic
    )
}

/// How many records of each type (index into `TYPES`), the number of blood
/// pressure correlations, and the number of quantity records eligible for junk.
fn plan_counts(records: u64) -> ([u64; 20], u64, u64) {
    let correlations = (records / 500).min(50_000);
    let rest = records - 2 * correlations;
    let total_weight: u64 = TYPES.iter().map(|t| t.weight).sum();
    let mut counts = [0u64; 20];
    let mut assigned = 0u64;
    for (i, ty) in TYPES.iter().enumerate() {
        let n = (u128::from(rest) * u128::from(ty.weight) / u128::from(total_weight)) as u64;
        counts[i] = n;
        assigned += n;
    }
    // Heart rate takes the rounding remainder.
    counts[1] += rest - assigned;
    counts[3] = correlations;
    counts[4] = correlations;
    let quantity = TYPES
        .iter()
        .zip(counts)
        .filter(|(t, _)| is_quantity(t.kind))
        .map(|(_, n)| n)
        .sum();
    (counts, correlations, quantity)
}

/// The number of quantity records a spec with `records` produces, i.e. the
/// largest accepted `junk_values`.
pub(crate) fn max_junk(records: u64) -> u64 {
    plan_counts(records).2
}

/// One reproducible blood-pressure reading.
#[derive(Debug, Clone, Copy)]
struct BpReading {
    at: i64,
    created: i64,
    systolic: u64,
    diastolic: u64,
}

/// Share of device-written records that carry a `device` attribute.
const DEVICE_PERCENT: u8 = 40;

const JUNK_KEYS: [&str; 3] = ["nan_value", "empty_value", "invalid_value"];

/// Generation state shared by the XML sections.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub rng: Rng,
    pub tl: Timeline,
    pub fmt: DateFmt,
    pub out: Out,
    pub sources: Sources,
    /// First and last instant data may start at.
    pub start: i64,
    pub end: i64,
    pub export: i64,
    /// Instants where the 2nd and 3rd software era begin.
    pub eras: [i64; 2],
    pub twelve_hour: bool,
    /// Blood-pressure readings (see `plan_bp`).
    bp: Vec<BpReading>,
    pub m: SampleManifest,
    first: i64,
    last: i64,
}

impl Ctx {
    pub(crate) fn era(&self, at: i64) -> usize {
        if at < self.eras[0] {
            0
        } else if at < self.eras[1] {
            1
        } else {
            2
        }
    }

    /// Appends ` name="yyyy-MM-dd HH:mm:ss ±HHMM"`; `attr` is ` name="`.
    #[inline]
    pub(crate) fn put_date(&mut self, attr: &[u8], utc: i64) {
        let d = self.fmt.format(&self.tl, utc);
        let b = &mut self.out.buf;
        b.extend_from_slice(attr);
        b.extend_from_slice(&d);
        b.push(b'"');
    }

    /// Appends the source attributes (and a device attribute if asked and the
    /// source is a device).
    #[inline]
    pub(crate) fn put_source(&mut self, src: Src, at: i64, device: bool) {
        let era = self.era(at);
        let s = &self.sources.eras[src as usize][era];
        self.out.buf.extend_from_slice(&s.attrs);
        if device && let Some(dev) = &s.device {
            self.out
                .buf
                .extend_from_slice(b" device=\"&lt;&lt;HKDevice: 0x");
            let pointer = 0x2_8000_0000 + (self.rng.u64(0..0x1_0000_0000) & !0xf);
            put_hex(&mut self.out.buf, pointer, 9, false);
            self.out.buf.extend_from_slice(dev);
        }
    }

    /// `<MetadataEntry key="…" value="…"/>` with pre-escaped key and value.
    pub(crate) fn put_meta(&mut self, indent: &[u8], key: &str, value: &[u8]) {
        let b = &mut self.out.buf;
        b.extend_from_slice(indent);
        b.extend_from_slice(b"<MetadataEntry key=\"");
        b.extend_from_slice(key.as_bytes());
        b.extend_from_slice(b"\" value=\"");
        b.extend_from_slice(value);
        b.extend_from_slice(b"\"/>\n");
    }

    pub(crate) fn uuid(&mut self) -> [u8; 36] {
        let hi = self.rng.u64(..);
        let lo = self.rng.u64(..);
        let mut v = Vec::with_capacity(36);
        put_hex(&mut v, hi >> 32, 8, true);
        v.push(b'-');
        put_hex(&mut v, hi >> 16, 4, true);
        v.push(b'-');
        put_hex(&mut v, 0x4000 | (hi & 0x0fff), 4, true);
        v.push(b'-');
        put_hex(&mut v, 0x8000 | (lo >> 48 & 0x3fff), 4, true);
        v.push(b'-');
        put_hex(&mut v, lo, 12, true);
        let mut out = [b'0'; 36];
        out.copy_from_slice(&v);
        out
    }

    fn write_record(&mut self, r: &Rec, nested: bool) {
        let (open, child, close): (&[u8], &[u8], &[u8]) = if nested {
            (b"  <Record type=\"", b"   ", b"  </Record>\n")
        } else {
            (b" <Record type=\"", b"  ", b" </Record>\n")
        };
        if !nested {
            self.first = self.first.min(r.start);
            self.last = self.last.max(r.start);
        }
        self.out.buf.extend_from_slice(open);
        self.out.buf.extend_from_slice(r.ty.as_bytes());
        self.out.buf.push(b'"');
        self.put_source(r.src, r.start, r.device);
        if let Some(unit) = r.unit {
            let b = &mut self.out.buf;
            b.extend_from_slice(b" unit=\"");
            b.extend_from_slice(unit.as_bytes());
            b.push(b'"');
        }
        self.put_date(b" creationDate=\"", r.created);
        self.put_date(b" startDate=\"", r.start);
        self.put_date(b" endDate=\"", r.end);
        {
            let b = &mut self.out.buf;
            b.extend_from_slice(b" value=\"");
            match r.value {
                Val::Int(v) => put_u64(b, v),
                Val::Dec(v, d) => put_trimmed(b, v, d),
                Val::Cat(c) => b.extend_from_slice(c.as_bytes()),
                Val::Junk(0) => b.extend_from_slice(b"nan"),
                Val::Junk(1) => {}
                Val::Junk(_) => b.extend_from_slice(b"abc"),
            }
            b.push(b'"');
        }
        match r.extra {
            Extra::None => {
                self.out.buf.extend_from_slice(b"/>\n");
                return;
            }
            Extra::Motion(m) => {
                self.out.buf.extend_from_slice(b">\n");
                let v: &[u8] = match m {
                    0 => b"0",
                    1 => b"1",
                    _ => b"2",
                };
                self.put_meta(child, "HKMetadataKeyHeartRateMotionContext", v);
            }
            Extra::Hrv => {
                self.out.buf.extend_from_slice(b">\n");
                self.put_hrv_list(child, r.start);
            }
            Extra::TimeZone => {
                self.out.buf.extend_from_slice(b">\n");
                let zone = self.tl.zone(r.start).name;
                self.put_meta(child, "HKTimeZone", zone.as_bytes());
            }
            Extra::Link => {
                self.out.buf.extend_from_slice(b">\n");
                self.put_link(child, r.start);
                self.put_meta(child, "HKWasUserEntered", b"0");
            }
            Extra::UserEntered => {
                self.out.buf.extend_from_slice(b">\n");
                self.put_meta(child, "HKWasUserEntered", b"1");
            }
        }
        self.out.buf.extend_from_slice(close);
    }

    /// A third-party deep link; the `&` separators are escaped as `&amp;`.
    fn put_link(&mut self, indent: &[u8], at: i64) {
        let mut v = Vec::with_capacity(96);
        v.extend_from_slice(b"hfit://measure?user=48213&amp;date=");
        put_u64(&mut v, at.max(0) as u64);
        v.extend_from_slice(b"&amp;type=1");
        self.put_meta(indent, "Health &amp; Fitness Link", &v);
    }

    /// `<HeartRateVariabilityMetadataList>` with one beat per line, times in
    /// local time: `7:47:41.86 PM` (en) or `19:47:41,86` (others).
    fn put_hrv_list(&mut self, indent: &[u8], start: i64) {
        let (_, secs) = self.tl.local(start);
        let beats = self.rng.u32(8..=40);
        let mut centis = secs as u64 * 100 + self.rng.u64(0..100);
        let mut bpm = self.rng.u32(58..84);
        let b = &mut self.out.buf;
        b.extend_from_slice(indent);
        b.extend_from_slice(b"<HeartRateVariabilityMetadataList>\n");
        for _ in 0..beats {
            bpm = (bpm + self.rng.u32(0..7)).saturating_sub(3).clamp(45, 120);
            b.extend_from_slice(indent);
            b.extend_from_slice(b" <InstantaneousBeatsPerMinute bpm=\"");
            put_u64(b, u64::from(bpm));
            b.extend_from_slice(b"\" time=\"");
            let day_cs = centis % (24 * 3600 * 100);
            let hour = day_cs / 360_000;
            let minute = day_cs / 6_000 % 60;
            let second = day_cs / 100 % 60;
            let cs = day_cs % 100;
            let shown_hour = if self.twelve_hour {
                match hour % 12 {
                    0 => 12,
                    h => h,
                }
            } else {
                hour
            };
            put_u64(b, shown_hour);
            b.push(b':');
            b.push(b'0' + (minute / 10) as u8);
            b.push(b'0' + (minute % 10) as u8);
            b.push(b':');
            b.push(b'0' + (second / 10) as u8);
            b.push(b'0' + (second % 10) as u8);
            b.push(if self.twelve_hour { b'.' } else { b',' });
            b.push(b'0' + (cs / 10) as u8);
            b.push(b'0' + (cs % 10) as u8);
            if self.twelve_hour {
                b.extend_from_slice(if hour < 12 { b" AM" } else { b" PM" });
            }
            b.extend_from_slice(b"\"/>\n");
            centis += 6_000 / u64::from(bpm);
        }
        b.extend_from_slice(indent);
        b.extend_from_slice(b"</HeartRateVariabilityMetadataList>\n");
    }

    /// Draws the blood-pressure readings once; they are written three times
    /// (systolic twins, diastolic twins, correlations).
    fn plan_bp(&mut self, count: u64) {
        let span = (self.end - self.start) as u64;
        let slot = (span / count.max(1)).max(2);
        self.bp = (0..count)
            .map(|j| {
                let at = self.start
                    + (u128::from(j) * u128::from(span) / u128::from(count)) as i64
                    + self.rng.i64(0..(slot / 2) as i64);
                let systolic = self.rng.u64(104..146);
                let diastolic = self.rng.u64(62..94).min(systolic - 25);
                BpReading {
                    at,
                    created: at + self.rng.i64(10..300),
                    systolic,
                    diastolic,
                }
            })
            .collect();
    }

    fn bp_record(&self, reading: &BpReading, systolic: bool) -> Rec {
        let (ty, value) = if systolic {
            (TYPES[3].id, reading.systolic)
        } else {
            (TYPES[4].id, reading.diastolic)
        };
        Rec {
            ty,
            src: Src::App,
            device: false,
            unit: Some("mmHg"),
            created: reading.created,
            start: reading.at,
            end: reading.at,
            value: Val::Int(value),
            extra: Extra::None,
        }
    }

    /// Generic records of one type, chronological.
    #[allow(clippy::too_many_lines)]
    fn write_type(&mut self, ty: &TypeDef, n: u64, junk: &mut JunkPlan) -> Result<(), Error> {
        if n == 0 {
            return Ok(());
        }
        let span = (self.end - self.start) as u64;
        let slot = (span / n).max(2) as i64;
        let mut junk_counts = [0u64; 3];
        let sleep_days = self.tl.local(self.end).0 - self.tl.local(self.start).0 + 1;
        let first_day = self.tl.local(self.start).0;
        for i in 0..n {
            let base = self.start + (u128::from(i) * u128::from(span) / u128::from(n)) as i64;
            let at = base + self.rng.i64(0..(slot / 2).max(1));
            let rng = &mut self.rng;
            let mut rec = Rec {
                ty: ty.id,
                src: Src::Watch,
                device: true,
                unit: ty.unit,
                created: 0,
                start: at,
                end: at,
                value: Val::Int(0),
                extra: Extra::None,
            };
            let mut created_delay = rng.i64(5..900);
            match ty.kind {
                Kind::BodyMass => {
                    let phase = i as f64 / n as f64 * std::f64::consts::TAU * 2.0;
                    let kg = 72.0 + 2.5 * sin_cos(phase).0 + rng.f64() * 0.6;
                    if rng.u8(0..10) < 8 {
                        rec.src = Src::App;
                        rec.device = false;
                        rec.value = Val::Dec(kg, 2);
                        rec.extra = Extra::Link;
                    } else {
                        rec.src = Src::Phone;
                        rec.device = false;
                        rec.value = Val::Dec(kg, 1);
                        rec.extra = Extra::UserEntered;
                        created_delay = 0;
                    }
                }
                Kind::HeartRate => {
                    let mut bpm = 56 + rng.u64(0..36);
                    if rng.u8(0..10) == 0 {
                        bpm += rng.u64(0..70);
                    }
                    if rng.u8(0..100) < 6 {
                        rec.src = Src::App;
                        rec.device = false;
                    } else {
                        let motion = match rng.u8(0..10) {
                            0..=6 => 0,
                            7..=8 => 1,
                            _ => 2,
                        };
                        rec.extra = Extra::Motion(motion);
                    }
                    rec.value = Val::Int(bpm);
                }
                Kind::SpO2 => rec.value = Val::Dec(0.93 + f64::from(rng.u8(0..8)) / 100.0, 2),
                Kind::Respiratory => {
                    rec.end = at + rng.i64(60..600);
                    rec.value = Val::Dec(12.0 + f64::from(rng.u8(0..17)) * 0.5, 1);
                }
                Kind::Steps | Kind::Distance | Kind::Flights => {
                    rec.src = if rng.u8(0..100) < 45 {
                        Src::Phone
                    } else {
                        Src::Watch
                    };
                    let (lo, hi) = if ty.kind == Kind::Flights {
                        (30, 300)
                    } else {
                        (60, 900)
                    };
                    let dur = rng.i64(lo..hi).min(slot.max(2));
                    rec.end = at + dur;
                    let steps = rng.u64(5..(dur as u64 * 2).max(6));
                    rec.value = match ty.kind {
                        Kind::Steps => Val::Int(steps),
                        Kind::Distance => Val::Dec(steps as f64 * 0.00074, 5),
                        _ => Val::Int(rng.u64(1..6)),
                    };
                }
                Kind::Basal => {
                    let dur = rng.i64(60..1_200);
                    rec.end = at + dur;
                    rec.value = Val::Dec(dur as f64 / 60.0 * (1.05 + rng.f64() * 0.2), 3);
                }
                Kind::Active => {
                    if rng.u8(0..100) < 4 {
                        rec.src = Src::App;
                        rec.device = false;
                    }
                    let dur = rng.i64(40..240);
                    rec.end = at + dur;
                    rec.value = Val::Dec(dur as f64 / 60.0 * rng.f64() * 9.0 + 0.01, 3);
                }
                Kind::Exercise => {
                    rec.end = at + 60;
                    rec.value = Val::Int(rng.u64(1..3));
                }
                Kind::StandTime => {
                    let minutes = rng.u64(1..6);
                    rec.end = at + minutes as i64 * 60;
                    rec.value = Val::Int(minutes);
                }
                Kind::RestingHr | Kind::WalkingHr => {
                    rec.end = at + rng.i64(2 * HOUR..12 * HOUR);
                    created_delay = rng.i64(HOUR..3 * HOUR);
                    rec.value = Val::Int(if ty.kind == Kind::RestingHr {
                        rng.u64(48..68)
                    } else {
                        rng.u64(86..116)
                    });
                }
                Kind::Headphone => {
                    rec.src = Src::Phone;
                    rec.end = at + rng.i64(30..1_800);
                    rec.value = Val::Dec(55.0 + rng.f64() * 30.0, 4);
                }
                Kind::WalkingSpeed => {
                    rec.src = Src::Phone;
                    rec.end = at + rng.i64(10..40);
                    rec.value = Val::Dec(3.4 + rng.f64() * 2.2, 2);
                }
                Kind::Hrv => {
                    rec.end = at + 60;
                    rec.value = Val::Dec(18.0 + rng.f64() * 75.0, 4);
                    rec.extra = Extra::Hrv;
                }
                Kind::Sleep => {
                    // Record i belongs to night `d`; the night is cut into as many
                    // consecutive segments as that night has records.
                    let days = sleep_days.max(1) as u64;
                    let d = u128::from(i) * u128::from(days) / u128::from(n);
                    let first_of =
                        |d: u128| -> u64 { (d * u128::from(n)).div_ceil(u128::from(days)) as u64 };
                    let f = first_of(d);
                    let m = (first_of(d + 1) - f).max(1);
                    let k = i - f;
                    let day = first_day + d as i64;
                    let mix = (day as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let bed = 22 * HOUR + 1_800 + (mix >> 40) as i64 % 5_400;
                    let length = 6 * HOUR + 1_800 + (mix >> 20) as i64 % (2 * HOUR);
                    let night = self.tl.utc_of_local(day, bed);
                    let seg = (length / m as i64).max(1);
                    rec.start = night + k as i64 * seg;
                    rec.end = rec.start + seg;
                    rec.extra = Extra::TimeZone;
                    created_delay = night + length - rec.end + rng.i64(600..3_600);
                    let era = self.era(rec.start);
                    let rng = &mut self.rng;
                    if k == 0 && m > 1 {
                        rec.src = Src::Phone;
                        rec.device = false;
                        rec.end = night + length;
                        rec.value = Val::Cat("HKCategoryValueSleepAnalysisInBed");
                    } else {
                        let roll = rng.u8(0..100);
                        rec.value = Val::Cat(if era == 0 {
                            if roll < 85 {
                                "HKCategoryValueSleepAnalysisAsleepUnspecified"
                            } else {
                                "HKCategoryValueSleepAnalysisAwake"
                            }
                        } else {
                            match roll {
                                0..=49 => "HKCategoryValueSleepAnalysisAsleepCore",
                                50..=64 => "HKCategoryValueSleepAnalysisAsleepDeep",
                                65..=84 => "HKCategoryValueSleepAnalysisAsleepREM",
                                _ => "HKCategoryValueSleepAnalysisAwake",
                            }
                        });
                    }
                }
                Kind::StandHour => {
                    let (day, secs) = self.tl.local(at);
                    rec.start = self.tl.utc_of_local(day, secs - secs % HOUR);
                    rec.end = rec.start + HOUR;
                    rec.value = Val::Cat(if self.rng.u8(0..10) < 7 {
                        "HKCategoryValueAppleStandHourStood"
                    } else {
                        "HKCategoryValueAppleStandHourIdle"
                    });
                    created_delay = self.rng.i64(60..1_800);
                }
                Kind::BpSystolic | Kind::BpDiastolic => {}
            }
            rec.created = rec.end + created_delay;
            // Apple writes a device on many but not all samples; 40 % keeps the
            // average record near the ~330 bytes of real exports.
            if rec.device && self.rng.u8(0..100) >= DEVICE_PERCENT {
                rec.device = false;
            }
            if is_quantity(ty.kind)
                && let Some(k) = junk.next_is_junk()
            {
                rec.value = Val::Junk(k);
                junk_counts[usize::from(k)] += 1;
            }
            self.write_record(&rec, false);
            self.out.tick()?;
        }
        *self.m.record_types.entry(ty.id.to_owned()).or_insert(0) += n;
        self.m.records += n;
        for (k, c) in JUNK_KEYS.iter().zip(junk_counts) {
            if c > 0 {
                *self.m.junk_values.entry((*k).to_owned()).or_insert(0) += c;
            }
        }
        Ok(())
    }

    fn write_bp_twins(&mut self, systolic: bool) -> Result<(), Error> {
        let count = self.bp.len() as u64;
        for j in 0..self.bp.len() {
            let reading = self.bp[j];
            let rec = self.bp_record(&reading, systolic);
            self.write_record(&rec, false);
            self.out.tick()?;
        }
        if count > 0 {
            let id = if systolic { TYPES[3].id } else { TYPES[4].id };
            *self.m.record_types.entry(id.to_owned()).or_insert(0) += count;
            self.m.records += count;
        }
        Ok(())
    }

    fn write_correlations(&mut self) -> Result<(), Error> {
        let count = self.bp.len() as u64;
        for j in 0..self.bp.len() {
            let reading = self.bp[j];
            self.out.buf.extend_from_slice(
                b" <Correlation type=\"HKCorrelationTypeIdentifierBloodPressure\"",
            );
            self.put_source(Src::App, reading.at, false);
            self.put_date(b" creationDate=\"", reading.created);
            self.put_date(b" startDate=\"", reading.at);
            self.put_date(b" endDate=\"", reading.at);
            self.out.buf.extend_from_slice(b">\n");
            self.put_link(b"  ", reading.at);
            self.put_meta(b"  ", "HKWasUserEntered", b"0");
            let dia = self.bp_record(&reading, false);
            self.write_record(&dia, true);
            let sys = self.bp_record(&reading, true);
            self.write_record(&sys, true);
            self.out.buf.extend_from_slice(b" </Correlation>\n");
            self.out.tick()?;
        }
        self.m.correlations = count;
        Ok(())
    }

    fn write_summaries(&mut self) -> Result<(), Error> {
        let first = self.tl.local(self.start).0;
        let last = self.tl.local(self.end).0;
        let newer_from = self.tl.local(self.eras[0]).0;
        let mut goal = 480 + 10 * self.rng.u64(0..25);
        let mut date = *b"0000-00-00";
        for day in first..=last {
            if self.rng.u16(0..120) == 0 {
                goal = 400 + 10 * self.rng.u64(0..40);
            }
            clock::put_ymd(&mut date, 0, day);
            let active = goal as f64 * (0.2 + self.rng.f64() * 1.2);
            let exercise = self.rng.u64(0..95);
            let stand = self.rng.u64(3..17);
            let b = &mut self.out.buf;
            b.extend_from_slice(b" <ActivitySummary dateComponents=\"");
            b.extend_from_slice(&date);
            b.extend_from_slice(b"\" activeEnergyBurned=\"");
            put_trimmed(b, active, 3);
            b.extend_from_slice(b"\" activeEnergyBurnedGoal=\"");
            put_u64(b, goal);
            b.extend_from_slice(b"\" activeEnergyBurnedUnit=\"kcal\"");
            if day >= newer_from {
                b.extend_from_slice(b" appleMoveTime=\"0\" appleMoveTimeGoal=\"0\"");
            }
            b.extend_from_slice(b" appleExerciseTime=\"");
            put_u64(b, exercise);
            b.extend_from_slice(b"\" appleExerciseTimeGoal=\"30\" appleStandHours=\"");
            put_u64(b, stand);
            b.extend_from_slice(b"\" appleStandHoursGoal=\"12\"/>\n");
            self.m.activity_summaries += 1;
            self.out.tick()?;
        }
        Ok(())
    }
}

/// Spreads `junk` evenly over `eligible` quantity records, cycling the kinds.
#[derive(Debug)]
struct JunkPlan {
    junk: u64,
    eligible: u64,
    seen: u64,
    made: u64,
}

impl JunkPlan {
    fn next_is_junk(&mut self) -> Option<u8> {
        if self.junk == 0 || self.eligible == 0 {
            return None;
        }
        let q = u128::from(self.seen);
        self.seen += 1;
        let (j, e) = (u128::from(self.junk), u128::from(self.eligible));
        if (q + 1) * j / e > q * j / e {
            let k = (self.made % 3) as u8;
            self.made += 1;
            Some(k)
        } else {
            None
        }
    }
}

/// Picks the seed-derived dates, writes the whole XML and the GPX files.
pub(crate) fn write_export(
    spec: &SampleSpec,
    xml_path: &Path,
    routes_dir: &Path,
) -> Result<(SampleManifest, Extras), Error> {
    let (counts, correlations, quantity) = plan_counts(spec.records);
    if spec.junk_values > quantity {
        return Err(Error::InvalidSpec(format!(
            "junk_values = {} but only {} of the {} records are quantity records",
            spec.junk_values, quantity, spec.records
        )));
    }

    let mut rng = Rng::with_seed(spec.seed);
    let zones = clock::zones_for_locale(&spec.locale);
    // Fixed, seed-derived end of the data (no wall clock).
    let end_day = clock::days_from_civil(2023, 1, 1) + rng.i64(0..730);
    let export = end_day * DAY + rng.i64(5 * HOUR..19 * HOUR);
    let years = rng.i64(3..=5);
    let end = export - rng.i64(HOUR..3 * HOUR);
    let start = end - years * 365 * DAY;
    let mut trips = Vec::new();
    let mut at = start + 20 * DAY;
    let mut which = 1u8;
    loop {
        at += rng.i64(120..260) * DAY + rng.i64(0..DAY);
        let length = rng.i64(6..17) * DAY + rng.i64(0..DAY);
        if at + length > end - 10 * DAY {
            break;
        }
        trips.push((at, at + length, which));
        which = 3 - which;
        at += length;
    }
    let tl = Timeline::new(zones, &trips, start - DAY, export + DAY);
    let span = end - start;
    let eras = [start + span * 3 / 10, start + span * 6 / 10];
    let (owner, watch, phone) = persona(&spec.locale);
    let lang = spec.locale.to_ascii_lowercase();
    let out = Out::create(xml_path)?;

    let mut ctx = Ctx {
        rng,
        tl,
        fmt: DateFmt::default(),
        out,
        sources: Sources::new(&watch, &phone),
        start,
        end,
        export,
        eras,
        twelve_hour: lang.starts_with("en"),
        bp: Vec::new(),
        m: SampleManifest::default(),
        first: i64::MAX,
        last: i64::MIN,
    };

    // Prolog, DTD, HealthData, ExportDate, Me.
    let birth_year = 1970 + ctx.rng.i64(0..30);
    let birth_day = clock::days_from_civil(birth_year, 1, 1) + ctx.rng.i64(0..365);
    let mut birth = *b"0000-00-00";
    clock::put_ymd(&mut birth, 0, birth_day);
    let sex = if ctx.rng.bool() {
        "HKBiologicalSexMale"
    } else {
        "HKBiologicalSexFemale"
    };
    let blood = [
        "HKBloodTypeAPositive",
        "HKBloodTypeANegative",
        "HKBloodTypeBPositive",
        "HKBloodTypeOPositive",
        "HKBloodTypeNotSet",
    ][ctx.rng.usize(0..5)];
    {
        let b = &mut ctx.out.buf;
        b.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        b.extend_from_slice(spec.dtd.text().as_bytes());
        b.extend_from_slice(b"<HealthData locale=\"");
        put_escaped(b, &spec.locale);
        b.extend_from_slice(b"\">\n");
    }
    ctx.put_date(b" <ExportDate value=\"", export);
    {
        let b = &mut ctx.out.buf;
        b.extend_from_slice(b"/>\n <Me HKCharacteristicTypeIdentifierDateOfBirth=\"");
        b.extend_from_slice(&birth);
        b.extend_from_slice(b"\" HKCharacteristicTypeIdentifierBiologicalSex=\"");
        b.extend_from_slice(sex.as_bytes());
        b.extend_from_slice(b"\" HKCharacteristicTypeIdentifierBloodType=\"");
        b.extend_from_slice(blood.as_bytes());
        b.extend_from_slice(
            b"\" HKCharacteristicTypeIdentifierFitzpatrickSkinType=\"HKFitzpatrickSkinTypeNotSet\" HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse=\"None\"/>\n",
        );
    }

    ctx.plan_bp(correlations);
    let mut junk = JunkPlan {
        junk: spec.junk_values,
        eligible: quantity,
        seen: 0,
        made: 0,
    };
    for (ty, &n) in TYPES.iter().zip(counts.iter()) {
        match ty.kind {
            Kind::BpSystolic => ctx.write_bp_twins(true)?,
            Kind::BpDiastolic => ctx.write_bp_twins(false)?,
            _ => ctx.write_type(ty, n, &mut junk)?,
        }
    }
    ctx.write_correlations()?;
    let route_names = ctx.write_workouts(spec.workouts, routes_dir)?;
    ctx.write_summaries()?;
    ctx.out.buf.extend_from_slice(b"</HealthData>\n");

    if ctx.m.records > 0 {
        let first = ctx.fmt.format(&ctx.tl, ctx.first);
        let last = ctx.fmt.format(&ctx.tl, ctx.last);
        ctx.m.first_record_start = String::from_utf8_lossy(&first).into_owned();
        ctx.m.last_record_start = String::from_utf8_lossy(&last).into_owned();
    }
    let export_text = String::from_utf8_lossy(&ctx.fmt.format(&ctx.tl, export)).into_owned();
    let (day, secs) = ctx.tl.local(export);
    let (y, mo, d) = clock::civil_from_days(day);
    let export_civil = [
        y,
        i64::from(mo),
        i64::from(d),
        secs / HOUR,
        secs / 60 % 60,
        secs % 60,
    ];
    let Ctx { out, mut m, .. } = ctx;
    m.xml_bytes = out.finish()?;
    let extras = Extras {
        route_names,
        export_civil,
        export_text,
        birth_date: String::from_utf8_lossy(&birth).into_owned(),
        owner,
    };
    Ok((m, extras))
}
