//! Replays every fuzz target's committed corpus (`fuzz/corpus/<target>/`,
//! seeds and the crashes fuzzing found), then seeded mutations of it, on
//! stable Rust: CI runs what cargo-fuzz runs, deterministically.

use std::path::{Path, PathBuf};

/// Mutations per target; the whole replay stays well under 30 s in debug.
const MUTATIONS: usize = 1_500;

/// Fragments that move an XML or zip parser into its rarer states.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"<!--",
    b"-->",
    b"<![CDATA[",
    b"]]>",
    b"<!DOCTYPE HealthData [",
    b"<!ENTITY x \"y\">",
    b"]>",
    b"&amp;",
    b"&#x1F600;",
    b"&#11;",
    b"&unknown;",
    b"\"",
    b"'",
    b"=",
    b"<Record type=\"HKQuantityTypeIdentifierHeartRate\" startDate=\"2020-03-03 09:10:00 -0800\" endDate=\"2020-03-03 09:10:00 -0800\" value=\"1\">",
    b"</Record>",
    b"<MetadataEntry key=\"k\" value=\"v\"/>",
    b"<HeartRateVariabilityMetadataList>",
    b"<InstantaneousBeatsPerMinute bpm=\"60\" time=\"11:59:59 PM\"/>",
    b"<Workout workoutActivityType=\"HKWorkoutActivityTypeRunning\" startDate=\"2020-03-03 07:31:00 -0800\" endDate=\"2020-03-03 08:31:00 -0800\">",
    b"</Workout>",
    b"<Location date=\"2016-05-01 07:00:01 +0100\" latitude=\"51.5\" longitude=\"-0.12\"/>",
    b"</HealthData>",
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.xml\"\r\n\r\n",
    b"\r\n--b--\r\n",
];

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no seeds", dir.display());
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect()
}

/// One seeded edit of `input`: flip, insert, delete, duplicate, splice a
/// token, or cut.
fn mutate(rng: &mut fastrand::Rng, input: &mut Vec<u8>) {
    let len = input.len();
    let at = rng.usize(..=len);
    match rng.u8(..6) {
        0 if len > 0 => {
            let i = rng.usize(..len);
            input[i] ^= 1 << rng.u8(..8);
        }
        1 => input.insert(at, rng.u8(..)),
        2 if len > 0 => {
            let end = (at + rng.usize(1..64)).min(len);
            input.drain(at..end);
        }
        3 if len > 0 => {
            let start = rng.usize(..len);
            let end = (start + rng.usize(1..256)).min(len);
            let copy = input[start..end].to_vec();
            let times = rng.usize(1..8);
            for _ in 0..times {
                input.splice(at..at, copy.iter().copied());
            }
        }
        4 => {
            let token = TOKENS[rng.usize(..TOKENS.len())];
            input.splice(at..at, token.iter().copied());
        }
        _ => input.truncate(at),
    }
}

fn replay(target: &str, run: fn(&[u8])) {
    let seeds = corpus(target);
    for (path, bytes) in &seeds {
        eprintln!("{target}: {}", path.display());
        run(bytes);
    }
    let mut rng = fastrand::Rng::with_seed(0x0f_0e_57);
    for _ in 0..MUTATIONS {
        let (_, seed) = &seeds[rng.usize(..seeds.len())];
        let mut input = seed.clone();
        for _ in 0..rng.usize(1..5) {
            mutate(&mut rng, &mut input);
        }
        run(&input);
    }
}

#[test]
fn export_xml() {
    replay("export_xml", owi_fuzz_cases::export_xml);
}

#[test]
fn export_zip() {
    replay("export_zip", owi_fuzz_cases::export_zip);
}

#[test]
fn outgoing() {
    replay("outgoing", owi_fuzz_cases::outgoing);
}

#[test]
fn server_requests() {
    replay("server_requests", owi_fuzz_cases::server_requests);
}

#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = owi_fuzz_cases::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["export_xml", "export_zip", "outgoing", "server_requests"]
    );
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for name in names {
        assert!(
            fuzz.join(format!("{name}.rs")).is_file(),
            "no cargo-fuzz target {name}"
        );
    }
}
