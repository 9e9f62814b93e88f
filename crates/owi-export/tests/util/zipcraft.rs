//! A tiny zip writer with full control over what the `zip` crate would
//! normalise: the UTF-8 flag, raw name bytes and declared sizes.
//!
//! Only what the tests need: stored or deflated entries, one local header
//! per entry, a central directory and an end record (no zip64, no extra
//! fields, no data descriptors). Local and central headers always agree,
//! so readers that cross-check them accept the archive.

use std::io::Write;

/// General purpose flag bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 1 << 11;
/// 2024-01-01 in MS-DOS date format.
const DOS_DATE: u16 = ((2024 - 1980) << 9) | (1 << 5) | 1;
const DOS_TIME: u16 = 12 << 11;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Stored,
    Deflated,
}

/// One entry to write.
#[derive(Debug, Clone)]
pub struct Entry {
    name: Vec<u8>,
    data: Vec<u8>,
    method: Method,
    utf8_flag: bool,
    declared_size: Option<u32>,
}

impl Entry {
    /// A deflated file entry whose name is written as UTF-8 with the flag set.
    pub fn new(name: &str, data: impl Into<Vec<u8>>) -> Self {
        Entry {
            name: name.as_bytes().to_vec(),
            data: data.into(),
            method: Method::Deflated,
            utf8_flag: true,
            declared_size: None,
        }
    }

    /// A directory entry (`name` ends with `/`).
    pub fn dir(name: &str) -> Self {
        assert!(name.ends_with('/'), "directory names end with `/`");
        Entry::new(name, Vec::new()).stored()
    }

    pub fn stored(mut self) -> Self {
        self.method = Method::Stored;
        self
    }

    /// Writes the name bytes without the UTF-8 flag, as macOS's Archive
    /// Utility does for UTF-8 names.
    pub fn without_utf8_flag(mut self) -> Self {
        self.utf8_flag = false;
        self
    }

    /// Replaces the name with arbitrary bytes (flag unchanged).
    pub fn raw_name(mut self, name: &[u8]) -> Self {
        self.name = name.to_vec();
        self
    }

    /// Declares an uncompressed size other than the data's real one (in both
    /// the local header and the central directory).
    pub fn declared_size(mut self, size: u32) -> Self {
        self.declared_size = Some(size);
        self
    }
}

/// Deflates `data` (raw deflate, as zip stores it).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(data)
        .unwrap_or_else(|e| panic!("deflating into memory cannot fail: {e}"));
    encoder
        .finish()
        .unwrap_or_else(|e| panic!("deflating into memory cannot fail: {e}"))
}

fn u16_of(n: usize, what: &str) -> u16 {
    u16::try_from(n).unwrap_or_else(|_| panic!("{what} ({n}) does not fit a zip u16 field"))
}

fn u32_of(n: usize, what: &str) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("{what} ({n}) needs zip64, not supported here"))
}

/// Builds the bytes of a zip archive holding `entries`, in order.
pub fn build(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for entry in entries {
        let payload = match entry.method {
            Method::Stored => entry.data.clone(),
            Method::Deflated => deflate(&entry.data),
        };
        let crc = crc32fast::hash(&entry.data);
        let size = entry
            .declared_size
            .unwrap_or_else(|| u32_of(entry.data.len(), "entry size"));
        let compressed = u32_of(payload.len(), "compressed size");
        let flags = if entry.utf8_flag { FLAG_UTF8 } else { 0 };
        let method: u16 = match entry.method {
            Method::Stored => 0,
            Method::Deflated => 8,
        };
        let name_len = u16_of(entry.name.len(), "name length");
        let local_offset = u32_of(out.len(), "local header offset");

        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&DOS_TIME.to_le_bytes());
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&compressed.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra length
        out.extend_from_slice(&entry.name);
        out.extend_from_slice(&payload);

        // Central directory header.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by: MS-DOS, 2.0
        central.extend_from_slice(&20u16.to_le_bytes()); // version needed
        central.extend_from_slice(&flags.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&DOS_TIME.to_le_bytes());
        central.extend_from_slice(&DOS_DATE.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&compressed.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // extra length
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk number
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        let external: u32 = if entry.name.ends_with(b"/") { 0x10 } else { 0 };
        central.extend_from_slice(&external.to_le_bytes());
        central.extend_from_slice(&local_offset.to_le_bytes());
        central.extend_from_slice(&entry.name);
    }
    let central_offset = u32_of(out.len(), "central directory offset");
    let central_size = u32_of(central.len(), "central directory size");
    let count = u16_of(entries.len(), "entry count");
    out.extend_from_slice(&central);

    // End of central directory record.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // this disk
    out.extend_from_slice(&0u16.to_le_bytes()); // disk with the directory
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}
