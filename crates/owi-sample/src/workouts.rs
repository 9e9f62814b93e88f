//! `<Workout>` elements (iOS 16+ form, with every 10th in the older form with
//! total* attributes) and the GPX route files they point at.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Error;
use crate::body::{Ctx, Src};
use crate::clock::{self, HOUR, format_utc_z};
use crate::out::{put_fixed, put_trimmed, put_u64, sin_cos};

#[derive(Debug)]
struct Activity {
    id: &'static str,
    weight: u32,
    minutes: (i64, i64),
    /// Average speed in m/s (0: no distance).
    speed: f64,
    distance_type: Option<&'static str>,
    /// Chance (per cent) the workout is outdoors and has a route.
    outdoor: u8,
    mets: f64,
    heart_rate: f64,
}

const ACTIVITIES: [Activity; 8] = [
    Activity {
        id: "HKWorkoutActivityTypeRunning",
        weight: 25,
        minutes: (20, 60),
        speed: 2.9,
        distance_type: Some("HKQuantityTypeIdentifierDistanceWalkingRunning"),
        outdoor: 85,
        mets: 9.8,
        heart_rate: 152.0,
    },
    Activity {
        id: "HKWorkoutActivityTypeWalking",
        weight: 25,
        minutes: (15, 90),
        speed: 1.4,
        distance_type: Some("HKQuantityTypeIdentifierDistanceWalkingRunning"),
        outdoor: 95,
        mets: 3.8,
        heart_rate: 104.0,
    },
    Activity {
        id: "HKWorkoutActivityTypeCycling",
        weight: 15,
        minutes: (30, 120),
        speed: 6.5,
        distance_type: Some("HKQuantityTypeIdentifierDistanceCycling"),
        outdoor: 80,
        mets: 7.5,
        heart_rate: 134.0,
    },
    Activity {
        id: "HKWorkoutActivityTypeSwimming",
        weight: 8,
        minutes: (20, 60),
        speed: 0.8,
        distance_type: Some("HKQuantityTypeIdentifierDistanceSwimming"),
        outdoor: 0,
        mets: 7.0,
        heart_rate: 128.0,
    },
    Activity {
        id: "HKWorkoutActivityTypeTraditionalStrengthTraining",
        weight: 12,
        minutes: (20, 60),
        speed: 0.0,
        distance_type: None,
        outdoor: 0,
        mets: 5.0,
        heart_rate: 118.0,
    },
    Activity {
        id: "HKWorkoutActivityTypeYoga",
        weight: 6,
        minutes: (15, 60),
        speed: 0.0,
        distance_type: None,
        outdoor: 0,
        mets: 3.0,
        heart_rate: 92.0,
    },
    Activity {
        id: "HKWorkoutActivityTypeHighIntensityIntervalTraining",
        weight: 6,
        minutes: (10, 40),
        speed: 0.0,
        distance_type: None,
        outdoor: 0,
        mets: 9.0,
        heart_rate: 150.0,
    },
    Activity {
        id: "HKWorkoutActivityTypeHiking",
        weight: 3,
        minutes: (60, 240),
        speed: 1.1,
        distance_type: Some("HKQuantityTypeIdentifierDistanceWalkingRunning"),
        outdoor: 100,
        mets: 6.0,
        heart_rate: 121.0,
    },
];

const BODY_KG: f64 = 72.0;

/// One planned workout.
#[derive(Debug)]
struct Plan {
    act: &'static Activity,
    start: i64,
    end: i64,
    /// (pause at, resume at)
    pause: Option<(i64, i64)>,
    indoor: bool,
    old_style: bool,
}

impl Plan {
    fn active_secs(&self) -> i64 {
        let paused = self.pause.map_or(0, |(a, b)| b - a);
        self.end - self.start - paused
    }
}

/// What a route contributed.
#[derive(Debug, Default)]
struct RouteStats {
    meters: f64,
    ascent_cm: f64,
    points: u64,
}

/// Appends an f64 in Rust's shortest round-trip form (Apple prints full
/// double precision, e.g. `32.51666666666667`).
fn put_shortest(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(v.to_string().as_bytes());
}

/// `base.gpx` the first time, then `base_2.gpx`, `base_3.gpx` …
pub(crate) fn unique_route_name(base: String, taken: &mut BTreeMap<String, u32>) -> String {
    let n = taken.entry(base.clone()).or_insert(0);
    *n += 1;
    if *n == 1 {
        format!("{base}.gpx")
    } else {
        format!("{base}_{n}.gpx")
    }
}

impl Ctx {
    /// Writes `count` workouts (and their GPX files); returns the GPX names.
    pub(crate) fn write_workouts(
        &mut self,
        count: u64,
        routes_dir: &Path,
    ) -> Result<Vec<String>, Error> {
        let mut names: Vec<String> = Vec::new();
        let mut taken: BTreeMap<String, u32> = BTreeMap::new();
        let mut gpx: Vec<u8> = Vec::new();
        let total_weight: u32 = ACTIVITIES.iter().map(|a| a.weight).sum();
        let span = (self.end - self.start) as u64;
        for i in 0..count {
            let mut roll = self.rng.u32(0..total_weight);
            let mut act = &ACTIVITIES[0];
            for a in &ACTIVITIES {
                if roll < a.weight {
                    act = a;
                    break;
                }
                roll -= a.weight;
            }
            let slot = (span / count).max(2) as i64;
            let base = self.start
                + (u128::from(i) * u128::from(span) / u128::from(count)) as i64
                + self.rng.i64(0..(slot / 2).max(1));
            // Move the start to a plausible local time of day (06:00–20:59).
            let (day, secs) = self.tl.local(base);
            let start = self
                .tl
                .utc_of_local(day, 6 * HOUR + secs % (15 * HOUR))
                .min(self.end - 5 * HOUR);
            let minutes = self.rng.i64(act.minutes.0..=act.minutes.1);
            let mut active = minutes * 60 + self.rng.i64(0..60);
            if count > 1000 {
                // Keep dense benchmarks from overlapping too much.
                active = active.min((slot * 2 / 3).max(300));
            }
            let pause = if active > 900 && self.rng.u8(0..100) < 30 {
                let at = start + active * 2 / 5 + self.rng.i64(0..60);
                Some((at, at + self.rng.i64(30..300)))
            } else {
                None
            };
            let paused = pause.map_or(0, |(a, b)| b - a);
            let indoor = act.outdoor == 0 || self.rng.u8(0..100) >= act.outdoor;
            let plan = Plan {
                act,
                start,
                end: start + active + paused,
                pause,
                indoor,
                old_style: i % 10 == 9,
            };
            let route = if !plan.indoor && act.speed > 0.0 {
                let name = self.route_name(plan.start, &mut taken);
                let stats = self.write_gpx(&plan, &name, routes_dir, &mut gpx)?;
                Some((name, stats))
            } else {
                None
            };
            self.write_workout(&plan, route.as_ref());
            if let Some((name, stats)) = route {
                self.m.route_files += 1;
                self.m.route_points += stats.points;
                names.push(name);
            }
            *self.m.workout_types.entry(act.id.to_owned()).or_insert(0) += 1;
            self.m.workouts += 1;
            self.out.tick()?;
        }
        Ok(names)
    }

    /// `route_2023-06-11_3.00pm.gpx`, with `_2`, `_3` … for repeats.
    fn route_name(&self, start: i64, taken: &mut BTreeMap<String, u32>) -> String {
        let (day, secs) = self.tl.local(start);
        let mut date = *b"0000-00-00";
        clock::put_ymd(&mut date, 0, day);
        let hour = secs / HOUR;
        let minute = secs / 60 % 60;
        let h12 = match hour % 12 {
            0 => 12,
            h => h,
        };
        let ampm = if hour < 12 { "am" } else { "pm" };
        let base = format!(
            "route_{}_{}.{:02}{}",
            String::from_utf8_lossy(&date),
            h12,
            minute,
            ampm
        );
        unique_route_name(base, taken)
    }

    /// Writes one GPX 1.1 file, one point every 2–5 s while not paused.
    fn write_gpx(
        &mut self,
        plan: &Plan,
        name: &str,
        routes_dir: &Path,
        buf: &mut Vec<u8>,
    ) -> Result<RouteStats, Error> {
        let zone = *self.tl.zone(plan.start);
        let rng = &mut self.rng;
        let mut lat = zone.lat + (rng.f64() - 0.5) * 0.04;
        let mut lon = zone.lon + (rng.f64() - 0.5) * 0.06;
        let mut ele = 20.0 + rng.f64() * 80.0;
        let mut heading = rng.f64() * 360.0;
        let mut stats = RouteStats::default();
        let (day, secs) = self.tl.local(plan.start);
        let mut date = *b"0000-00-00";
        clock::put_ymd(&mut date, 0, day);
        let hour = secs / HOUR;
        let h12 = match hour % 12 {
            0 => 12,
            h => h,
        };

        buf.clear();
        buf.extend_from_slice(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"Apple Health Export\" xmlns=\"http://www.topografix.com/GPX/1/1\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd\">\n  <metadata>\n    <time>",
        );
        buf.extend_from_slice(&format_utc_z(self.export));
        buf.extend_from_slice(b"</time>\n  </metadata>\n  <trk>\n    <name>Route ");
        buf.extend_from_slice(&date);
        buf.push(b' ');
        put_u64(buf, h12 as u64);
        buf.push(b':');
        let minute = secs / 60 % 60;
        buf.push(b'0' + (minute / 10) as u8);
        buf.push(b'0' + (minute % 10) as u8);
        buf.extend_from_slice(if hour < 12 { b"am" } else { b"pm" });
        buf.extend_from_slice(b"</name>\n    <trkseg>\n");

        let rng = &mut self.rng;
        let mut t = plan.start + rng.i64(0..4);
        while t < plan.end {
            let dt = rng.i64(2..=5);
            if let Some((a, b)) = plan.pause
                && t >= a
                && t < b
            {
                t = b;
                continue;
            }
            heading = (heading + (rng.f64() - 0.5) * 30.0).rem_euclid(360.0);
            let speed = plan.act.speed * (0.8 + rng.f64() * 0.4);
            let step = speed * dt as f64;
            let (sin, cos) = sin_cos(heading.to_radians());
            lat += step * cos / 111_320.0;
            lon += step * sin / (111_320.0 * sin_cos(lat.to_radians()).1);
            let climb = (rng.f64() - 0.48) * 0.6;
            ele += climb;
            if climb > 0.0 {
                stats.ascent_cm += climb * 100.0;
            }
            stats.meters += step;
            stats.points += 1;

            buf.extend_from_slice(b"      <trkpt lon=\"");
            put_fixed(buf, lon, 6);
            buf.extend_from_slice(b"\" lat=\"");
            put_fixed(buf, lat, 6);
            buf.extend_from_slice(b"\"><ele>");
            put_fixed(buf, ele, 6);
            buf.extend_from_slice(b"</ele><time>");
            buf.extend_from_slice(&format_utc_z(t));
            buf.extend_from_slice(b"</time><extensions><speed>");
            put_fixed(buf, speed, 6);
            buf.extend_from_slice(b"</speed><course>");
            put_fixed(buf, heading, 6);
            buf.extend_from_slice(b"</course><hAcc>");
            put_fixed(buf, 2.0 + rng.f64() * 8.0, 6);
            buf.extend_from_slice(b"</hAcc><vAcc>");
            put_fixed(buf, 1.5 + rng.f64() * 6.0, 6);
            buf.extend_from_slice(b"</vAcc></extensions></trkpt>\n");
            t += dt;
        }
        buf.extend_from_slice(b"    </trkseg>\n  </trk>\n</gpx>\n");
        let path = routes_dir.join(name);
        std::fs::write(&path, &buf[..]).map_err(|e| Error::io(&path, e))?;
        Ok(stats)
    }

    fn put_stat_open(&mut self, indent: &[u8], ty: &str, from: i64, to: i64) {
        self.out.buf.extend_from_slice(indent);
        self.out
            .buf
            .extend_from_slice(b"<WorkoutStatistics type=\"");
        self.out.buf.extend_from_slice(ty.as_bytes());
        self.out.buf.push(b'"');
        self.put_date(b" startDate=\"", from);
        self.put_date(b" endDate=\"", to);
    }

    fn put_sum_stat(&mut self, indent: &[u8], ty: &str, from: i64, to: i64, sum: f64, unit: &str) {
        self.put_stat_open(indent, ty, from, to);
        let b = &mut self.out.buf;
        b.extend_from_slice(b" sum=\"");
        put_trimmed(b, sum, 5);
        b.extend_from_slice(b"\" unit=\"");
        b.extend_from_slice(unit.as_bytes());
        b.extend_from_slice(b"\"/>\n");
    }

    fn put_event(&mut self, indent: &[u8], ty: &str, at: i64, minutes: Option<f64>) {
        self.out.buf.extend_from_slice(indent);
        self.out.buf.extend_from_slice(b"<WorkoutEvent type=\"");
        self.out.buf.extend_from_slice(ty.as_bytes());
        self.out.buf.push(b'"');
        self.put_date(b" date=\"", at);
        if let Some(m) = minutes {
            let b = &mut self.out.buf;
            b.extend_from_slice(b" duration=\"");
            put_shortest(b, m);
            b.extend_from_slice(b"\" durationUnit=\"min\"");
        }
        self.out.buf.extend_from_slice(b"/>\n");
    }

    #[allow(clippy::too_many_lines)]
    fn write_workout(&mut self, plan: &Plan, route: Option<&(String, RouteStats)>) {
        let act = plan.act;
        let active = plan.active_secs();
        let hours = active as f64 / 3600.0;
        let distance_m = match route {
            Some((_, stats)) => stats.meters,
            None => act.speed * active as f64 * (0.9 + self.rng.f64() * 0.2),
        };
        let active_kcal = (act.mets - 1.0) * BODY_KG * hours * (0.9 + self.rng.f64() * 0.2);
        let basal_kcal = 1.05 * BODY_KG * hours;
        let created = plan.end + self.rng.i64(5..120);
        let swimming = act.id.ends_with("Swimming");

        self.out
            .buf
            .extend_from_slice(b" <Workout workoutActivityType=\"");
        self.out.buf.extend_from_slice(act.id.as_bytes());
        self.out.buf.extend_from_slice(b"\" duration=\"");
        put_shortest(&mut self.out.buf, active as f64 / 60.0);
        self.out.buf.extend_from_slice(b"\" durationUnit=\"min\"");
        if plan.old_style {
            let b = &mut self.out.buf;
            b.extend_from_slice(b" totalDistance=\"");
            put_shortest(b, (distance_m / 1000.0 * 1e9).round() / 1e9);
            b.extend_from_slice(b"\" totalDistanceUnit=\"km\" totalEnergyBurned=\"");
            put_shortest(b, (active_kcal * 1e9).round() / 1e9);
            b.extend_from_slice(b"\" totalEnergyBurnedUnit=\"kcal\"");
        }
        self.put_source(Src::Watch, plan.start, true);
        self.put_date(b" creationDate=\"", created);
        self.put_date(b" startDate=\"", plan.start);
        self.put_date(b" endDate=\"", plan.end);
        self.out.buf.extend_from_slice(b">\n");

        // Metadata.
        let zone = self.tl.zone(plan.start).name;
        let indoor: &[u8] = if plan.indoor { b"1" } else { b"0" };
        self.put_meta(b"  ", "HKIndoorWorkout", indoor);
        self.put_meta(b"  ", "HKTimeZone", zone.as_bytes());
        if !plan.indoor {
            let mut v = Vec::with_capacity(16);
            put_trimmed(&mut v, 30.0 + self.rng.f64() * 60.0, 1);
            v.extend_from_slice(b" degF");
            self.put_meta(b"  ", "HKWeatherTemperature", &v);
            v.clear();
            // Real exports print humidity scaled by 100 ("6700 %" = 67 %).
            put_u64(&mut v, 100 * self.rng.u64(25..98));
            v.extend_from_slice(b" %");
            self.put_meta(b"  ", "HKWeatherHumidity", &v);
        }
        if !plan.old_style {
            let mut v = Vec::with_capacity(24);
            put_trimmed(&mut v, act.mets * (0.85 + self.rng.f64() * 0.3), 5);
            v.extend_from_slice(" kcal/hr·kg".as_bytes());
            self.put_meta(b"  ", "HKAverageMETs", &v);
        }
        if let Some((_, stats)) = route {
            let mut v = Vec::with_capacity(16);
            put_u64(&mut v, stats.ascent_cm.round() as u64);
            v.extend_from_slice(b" cm");
            self.put_meta(b"  ", "HKElevationAscended", &v);
        }
        if swimming {
            self.put_meta(b"  ", "HKSwimmingLocationType", b"1");
            self.put_meta(b"  ", "HKLapLength", b"25 m");
        }

        // Events: segments over the active time, pause/resume, laps.
        let segments = if act.distance_type.is_some() {
            self.rng.i64(1..=3)
        } else {
            self.rng.i64(0..=1)
        };
        let seg_len = active / segments.max(1);
        let mut seg_events = Vec::with_capacity(3);
        for s in 0..segments {
            let mut at = plan.start + s * seg_len;
            if let Some((a, b)) = plan.pause
                && at >= a
            {
                at += b - a;
            }
            seg_events.push((at, seg_len as f64 / 60.0));
            self.put_event(
                b"  ",
                "HKWorkoutEventTypeSegment",
                at,
                Some(seg_len as f64 / 60.0),
            );
        }
        if let Some((a, b)) = plan.pause {
            self.put_event(b"  ", "HKWorkoutEventTypePause", a, None);
            self.put_event(b"  ", "HKWorkoutEventTypeResume", b, None);
        }
        if swimming {
            let laps = (distance_m / 50.0).floor() as i64;
            for lap in 0..laps.min(6) {
                let at = plan.start + (lap + 1) * active / (laps + 1);
                let minutes = active as f64 / (laps + 1) as f64 / 60.0;
                self.put_event(b"  ", "HKWorkoutEventTypeLap", at, Some(minutes));
            }
        }

        let (distance_sum, distance_unit) = if swimming {
            (distance_m.round(), "m")
        } else {
            (distance_m / 1000.0, "km")
        };

        if !plan.old_style {
            let uuid = self.uuid();
            self.out
                .buf
                .extend_from_slice(b"  <WorkoutActivity uuid=\"");
            self.out.buf.extend_from_slice(&uuid);
            self.out.buf.push(b'"');
            self.put_date(b" startDate=\"", plan.start);
            self.put_date(b" endDate=\"", plan.end);
            self.out.buf.extend_from_slice(b" duration=\"");
            put_shortest(&mut self.out.buf, active as f64 / 60.0);
            self.out
                .buf
                .extend_from_slice(b"\" durationUnit=\"min\">\n");
            for (at, minutes) in seg_events {
                self.put_event(b"   ", "HKWorkoutEventTypeSegment", at, Some(minutes));
            }
            self.put_sum_stat(
                b"   ",
                "HKQuantityTypeIdentifierActiveEnergyBurned",
                plan.start,
                plan.end,
                active_kcal,
                "kcal",
            );
            if let Some(dt) = act.distance_type {
                self.put_sum_stat(
                    b"   ",
                    dt,
                    plan.start,
                    plan.end,
                    distance_sum,
                    distance_unit,
                );
            }
            self.put_meta(b"   ", "HKIndoorWorkout", indoor);
            self.out.buf.extend_from_slice(b"  </WorkoutActivity>\n");

            self.put_sum_stat(
                b"  ",
                "HKQuantityTypeIdentifierActiveEnergyBurned",
                plan.start,
                plan.end,
                active_kcal,
                "kcal",
            );
            self.put_sum_stat(
                b"  ",
                "HKQuantityTypeIdentifierBasalEnergyBurned",
                plan.start,
                plan.end,
                basal_kcal,
                "kcal",
            );
            if let Some(dt) = act.distance_type {
                self.put_sum_stat(b"  ", dt, plan.start, plan.end, distance_sum, distance_unit);
            }
            if act.id.ends_with("Running") || act.id.ends_with("Walking") {
                let steps = distance_m / if act.speed > 2.0 { 1.1 } else { 0.75 };
                self.put_sum_stat(
                    b"  ",
                    "HKQuantityTypeIdentifierStepCount",
                    plan.start,
                    plan.end,
                    steps.round(),
                    "count",
                );
            }
            let average = act.heart_rate + (self.rng.f64() - 0.5) * 16.0;
            let minimum = average - 25.0 - self.rng.f64() * 20.0;
            let maximum = average + 10.0 + self.rng.f64() * 25.0;
            self.put_stat_open(
                b"  ",
                "HKQuantityTypeIdentifierHeartRate",
                plan.start,
                plan.end,
            );
            let b = &mut self.out.buf;
            b.extend_from_slice(b" average=\"");
            put_trimmed(b, average, 5);
            b.extend_from_slice(b"\" minimum=\"");
            put_trimmed(b, minimum.round(), 0);
            b.extend_from_slice(b"\" maximum=\"");
            put_trimmed(b, maximum.round(), 0);
            b.extend_from_slice(b"\" unit=\"count/min\"/>\n");
        }

        if let Some((name, _)) = route {
            self.out.buf.extend_from_slice(b"  <WorkoutRoute");
            self.put_source(Src::Watch, plan.start, true);
            let route_created = created + self.rng.i64(1..30);
            self.put_date(b" creationDate=\"", route_created);
            self.put_date(b" startDate=\"", plan.start);
            self.put_date(b" endDate=\"", plan.end);
            self.out.buf.extend_from_slice(b">\n");
            self.put_meta(b"   ", "HKMetadataKeySyncVersion", b"2");
            let uuid = self.uuid();
            self.put_meta(b"   ", "HKMetadataKeySyncIdentifier", &uuid);
            let b = &mut self.out.buf;
            b.extend_from_slice(b"   <FileReference path=\"/workout-routes/");
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(b"\"/>\n  </WorkoutRoute>\n");
        }
        self.out.buf.extend_from_slice(b" </Workout>\n");
    }
}
