//! A write buffer that is flushed to its file at element boundaries, and
//! allocation-free number formatting into a `Vec<u8>`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

/// Flush once this much is buffered.
const FLUSH_AT: usize = 1 << 20;

/// A file being written, with a large in-memory buffer in front of it.
#[derive(Debug)]
pub(crate) struct Out {
    pub buf: Vec<u8>,
    file: File,
    path: PathBuf,
    written: u64,
}

impl Out {
    pub(crate) fn create(path: &Path) -> Result<Out, Error> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(Out {
            buf: Vec::with_capacity(FLUSH_AT + (256 << 10)),
            file,
            path: path.to_path_buf(),
            written: 0,
        })
    }

    /// Writes the buffer out if it is full enough. Call between elements.
    #[inline]
    pub(crate) fn tick(&mut self) -> Result<(), Error> {
        if self.buf.len() >= FLUSH_AT {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), Error> {
        self.file
            .write_all(&self.buf)
            .map_err(|e| Error::io(&self.path, e))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Flushes everything and returns the number of bytes written.
    pub(crate) fn finish(mut self) -> Result<u64, Error> {
        self.drain()?;
        self.file.flush().map_err(|e| Error::io(&self.path, e))?;
        Ok(self.written)
    }
}

/// Appends the decimal digits of `v`.
#[inline]
pub(crate) fn put_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

const POW10: [u64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Appends `v` with exactly `decimals` digits after the point (`decimals` ≤ 9).
#[inline]
pub(crate) fn put_fixed(buf: &mut Vec<u8>, v: f64, decimals: usize) {
    let decimals = decimals.min(9);
    let scale = POW10[decimals];
    let scaled = (v * scale as f64).round();
    let negative = scaled < 0.0;
    let n = scaled.abs() as u64;
    if negative && n != 0 {
        buf.push(b'-');
    }
    put_u64(buf, n / scale);
    if decimals > 0 {
        buf.push(b'.');
        let mut frac = n % scale;
        let start = buf.len();
        buf.resize(start + decimals, b'0');
        let mut i = start + decimals;
        while frac > 0 {
            i -= 1;
            buf[i] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
    }
}

/// Like [`put_fixed`] but drops trailing zeros (and the point if nothing is
/// left after it), the way Apple prints most decimal values.
#[inline]
pub(crate) fn put_trimmed(buf: &mut Vec<u8>, v: f64, decimals: usize) {
    let start = buf.len();
    put_fixed(buf, v, decimals);
    if decimals > 0 && buf[start..].contains(&b'.') {
        while buf.last() == Some(&b'0') {
            buf.pop();
        }
        if buf.last() == Some(&b'.') {
            buf.pop();
        }
    }
}

/// Appends `digits` lowercase hex digits of `v`.
#[inline]
pub(crate) fn put_hex(buf: &mut Vec<u8>, v: u64, digits: usize, upper: bool) {
    let table: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    for i in (0..digits).rev() {
        buf.push(table[((v >> (4 * i)) & 0xf) as usize]);
    }
}

/// Sine and cosine from basic IEEE operations only (reduction to [-π, π] and
/// Taylor series), so output does not depend on the platform's libm. About
/// 1e-6 accurate, plenty for synthetic routes.
pub(crate) fn sin_cos(x: f64) -> (f64, f64) {
    use std::f64::consts::{PI, TAU};
    let mut r = x % TAU;
    if r > PI {
        r -= TAU;
    } else if r < -PI {
        r += TAU;
    }
    let r2 = r * r;
    let (mut sin, mut cos) = (0.0, 0.0);
    let (mut s_term, mut c_term) = (r, 1.0);
    for k in 0..11 {
        sin += s_term;
        cos += c_term;
        let k = f64::from(k);
        s_term *= -r2 / ((2.0 * k + 2.0) * (2.0 * k + 3.0));
        c_term *= -r2 / ((2.0 * k + 1.0) * (2.0 * k + 2.0));
    }
    (sin, cos)
}

/// Appends `s` escaped for use inside a double-quoted attribute value.
pub(crate) fn put_escaped(buf: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'&' => buf.extend_from_slice(b"&amp;"),
            b'<' => buf.extend_from_slice(b"&lt;"),
            b'>' => buf.extend_from_slice(b"&gt;"),
            b'"' => buf.extend_from_slice(b"&quot;"),
            _ => buf.push(b),
        }
    }
}

/// `s` escaped for an attribute value.
pub(crate) fn escaped(s: &str) -> String {
    let mut v = Vec::with_capacity(s.len() + 8);
    put_escaped(&mut v, s);
    // Escaping only replaces ASCII bytes with ASCII sequences, so the result is
    // still valid UTF-8.
    String::from_utf8(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: f64, d: usize) -> String {
        let mut b = Vec::new();
        put_fixed(&mut b, v, d);
        String::from_utf8(b).unwrap_or_default()
    }

    fn trimmed(v: f64, d: usize) -> String {
        let mut b = Vec::new();
        put_trimmed(&mut b, v, d);
        String::from_utf8(b).unwrap_or_default()
    }

    #[test]
    fn numbers() {
        assert_eq!(fixed(0.0, 3), "0.000");
        assert_eq!(fixed(1.23456, 3), "1.235");
        assert_eq!(fixed(-0.05, 2), "-0.05");
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(fixed(12.0, 0), "12");
        assert_eq!(fixed(122.396397, 6), "122.396397");
        assert_eq!(trimmed(56.0, 2), "56");
        assert_eq!(trimmed(0.120, 3), "0.12");
        assert_eq!(trimmed(10.5, 1), "10.5");
        let mut b = Vec::new();
        put_u64(&mut b, 0);
        b.push(b' ');
        put_u64(&mut b, u64::MAX);
        b.push(b' ');
        put_hex(&mut b, 0x2806c2d00, 9, false);
        assert_eq!(b, b"0 18446744073709551615 2806c2d00");
        for i in -100..100 {
            let x = f64::from(i) * 0.37;
            let (s, c) = sin_cos(x);
            assert!(
                (s - x.sin()).abs() < 1e-6 && (c - x.cos()).abs() < 1e-6,
                "{x}"
            );
        }
        assert_eq!(escaped("a&b<c>\"d’"), "a&amp;b&lt;c&gt;&quot;d’");
    }
}
