//! How readings lie in SQLite: one row per series and UTC day, the day's
//! (time, value) pairs packed in a BLOB; laying fresh readings over a stored
//! block.

use crate::time::Millis;

/// One block per series and UTC day: hourly data makes 384-byte blocks,
/// minute data 23 KiB ones; both read and rewrite cheaply.
const BLOCK_SPAN: Millis = crate::time::DAY;

pub(super) fn block_start(t: Millis) -> Millis {
    // Saturating: `latest()` asks from `Millis::MIN`.
    t.div_euclid(BLOCK_SPAN).saturating_mul(BLOCK_SPAN)
}

const POINT_BYTES: usize = 16;

pub(super) fn encode_block(points: &[(Millis, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * POINT_BYTES);
    for (t, v) in points {
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub(super) fn decode_block(data: &[u8]) -> impl Iterator<Item = (Millis, f64)> + '_ {
    data.chunks_exact(POINT_BYTES).map(|c| {
        let t = Millis::from_le_bytes(c[..8].try_into().expect("8 bytes"));
        let v = f64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
        (t, v)
    })
}

/// Stored points with fresh ones laid over them (same time: fresh wins).
pub(super) fn merge(
    stored: impl Iterator<Item = (Millis, f64)>,
    fresh: &[(Millis, f64)],
) -> Vec<(Millis, f64)> {
    let mut out = Vec::with_capacity(fresh.len() + 32);
    let mut fresh = fresh.iter().copied().peekable();
    for (t, v) in stored {
        while let Some(&(ft, fv)) = fresh.peek() {
            if ft > t {
                break;
            }
            if ft < t {
                out.push((ft, fv));
            }
            fresh.next();
            if ft == t {
                out.push((ft, fv));
                break;
            }
        }
        if out.last().is_none_or(|&(lt, _)| lt < t) {
            out.push((t, v));
        }
    }
    out.extend(fresh);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_lays_fresh_points_over_stored_ones() {
        let stored = [(1, 1.0), (3, 3.0), (5, 5.0)];
        let fresh = [(0, 0.5), (3, 30.0), (4, 4.0), (9, 9.0)];
        assert_eq!(
            merge(stored.iter().copied(), &fresh),
            vec![(0, 0.5), (1, 1.0), (3, 30.0), (4, 4.0), (5, 5.0), (9, 9.0)]
        );
        assert_eq!(merge(stored.iter().copied(), &[]), stored.to_vec());
    }
}
