//! Unit tests for the whole generator: determinism, manifest truth, well-formed
//! XML, zip contents and names.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use quick_xml::XmlVersion;
use quick_xml::events::Event;

use crate::workouts::unique_route_name;
use crate::{
    Error, SampleManifest, SampleSpec, generate, generate_once, localized_export_name,
    max_junk_values, parse_export_date,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;
type TestResult = Res<()>;

fn small(seed: u64, locale: &str, zip: bool) -> SampleSpec {
    SampleSpec {
        records: 4_000,
        workouts: 14,
        seed,
        locale: locale.to_owned(),
        zip,
        junk_values: 30,
        dtd: Default::default(),
    }
}

fn read(path: &Path) -> Res<Vec<u8>> {
    Ok(std::fs::read(path)?)
}

fn routes_dir(m: &SampleManifest) -> std::path::PathBuf {
    m.xml_path
        .parent()
        .map(|p| p.join("workout-routes"))
        .unwrap_or_default()
}

/// Sorted (name, bytes) of every file under `dir`.
fn files_in(dir: &Path) -> Res<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            std::fs::read(entry.path())?,
        ));
    }
    out.sort();
    Ok(out)
}

#[test]
fn same_seed_gives_identical_bytes() -> TestResult {
    let a = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    let spec = small(7, "fr_FR", true);
    let ma = generate(&spec, a.path())?;
    let mb = generate(&spec, b.path())?;
    assert_eq!(read(&ma.xml_path)?, read(&mb.xml_path)?);
    assert_eq!(files_in(&routes_dir(&ma))?, files_in(&routes_dir(&mb))?);
    let (za, zb) = (
        ma.zip_path.clone().unwrap_or_default(),
        mb.zip_path.clone().unwrap_or_default(),
    );
    assert_eq!(read(&za)?, read(&zb)?);
    let strip = |m: &SampleManifest| SampleManifest {
        xml_path: Default::default(),
        zip_path: None,
        ..m.clone()
    };
    assert_eq!(strip(&ma), strip(&mb));
    Ok(())
}

#[test]
fn different_seed_gives_different_bytes() -> TestResult {
    let a = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    let ma = generate(&small(1, "en_US", false), a.path())?;
    let mb = generate(&small(2, "en_US", false), b.path())?;
    assert_ne!(read(&ma.xml_path)?, read(&mb.xml_path)?);
    assert_eq!(ma.records, mb.records);
    Ok(())
}

/// What a naive, nesting-aware scan of the XML text finds.
#[derive(Debug, Default)]
struct Scan {
    records: u64,
    record_types: BTreeMap<String, u64>,
    nested_records: u64,
    workouts: u64,
    workout_types: BTreeMap<String, u64>,
    correlations: u64,
    summaries: u64,
    junk: BTreeMap<String, u64>,
    file_refs: Vec<String>,
    first: Option<(i64, String)>,
    last: Option<(i64, String)>,
    offsets: BTreeMap<String, u64>,
    hrv_times: Vec<String>,
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let len = tag[at..].find('"')?;
    Some(&tag[at..at + len])
}

fn scan(xml: &str) -> Scan {
    let mut s = Scan::default();
    let body_at = xml.find("<HealthData ").unwrap_or(0);
    let mut depth = 0usize;
    let mut rest = &xml[body_at..];
    while let Some(lt) = rest.find('<') {
        let Some(gt) = rest[lt..].find('>') else {
            break;
        };
        let tag = &rest[lt..lt + gt + 1];
        rest = &rest[lt + gt + 1..];
        if tag.starts_with("</") {
            depth -= 1;
            continue;
        }
        let name_end = tag
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .unwrap_or(tag.len());
        let name = &tag[1..name_end];
        let self_closing = tag.ends_with("/>");
        match (depth, name) {
            (1, "Record") => {
                s.records += 1;
                let ty = attr(tag, "type").unwrap_or("?").to_owned();
                *s.record_types.entry(ty).or_insert(0) += 1;
                let key = match attr(tag, "value") {
                    Some("nan") => Some("nan_value"),
                    Some("") => Some("empty_value"),
                    Some("abc") => Some("invalid_value"),
                    _ => None,
                };
                if let Some(k) = key {
                    *s.junk.entry(k.to_owned()).or_insert(0) += 1;
                }
                if let Some(start) = attr(tag, "startDate")
                    && let Some(t) = parse_export_date(start)
                {
                    if s.first.as_ref().is_none_or(|f| t < f.0) {
                        s.first = Some((t, start.to_owned()));
                    }
                    if s.last.as_ref().is_none_or(|l| t > l.0) {
                        s.last = Some((t, start.to_owned()));
                    }
                    *s.offsets.entry(start[20..].to_owned()).or_insert(0) += 1;
                }
            }
            (1, "Workout") => {
                s.workouts += 1;
                let ty = attr(tag, "workoutActivityType").unwrap_or("?").to_owned();
                *s.workout_types.entry(ty).or_insert(0) += 1;
            }
            (1, "Correlation") => s.correlations += 1,
            (1, "ActivitySummary") => s.summaries += 1,
            (2, "Record") => s.nested_records += 1,
            (_, "FileReference") => {
                s.file_refs
                    .push(attr(tag, "path").unwrap_or_default().to_owned());
            }
            (_, "InstantaneousBeatsPerMinute") if s.hrv_times.len() < 5 => {
                s.hrv_times
                    .push(attr(tag, "time").unwrap_or_default().to_owned());
            }
            _ => {}
        }
        if !self_closing {
            depth += 1;
        }
    }
    assert_eq!(depth, 0, "unbalanced tags");
    s
}

#[test]
fn manifest_matches_the_written_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let spec = SampleSpec {
        records: 12_345,
        workouts: 40,
        seed: 99,
        locale: "fr_FR".to_owned(),
        zip: false,
        junk_values: 100,
        dtd: Default::default(),
    };
    let m = generate(&spec, dir.path())?;
    assert_eq!(
        m.xml_path,
        dir.path().join("apple_health_export/exportation.xml")
    );
    let xml = std::fs::read_to_string(&m.xml_path)?;
    assert_eq!(m.xml_bytes, xml.len() as u64);
    let s = scan(&xml);

    assert_eq!(m.records, spec.records);
    assert_eq!(s.records, m.records);
    assert_eq!(s.record_types, m.record_types);
    assert_eq!(m.record_types.values().sum::<u64>(), m.records);
    assert_eq!(s.workouts, spec.workouts);
    assert_eq!(s.workouts, m.workouts);
    assert_eq!(s.workout_types, m.workout_types);
    assert_eq!(s.correlations, m.correlations);
    assert!(m.correlations > 0);
    assert_eq!(s.nested_records, 2 * m.correlations);
    assert_eq!(
        m.record_types
            .get("HKQuantityTypeIdentifierBloodPressureSystolic")
            .copied(),
        Some(m.correlations)
    );
    assert_eq!(s.summaries, m.activity_summaries);
    assert!(m.activity_summaries > 3 * 365);
    assert_eq!(s.junk, m.junk_values);
    assert_eq!(m.junk_values.values().sum::<u64>(), spec.junk_values);
    for k in ["nan_value", "empty_value", "invalid_value"] {
        assert!(m.junk_values.get(k).copied().unwrap_or(0) >= 33, "{k}");
    }

    // First / last record start, as text and instant.
    let (first_t, first_s) = s.first.clone().unwrap_or_default();
    let (last_t, last_s) = s.last.clone().unwrap_or_default();
    assert_eq!(m.first_record_start, first_s);
    assert_eq!(m.last_record_start, last_s);
    assert_eq!(parse_export_date(&m.first_record_start), Some(first_t));
    assert!(last_t - first_t > 3 * 360 * 86_400);

    // Home offsets with DST plus travel offsets.
    for off in ["+0100", "+0200"] {
        assert!(s.offsets.get(off).copied().unwrap_or(0) > 1_000, "{off}");
    }
    assert!(s.offsets.len() >= 3, "{:?}", s.offsets);
    assert!(
        s.hrv_times
            .iter()
            .all(|t| t.contains(',') && !t.contains('M'))
    );

    // Routes: one file per FileReference, points add up.
    let routes = routes_dir(&m);
    let files = files_in(&routes)?;
    assert_eq!(files.len() as u64, m.route_files);
    assert_eq!(s.file_refs.len() as u64, m.route_files);
    assert!(m.route_files > 0);
    let mut points = 0u64;
    for (name, bytes) in &files {
        assert!(s.file_refs.contains(&format!("/workout-routes/{name}")));
        let text = String::from_utf8_lossy(bytes);
        assert!(
            text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\"")
        );
        points += text.matches("<trkpt ").count() as u64;
    }
    assert_eq!(points, m.route_points);

    let json = serde_json::to_value(&m)?;
    assert_eq!(json["records"], 12_345);
    assert_eq!(json["junk_values"]["nan_value"], 34);
    Ok(())
}

/// Parses the whole document with quick-xml (end names checked, every
/// attribute unescaped) and returns the element count.
fn parse_strictly(path: &Path) -> Res<(u64, bool)> {
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(File::open(path)?));
    let mut buf = Vec::new();
    let mut elements = 0u64;
    let mut doctype = false;
    loop {
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) | Event::Empty(e) => {
                elements += 1;
                for a in e.attributes() {
                    let a = a?;
                    a.normalized_value(XmlVersion::Implicit1_0)?;
                }
            }
            Event::DocType(_) => doctype = true,
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok((elements, doctype))
}

#[test]
fn xml_and_gpx_are_well_formed_in_several_locales() -> TestResult {
    for (i, locale) in ["en_US", "de_DE", "ru_RU", "ja_JP", "zh_TW"]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir()?;
        let spec = SampleSpec {
            records: 1_500,
            workouts: 6,
            seed: 1_000 + i as u64,
            locale: locale.to_owned(),
            zip: false,
            junk_values: 9,
            dtd: Default::default(),
        };
        let m = generate(&spec, dir.path())?;
        assert_eq!(
            m.xml_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
            Some(localized_export_name(locale).to_owned())
        );
        let (elements, doctype) = parse_strictly(&m.xml_path)?;
        assert!(doctype, "{locale}: no DOCTYPE");
        assert!(elements > m.records + m.workouts, "{locale}");
        let xml = std::fs::read_to_string(&m.xml_path)?;
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE HealthData [")
        );
        assert!(xml.contains(&format!(
            "<HealthData locale=\"{locale}\">\n <ExportDate value=\""
        )));
        assert!(!xml.contains("<!ENTITY"));
        assert!(xml.contains("sourceName=\"Health &amp; Fitness\""));
        assert!(xml.ends_with("</HealthData>\n"));
        let s = scan(&xml);
        assert_eq!(s.records, m.records);
        if locale == "en_US" {
            assert!(
                s.hrv_times
                    .iter()
                    .all(|t| t.ends_with(" AM") || t.ends_with(" PM"))
            );
            assert!(xml.contains("Simon’s Apple Watch"));
        }
        for entry in std::fs::read_dir(routes_dir(&m))? {
            parse_strictly(&entry?.path())?;
        }
        let cda = std::fs::read_to_string(m.xml_path.with_file_name("export_cda.xml"))?;
        assert_eq!(cda.matches("<ClinicalDocument ").count(), 2);
        let effective = attr(&cda, "value").unwrap_or_default();
        assert_eq!(effective.len(), 19, "{effective}");
        assert!(effective[..14].bytes().all(|b| b.is_ascii_digit()));
    }
    Ok(())
}

#[test]
fn workouts_have_modern_and_old_forms() -> TestResult {
    let dir = tempfile::tempdir()?;
    let spec = SampleSpec {
        records: 200,
        workouts: 60,
        seed: 5,
        ..SampleSpec::default()
    };
    let m = generate(&spec, dir.path())?;
    let xml = std::fs::read_to_string(&m.xml_path)?;
    let workouts: Vec<&str> = xml
        .split("\n <Workout ")
        .skip(1)
        .map(|w| w.split("\n </Workout>").next().unwrap_or(""))
        .collect();
    assert_eq!(workouts.len(), 60);
    let old = workouts
        .iter()
        .filter(|w| w.contains("totalDistance="))
        .count();
    assert_eq!(old, 6);
    for w in &workouts {
        let head = w.lines().next().unwrap_or("");
        if head.contains("totalDistance=") {
            assert!(head.contains("totalEnergyBurnedUnit=\"kcal\""));
            assert!(!w.contains("<WorkoutActivity "));
        } else {
            assert!(!head.contains("totalEnergyBurned"));
            assert!(w.contains("<WorkoutActivity uuid=\""));
            assert!(w.contains(
                "<WorkoutStatistics type=\"HKQuantityTypeIdentifierActiveEnergyBurned\""
            ));
            assert!(w.contains("unit=\"count/min\"/>"));
        }
        assert!(w.contains("key=\"HKTimeZone\""));
    }
    assert!(
        workouts
            .iter()
            .any(|w| w.contains("<FileReference path=\"/workout-routes/route_"))
    );
    assert!(xml.contains("HKWorkoutEventTypePause"));
    assert!(m.workout_types.len() >= 5);
    Ok(())
}

#[test]
fn zip_holds_localized_xml_cda_and_routes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let m = generate(&small(3, "ru_RU", true), dir.path())?;
    let zip_path = m.zip_path.clone().unwrap_or_default();
    assert_eq!(zip_path, dir.path().join("export.zip"));
    let mut archive = zip::ZipArchive::new(File::open(&zip_path)?)?;
    let names = archive
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<Vec<String>, _>>()?;
    assert!(names.contains(&"apple_health_export/экспорт.xml".to_owned()));
    assert!(names.contains(&"apple_health_export/export_cda.xml".to_owned()));
    let routes: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.starts_with("apple_health_export/workout-routes/route_") && n.ends_with(".gpx")
        })
        .collect();
    assert_eq!(routes.len() as u64, m.route_files);
    assert!(m.route_files > 0);
    assert_eq!(names.len() as u64, 2 + m.route_files);

    let mut entry = archive.by_name("apple_health_export/экспорт.xml")?;
    assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
    assert_eq!(entry.size(), m.xml_bytes);
    let mut inside = Vec::new();
    entry.read_to_end(&mut inside)?;
    drop(entry);
    assert_eq!(inside, read(&m.xml_path)?);

    let first_route = routes[0].clone();
    let mut gpx = Vec::new();
    archive.by_name(&first_route)?.read_to_end(&mut gpx)?;
    let on_disk = routes_dir(&m).join(first_route.rsplit('/').next().unwrap_or(""));
    assert_eq!(gpx, read(&on_disk)?);
    Ok(())
}

#[test]
fn localized_names() {
    let cases = [
        ("en_US", "export.xml"),
        ("en_GB", "export.xml"),
        ("fr_FR", "exportation.xml"),
        ("fr_CA", "exportation.xml"),
        ("es_ES", "exportación.xml"),
        ("it_IT", "esportazione.xml"),
        ("fi_FI", "vienti.xml"),
        ("ru_RU", "экспорт.xml"),
        ("ko_KR", "내보내기.xml"),
        ("ja_JP", "書き出したデータ.xml"),
        ("zh_CN", "导出.xml"),
        ("zh_Hans_CN", "导出.xml"),
        ("zh_TW", "輸出.xml"),
        ("zh_HK", "輸出.xml"),
        ("zh_Hant", "輸出.xml"),
        ("de_DE", "Export.xml"),
        ("pt_BR", "export.xml"),
        ("", "export.xml"),
    ];
    for (locale, name) in cases {
        assert_eq!(localized_export_name(locale), name, "{locale}");
    }
}

#[test]
fn too_much_junk_is_rejected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let max = max_junk_values(1_000);
    assert!(max > 800 && max < 1_000, "{max}");
    let spec = SampleSpec {
        records: 1_000,
        workouts: 0,
        junk_values: max + 1,
        ..SampleSpec::default()
    };
    assert!(matches!(
        generate(&spec, dir.path()),
        Err(Error::InvalidSpec(_))
    ));
    let ok = SampleSpec {
        junk_values: max,
        ..spec
    };
    let m = generate(&ok, dir.path())?;
    assert_eq!(m.junk_values.values().sum::<u64>(), max);
    Ok(())
}

#[test]
fn empty_spec_is_still_a_valid_export() -> TestResult {
    let dir = tempfile::tempdir()?;
    let spec = SampleSpec {
        records: 0,
        workouts: 0,
        zip: true,
        ..SampleSpec::default()
    };
    let m = generate(&spec, dir.path())?;
    assert_eq!(m.records, 0);
    assert!(m.first_record_start.is_empty());
    assert!(m.activity_summaries > 0);
    parse_strictly(&m.xml_path)?;
    Ok(())
}

#[test]
fn route_names_get_suffixes() {
    let mut taken = BTreeMap::new();
    let base = "route_2023-06-11_3.00pm".to_owned();
    assert_eq!(
        unique_route_name(base.clone(), &mut taken),
        "route_2023-06-11_3.00pm.gpx"
    );
    assert_eq!(
        unique_route_name(base.clone(), &mut taken),
        "route_2023-06-11_3.00pm_2.gpx"
    );
    assert_eq!(
        unique_route_name(base, &mut taken),
        "route_2023-06-11_3.00pm_3.gpx"
    );
}

#[test]
fn generate_once_reuses_a_whole_sample_and_remakes_a_different_or_broken_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("cached");
    let spec = small(3, "en_US", false);
    let first = generate_once(&spec, &out)?;
    // A marker file inside shows whether the folder was made again.
    std::fs::write(out.join("marker"), b"x")?;
    assert_eq!(generate_once(&spec, &out)?, first);
    assert!(
        out.join("marker").exists(),
        "the same spec reuses the sample"
    );

    let other = small(4, "en_US", false);
    let second = generate_once(&other, &out)?;
    assert!(!out.join("marker").exists(), "another spec starts afresh");
    assert_eq!(
        read(&second.xml_path)?,
        read(&generate(&other, &dir.path().join("fresh"))?.xml_path)?
    );

    assert!(
        second.xml_path.starts_with(&out),
        "the manifest names the files where they are"
    );

    // A file cut short after the fact: made again.
    std::fs::write(&second.xml_path, b"<partial")?;
    let third = generate_once(&other, &out)?;
    assert_eq!(third.xml_bytes, read(&third.xml_path)?.len() as u64);
    assert_eq!(third, second);
    // Nothing is left beside it.
    let beside: Vec<_> = std::fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    assert_eq!(beside.len(), 2, "{beside:?}");
    Ok(())
}
