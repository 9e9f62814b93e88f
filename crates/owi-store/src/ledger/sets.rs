//! The ledger's sets as SQLite keeps them: identities as 8 little-endian
//! bytes each, workouts' (start, end) as 16, sorted and distinct.

pub(super) fn encode_items(items: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() * 8);
    for item in items {
        out.extend_from_slice(&item.to_le_bytes());
    }
    out
}

pub(super) fn decode_items(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect()
}

pub(super) fn encode_workouts(workouts: &[(i64, i64)]) -> Vec<u8> {
    workouts
        .iter()
        .flat_map(|(s, e)| s.to_le_bytes().into_iter().chain(e.to_le_bytes()))
        .collect()
}

pub(super) fn decode_workouts(bytes: &[u8]) -> Vec<(i64, i64)> {
    bytes
        .chunks_exact(16)
        .map(|c| {
            let (s, e) = c.split_at(8);
            (
                i64::from_le_bytes(s.try_into().unwrap_or_default()),
                i64::from_le_bytes(e.try_into().unwrap_or_default()),
            )
        })
        .collect()
}

/// Sorted, distinct union of two sorted, distinct lists.
pub(super) fn merged<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

pub(super) fn sorted<T: Ord + Copy>(items: &[T]) -> Vec<T> {
    into_sorted(items.to_vec())
}

pub(super) fn into_sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort_unstable();
    items.dedup();
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_one_of_each_in_order() {
        assert_eq!(merged(&[1, 3, 5], &[2, 3, 6]), [1, 2, 3, 5, 6]);
        assert_eq!(merged::<u64>(&[], &[4]), [4]);
        assert_eq!(decode_items(&encode_items(&[u64::MAX, 7])), [u64::MAX, 7]);
        assert_eq!(decode_workouts(&encode_workouts(&[(-5, 9)])), [(-5, 9)]);
    }
}
