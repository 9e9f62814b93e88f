//! Finding the export: a plain XML file, or the HealthData document inside a
//! zip, recognised by its content whatever its (localized) name.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use unicode_normalization::UnicodeNormalization;
use zip::{CompressionMethod, ZipArchive};

use crate::error::{Error, Result};
use crate::model::RoutePoint;
use crate::prolog;

/// The largest compression ratio accepted for the export entry. Deflate tops
/// out near 1032:1; real exports compress 10–30:1.
pub const MAX_COMPRESSION_RATIO: u64 = 400;
/// Entries smaller than this are never treated as bombs, whatever the ratio.
const BOMB_CHECK_MIN: u64 = 1 << 20;
/// How much of an entry is inflated to tell whether it is a HealthData document.
const SNIFF_BYTES: u64 = 16 * 1024;

/// An export ready to be streamed.
#[derive(Debug, Clone)]
pub struct ExportSource {
    path: PathBuf,
    file_size: u64,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Xml,
    Zip {
        entry: ZipEntry,
        /// The folder holding the export inside the zip, with a trailing `/`.
        export_dir: String,
        /// NFC entry name -> index, for `FileReference` routes.
        routes: HashMap<String, usize>,
        skipped_entries: Vec<SkippedEntry>,
    },
}

#[derive(Debug, Clone)]
struct ZipEntry {
    name: String,
    data_start: u64,
    compressed_size: u64,
    size: u64,
    crc32: u32,
    method: CompressionMethod,
}

/// A zip entry that was not considered, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedEntry {
    pub name: String,
    pub reason: &'static str,
}

impl ExportSource {
    /// Opens `path`, a zip or an XML file, and locates the export in it.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(path, e))?;
        if n == 4 && (magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06") {
            return Self::open_zip(path, file, file_size);
        }
        let mut head = Vec::with_capacity(SNIFF_BYTES as usize);
        file.take(SNIFF_BYTES)
            .read_to_end(&mut head)
            .map_err(|e| Error::io(path, e))?;
        match prolog::sniff(&head) {
            prolog::Sniff::HealthData => Ok(ExportSource {
                path: path.to_path_buf(),
                file_size,
                kind: Kind::Xml,
            }),
            prolog::Sniff::OtherXml(root) => Err(Error::NotHealthExport {
                path: path.to_path_buf(),
                reason: format!("its root element is <{root}>, not <HealthData>"),
            }),
            prolog::Sniff::NotXml => Err(Error::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    fn open_zip(path: &Path, file: File, file_size: u64) -> Result<Self> {
        let bad_zip = |e: zip::result::ZipError| Error::BadZip {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        let mut archive = ZipArchive::new(BufReader::new(file)).map_err(bad_zip)?;
        let mut found: Vec<(usize, String)> = Vec::new();
        let mut skipped_entries = Vec::new();
        let mut names = Vec::with_capacity(archive.len());
        let mut looked_at = 0;
        let mut unreadable: Option<String> = None;
        for index in 0..archive.len() {
            let entry = archive.by_index_raw(index).map_err(bad_zip)?;
            let name = entry_name(entry.name_raw());
            let is_file = entry.is_file();
            let escapes = entry.enclosed_name().is_none();
            drop(entry);
            if !is_file {
                continue;
            }
            if let Some(reason) = junk_reason(&name, escapes) {
                skipped_entries.push(SkippedEntry { name, reason });
                continue;
            }
            looked_at += 1;
            // Routes are never the export, and are many (one a workout):
            // inflating the head of each cost 50 ms on a 1 GB export.
            if name.to_ascii_lowercase().ends_with(".gpx") {
                names.push((index, name));
                continue;
            }
            match is_health_data_entry(&mut archive, index) {
                Ok(true) => found.push((index, name.clone())),
                Ok(false) => {}
                // An entry we cannot inflate (encrypted, another method) is
                // not the export: note it and look on.
                Err(e) => {
                    tracing::debug!(entry = %name, error = %e, "cannot inflate a zip entry");
                    unreadable.get_or_insert_with(|| format!("cannot inflate `{name}`: {e}"));
                    skipped_entries.push(SkippedEntry {
                        name: name.clone(),
                        reason: "cannot be inflated (encrypted or unsupported compression)",
                    });
                    continue;
                }
            }
            names.push((index, name));
        }
        let (index, name) = match found.as_slice() {
            // An entry that could not be read may be the export: say so.
            [] if unreadable.is_some() => {
                return Err(Error::BadZip {
                    path: path.to_path_buf(),
                    detail: unreadable.unwrap_or_default(),
                });
            }
            [] => {
                return Err(Error::NoExportInZip {
                    path: path.to_path_buf(),
                    looked_at,
                });
            }
            [one] => one.clone(),
            [first, second, ..] => {
                return Err(Error::TwoExports {
                    path: path.to_path_buf(),
                    first: first.1.clone(),
                    second: second.1.clone(),
                });
            }
        };
        let raw = archive.by_index_raw(index).map_err(bad_zip)?;
        let entry = ZipEntry {
            name: name.clone(),
            data_start: raw.data_start().ok_or_else(|| Error::BadZip {
                path: path.to_path_buf(),
                detail: format!("no data offset for `{name}`"),
            })?,
            compressed_size: raw.compressed_size(),
            size: raw.size(),
            crc32: raw.crc32(),
            method: raw.compression(),
        };
        drop(raw);
        check_bomb(path, &entry)?;
        let export_dir = match name.rfind('/') {
            Some(i) => name[..=i].to_string(),
            None => String::new(),
        };
        // Only entries that passed the junk filter: never `._route.gpx` forks.
        let routes = names
            .into_iter()
            .filter(|(_, n)| n.to_ascii_lowercase().ends_with(".gpx"))
            .map(|(i, n)| (n, i))
            .collect();
        Ok(ExportSource {
            path: path.to_path_buf(),
            file_size,
            kind: Kind::Zip {
                entry,
                export_dir,
                routes,
                skipped_entries,
            },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file on disk (the zip, or the XML).
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Size of the uncompressed XML document.
    pub fn xml_size(&self) -> u64 {
        match &self.kind {
            Kind::Xml => self.file_size,
            Kind::Zip { entry, .. } => entry.size,
        }
    }

    pub fn is_zip(&self) -> bool {
        matches!(self.kind, Kind::Zip { .. })
    }

    /// The export's name inside the zip, or the file's own name.
    pub fn xml_name(&self) -> String {
        match &self.kind {
            Kind::Xml => self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().nfc().collect())
                .unwrap_or_default(),
            Kind::Zip { entry, .. } => entry.name.clone(),
        }
    }

    /// Zip entries left aside (junk, CDA documents, unsafe names).
    pub fn skipped_entries(&self) -> &[SkippedEntry] {
        match &self.kind {
            Kind::Xml => &[],
            Kind::Zip {
                skipped_entries, ..
            } => skipped_entries,
        }
    }

    /// The uncompressed XML, streamed; owned so it can move to another thread
    /// or become an HTTP body.
    pub fn open_xml(&self) -> Result<Box<dyn Read + Send>> {
        let mut file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        match &self.kind {
            Kind::Xml => Ok(Box::new(file)),
            Kind::Zip { entry, .. } => {
                file.seek(SeekFrom::Start(entry.data_start))
                    .map_err(|e| Error::io(&self.path, e))?;
                let compressed =
                    BufReader::with_capacity(256 * 1024, file).take(entry.compressed_size);
                let inflated: Box<dyn Read + Send> = match entry.method {
                    CompressionMethod::Stored => Box::new(compressed),
                    CompressionMethod::Deflated => {
                        Box::new(flate2::bufread::DeflateDecoder::new(compressed))
                    }
                    CompressionMethod::Deflate64 => {
                        Box::new(deflate64::Deflate64Decoder::with_buffer(compressed))
                    }
                    other => {
                        return Err(Error::UnsupportedCompression {
                            path: self.path.clone(),
                            entry: entry.name.clone(),
                            method: format!("{other:?}"),
                        });
                    }
                };
                Ok(Box::new(CheckedEntry {
                    inner: inflated,
                    remaining: entry.size,
                    crc: Some(crc32fast::Hasher::new()),
                    expected_crc: entry.crc32,
                }))
            }
        }
    }

    /// A reader for the GPX files that `FileReference`s point at.
    pub fn routes(&self) -> Result<Routes> {
        Ok(Routes {
            opener: self.route_opener()?,
        })
    }

    fn route_opener(&self) -> Result<RouteOpener> {
        match &self.kind {
            Kind::Xml => Ok(RouteOpener::Dir(
                self.path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            )),
            Kind::Zip {
                export_dir, routes, ..
            } => {
                let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
                let archive = ZipArchive::new(BufReader::new(file)).map_err(|e| Error::BadZip {
                    path: self.path.clone(),
                    detail: e.to_string(),
                })?;
                Ok(RouteOpener::Zip {
                    archive: Box::new(archive),
                    export_dir: export_dir.clone(),
                    routes: routes.clone(),
                })
            }
        }
    }
}

/// Reads the route files of one export (`/workout-routes/x.gpx`, relative
/// to the export's folder).
pub struct Routes {
    opener: RouteOpener,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").finish_non_exhaustive()
    }
}

/// What loading one route file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteLoad {
    Loaded { points: usize, invalid: usize },
    Missing,
    Invalid(String),
}

impl Routes {
    /// Every route file the export holds, as `FileReference` paths
    /// (`/workout-routes/route_….gpx`), sorted.
    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = match &self.opener {
            RouteOpener::Dir(dir) => std::fs::read_dir(dir.join("workout-routes"))
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| e.file_name().into_string().ok())
                        .filter(|n| n.to_ascii_lowercase().ends_with(".gpx"))
                        .map(|n| format!("/workout-routes/{}", n.nfc().collect::<String>()))
                        .collect()
                })
                .unwrap_or_default(),
            RouteOpener::Zip {
                export_dir, routes, ..
            } => routes
                .keys()
                .filter_map(|name| name.strip_prefix(export_dir.as_str()))
                .map(|rest| format!("/{rest}"))
                .collect(),
        };
        files.sort();
        files
    }

    /// The key a `FileReference` path is known by: NFC, one leading `/`.
    pub fn key(reference: &str) -> String {
        format!(
            "/{}",
            reference.trim_start_matches('/').nfc().collect::<String>()
        )
    }

    /// Appends the track points of the route file `reference` to `points`.
    pub fn load(&mut self, reference: &str, points: &mut Vec<RoutePoint>) -> RouteLoad {
        match self.opener.read(reference) {
            Ok(Some(bytes)) => match crate::gpx::read_gpx(&bytes, points) {
                Ok(outcome) => RouteLoad::Loaded {
                    points: outcome.points,
                    invalid: outcome.invalid,
                },
                Err(message) => RouteLoad::Invalid(message),
            },
            Ok(None) => RouteLoad::Missing,
            Err(e) => RouteLoad::Invalid(e.to_string()),
        }
    }
}

enum RouteOpener {
    Dir(PathBuf),
    Zip {
        archive: Box<ZipArchive<BufReader<File>>>,
        export_dir: String,
        routes: HashMap<String, usize>,
    },
}

/// Routes larger than this are not read (Apple's are a few hundred KB).
const MAX_ROUTE_BYTES: u64 = 64 << 20;
/// The most a route's buffer is sized to before its bytes arrive.
const ROUTE_HINT: u64 = 4 << 20;

impl RouteOpener {
    /// Reads the whole route file (small, capped), or `None` if absent.
    fn read(&mut self, reference: &str) -> io::Result<Option<Vec<u8>>> {
        let relative: String = reference.trim_start_matches('/').nfc().collect();
        if Path::new(&relative)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Ok(None);
        }
        let mut out = Vec::new();
        match self {
            RouteOpener::Dir(dir) => {
                let path = dir.join(&relative);
                match File::open(&path) {
                    Ok(f) => {
                        // Sized once: `take` hides the length `read_to_end`
                        // would otherwise grow the buffer to, copy by copy.
                        let len = f.metadata().map_or(0, |m| m.len().min(MAX_ROUTE_BYTES));
                        out.reserve_exact(usize::try_from(len).unwrap_or(0));
                        f.take(MAX_ROUTE_BYTES).read_to_end(&mut out)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            RouteOpener::Zip {
                archive,
                export_dir,
                routes,
            } => {
                let wanted = format!("{export_dir}{relative}");
                let index = routes.get(&wanted).copied().or_else(|| {
                    // Tolerate a zip re-packed with another top folder.
                    let file_name = relative.rsplit('/').next().unwrap_or(&relative);
                    routes
                        .iter()
                        .find(|(name, _)| name.rsplit('/').next() == Some(file_name))
                        .map(|(_, &i)| i)
                });
                let Some(index) = index else {
                    return Ok(None);
                };
                let entry = archive.by_index(index).map_err(io::Error::other)?;
                // The size the zip declares is a hint, not a promise.
                out.reserve_exact(usize::try_from(entry.size().min(ROUTE_HINT)).unwrap_or(0));
                entry.take(MAX_ROUTE_BYTES).read_to_end(&mut out)?;
            }
        }
        Ok(Some(out))
    }
}

/// Decodes an entry name: UTF-8 when it is valid UTF-8 (macOS writes UTF-8
/// without setting the flag), CP437 otherwise, then NFC (macOS writes NFD).
fn entry_name(raw: &[u8]) -> String {
    let decoded = match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => raw.iter().map(|&b| cp437(b)).collect(),
    };
    decoded.nfc().collect()
}

fn cp437(b: u8) -> char {
    const HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
    if b < 0x80 {
        char::from(b)
    } else {
        HIGH.chars().nth(usize::from(b - 0x80)).unwrap_or('?')
    }
}

fn junk_reason(name: &str, escapes: bool) -> Option<&'static str> {
    if escapes || name.starts_with('/') || name.split(['/', '\\']).any(|c| c == "..") {
        return Some("unsafe path (escapes the archive folder)");
    }
    let file = name.rsplit('/').next().unwrap_or(name);
    if name.starts_with("__MACOSX/") || name.contains("/__MACOSX/") || file.starts_with("._") {
        return Some("macOS resource fork");
    }
    if file == ".DS_Store" {
        return Some("macOS folder metadata");
    }
    let lower = file.to_lowercase();
    if lower.ends_with(".xml") && lower.contains("_cda") {
        return Some("clinical document (CDA), not the export");
    }
    None
}

fn is_health_data_entry(
    archive: &mut ZipArchive<BufReader<File>>,
    index: usize,
) -> io::Result<bool> {
    let entry = archive.by_index(index).map_err(io::Error::other)?;
    let mut head = Vec::new();
    entry.take(SNIFF_BYTES).read_to_end(&mut head)?;
    Ok(matches!(prolog::sniff(&head), prolog::Sniff::HealthData))
}

fn check_bomb(path: &Path, entry: &ZipEntry) -> Result<()> {
    if entry.size < BOMB_CHECK_MIN {
        return Ok(());
    }
    let ratio = entry.size / entry.compressed_size.max(1);
    if ratio > MAX_COMPRESSION_RATIO {
        return Err(Error::ZipBomb {
            path: path.to_path_buf(),
            entry: entry.name.clone(),
            declared: entry.size,
            compressed: entry.compressed_size,
            ratio,
        });
    }
    Ok(())
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Inflated entry bytes, held to the size and CRC the archive declares: a
/// stream that inflates past its declared size is a bomb, not an export.
struct CheckedEntry {
    inner: Box<dyn Read + Send>,
    remaining: u64,
    /// `None` once the checksum has been verified at the end.
    crc: Option<crc32fast::Hasher>,
    expected_crc: u32,
}

impl Read for CheckedEntry {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for one byte more than remains, to notice an overrun.
        let want = buf
            .len()
            .min(usize::try_from(self.remaining.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.remaining {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the zip entry inflates past its declared size (zip bomb or corrupt archive)",
            ));
        }
        self.remaining -= n as u64;
        if n > 0 {
            if let Some(crc) = self.crc.as_mut() {
                crc.update(&buf[..n]);
            }
            return Ok(n);
        }
        if self.remaining > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the zip entry ends {} bytes before its declared size",
                    self.remaining
                ),
            ));
        }
        if let Some(crc) = self.crc.take()
            && crc.finalize() != self.expected_crc
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the zip entry's checksum does not match its content (corrupt archive)",
            ));
        }
        Ok(0)
    }
}
