//! Route points packed into one BLOB per route.
//!
//! Layout, little-endian: a version byte (1), then per point `at_ms: i64`,
//! `lat: f64`, `lon: f64`, then `elevation, speed, course, h_acc, v_acc` as
//! `f32` with NaN for "not recorded" — 44 bytes a point.

use owi_export::RoutePoint;

const VERSION: u8 = 1;
const POINT_BYTES: usize = 8 * 3 + 4 * 5;

pub fn encode(points: &[RoutePoint]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + points.len() * POINT_BYTES);
    out.push(VERSION);
    for p in points {
        out.extend_from_slice(&p.at_ms.to_le_bytes());
        out.extend_from_slice(&p.lat.to_le_bytes());
        out.extend_from_slice(&p.lon.to_le_bytes());
        for v in [
            p.elevation_m,
            p.speed_mps,
            p.course_deg,
            p.h_acc_m,
            p.v_acc_m,
        ] {
            out.extend_from_slice(&v.map_or(f32::NAN, |v| v as f32).to_le_bytes());
        }
    }
    out
}

/// Decodes a blob; `None` if it is not in a layout this version knows.
pub fn decode(blob: &[u8]) -> Option<Vec<RoutePoint>> {
    let (&version, body) = blob.split_first()?;
    if version != VERSION || body.len() % POINT_BYTES != 0 {
        return None;
    }
    let f32_at = |c: &[u8], at: usize| -> Option<f64> {
        let v = f32::from_le_bytes(c.get(at..at + 4)?.try_into().ok()?);
        (!v.is_nan()).then_some(f64::from(v))
    };
    body.chunks_exact(POINT_BYTES)
        .map(|c| {
            Some(RoutePoint {
                at_ms: i64::from_le_bytes(c.get(0..8)?.try_into().ok()?),
                lat: f64::from_le_bytes(c.get(8..16)?.try_into().ok()?),
                lon: f64::from_le_bytes(c.get(16..24)?.try_into().ok()?),
                elevation_m: f32_at(c, 24),
                speed_mps: f32_at(c, 28),
                course_deg: f32_at(c, 32),
                h_acc_m: f32_at(c, 36),
                v_acc_m: f32_at(c, 40),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_points_with_and_without_optional_fields() {
        let points = vec![
            RoutePoint {
                at_ms: 1_560_290_442_000,
                lat: 37.781672,
                lon: -122.396397,
                elevation_m: Some(4.5),
                speed_mps: Some(0.25),
                course_deg: None,
                h_acc_m: Some(8.0),
                v_acc_m: None,
            },
            RoutePoint {
                at_ms: 1_560_290_443_000,
                lat: -33.9,
                lon: 151.2,
                elevation_m: None,
                speed_mps: None,
                course_deg: Some(206.25),
                h_acc_m: None,
                v_acc_m: Some(6.5),
            },
        ];
        let blob = encode(&points);
        assert_eq!(blob.len(), 1 + 2 * POINT_BYTES);
        assert_eq!(decode(&blob), Some(points));
    }

    #[test]
    fn refuses_unknown_layouts() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[2]), None);
        assert_eq!(decode(&[1, 0, 0]), None);
    }
}
