//! Heatmap grids per pseudo group: one row per group, the group's mean heatmap first, then
//! examples spread evenly over the group's samples in row order.
//!
//! Heatmap rows are joined to pseudo-group rows by manifest row (`rows` tensor and `row`
//! column), never by position. A flattened heatmap of `D = C * d * d` values is laid out
//! channel-major; channels are summed for display, large maps are box-averaged down to at
//! most 64 pixels a side, and small ones are enlarged by whole pixels. Signed relevance uses
//! a diverging map scaled per tile to its own largest magnitude.

use std::collections::BTreeMap;
use std::path::Path;

use image::{Rgb, RgbImage};

use exmap_artefact::{read_table, TensorFile};
use exmap_stage::StageError;

const MAX_TILE: usize = 64;
const MIN_TILE: usize = 48;
const PAD: u32 = 4;
const BACKGROUND: Rgb<u8> = Rgb([225, 225, 225]);

/// Heatmaps summed over channels: one `side * side` map per manifest row.
#[derive(Clone, Debug)]
pub struct HeatmapSet {
    pub side: usize,
    maps: BTreeMap<i64, Vec<f32>>,
}

/// The pseudo-group columns the grids need.
#[derive(Clone, Debug)]
pub struct PseudoGroups {
    pub row: Vec<i64>,
    pub y: Vec<i64>,
    pub local_group: Vec<i64>,
    pub global_group: Vec<i64>,
}

/// One drawn grid.
#[derive(Clone, Debug)]
pub struct Grid {
    pub png: Vec<u8>,
    /// What each row of the grid shows, top to bottom.
    pub rows: Vec<String>,
    /// Pseudo-group rows that have no heatmap.
    pub unmatched: usize,
}

/// Reads heatmaps file `path`; `side_param` (0 to infer) is the `d` of `D = C * d * d`.
pub fn read_heatmaps(path: &Path, side_param: usize) -> Result<HeatmapSet, StageError> {
    let file = TensorFile::open(path)?;
    let (shape, values) = file.f32("heatmaps", Some(2))?;
    let (_, rows) = file.i64("rows", Some(1))?;
    let (n, dim) = (shape[0], shape[1]);
    if rows.len() != n {
        return Err(StageError::data(format!(
            "`{}`: `rows` has {} entries but `heatmaps` has {n} rows",
            path.display(),
            rows.len()
        )));
    }
    let metadata = |key: &str| file.metadata(key).and_then(|v| v.trim().parse::<usize>().ok());
    let (channels, side) = heatmap_layout(dim, side_param, metadata("channels"), metadata("size"))
        .ok_or_else(|| {
            StageError::data(format!(
                "`{}`: cannot lay out heatmaps of {dim} values as channels * side * side \
                 (metadata channels {:?}, size {:?}, parameter `heatmap_side` {side_param})",
                path.display(),
                file.metadata("channels"),
                file.metadata("size")
            ))
        })?;
    let plane = side * side;
    let maps = rows
        .iter()
        .zip(values.chunks_exact(dim.max(1)))
        .map(|(&row, values)| {
            let mut map = vec![0f32; plane];
            for c in 0..channels {
                for (sum, v) in map.iter_mut().zip(&values[c * plane..(c + 1) * plane]) {
                    *sum += v;
                }
            }
            (row, map)
        })
        .collect();
    Ok(HeatmapSet { side, maps })
}

/// `(channels, side)` with `channels * side * side == dim`: from the parameter, else the
/// metadata, else a single square channel, else three.
pub fn heatmap_layout(
    dim: usize,
    side_param: usize,
    channels: Option<usize>,
    size: Option<usize>,
) -> Option<(usize, usize)> {
    let fits = |c: usize, s: usize| (s > 0 && c > 0 && c * s * s == dim).then_some((c, s));
    if side_param > 0 {
        return fits(dim / (side_param * side_param).max(1), side_param);
    }
    if let Some(layout) = size.and_then(|s| fits(channels.unwrap_or(dim / (s * s).max(1)), s)) {
        return Some(layout);
    }
    [1, 3].into_iter().find_map(|c| fits(c, ((dim / c) as f64).sqrt().round() as usize))
}

/// Reads the pseudo-groups table at `path`.
pub fn read_pseudo_groups(path: &Path) -> Result<PseudoGroups, StageError> {
    let table = read_table(path)?;
    Ok(PseudoGroups {
        row: table.i64("row")?,
        y: table.i64("y")?,
        local_group: table.i64("local_group")?,
        global_group: table.i64("global_group")?,
    })
}

/// The grid of `groups` (one group id per pseudo-group row); `None` when no row has a heatmap.
pub fn cluster_grid(
    heatmaps: &HeatmapSet,
    pseudo: &PseudoGroups,
    groups: &[i64],
    examples: usize,
) -> Result<Option<Grid>, StageError> {
    let mut members: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    let mut unmatched = 0;
    for ((&row, &y), &group) in pseudo.row.iter().zip(&pseudo.y).zip(groups) {
        if heatmaps.maps.contains_key(&row) {
            members.entry(group).or_default().push((row, y));
        } else {
            unmatched += 1;
        }
    }
    if members.is_empty() {
        return Ok(None);
    }

    let factor = heatmaps.side.div_ceil(MAX_TILE).max(1);
    let small = (heatmaps.side / factor).max(1);
    let scale = MIN_TILE.div_ceil(small).max(1);
    let tile = (small * scale) as u32;
    let columns = 1 + examples as u32;
    let width = PAD + columns * (tile + PAD) + PAD;
    let height = PAD + members.len() as u32 * (tile + PAD);
    let mut canvas = RgbImage::from_pixel(width, height, BACKGROUND);

    let mut rows = Vec::new();
    for (r, (group, members)) in members.iter_mut().enumerate() {
        members.sort_unstable();
        let top = PAD + r as u32 * (tile + PAD);
        let mean = mean_map(members.iter().map(|m| &heatmaps.maps[&m.0]), heatmaps.side);
        paint(&mut canvas, &pooled(&mean, heatmaps.side, factor), small, scale, (PAD, top));
        let count = examples.min(members.len());
        for i in 0..count {
            let (row, _) = members[i * members.len() / count];
            let left = 2 * PAD + (1 + i as u32) * (tile + PAD);
            let map = pooled(&heatmaps.maps[&row], heatmaps.side, factor);
            paint(&mut canvas, &map, small, scale, (left, top));
        }
        let mut classes: Vec<i64> = members.iter().map(|m| m.1).collect();
        classes.dedup();
        classes.sort_unstable();
        classes.dedup();
        let classes: Vec<String> = classes.iter().map(i64::to_string).collect();
        rows.push(format!("group {group}: {} samples, class {}", members.len(), classes.join("/")));
    }
    let png = crate::plots::encode_png(&canvas)?;
    Ok(Some(Grid { png, rows, unmatched }))
}

/// The diverging colour of `t` in [-1, 1]: blue for negative, white at zero, red positive.
pub fn diverging(t: f32) -> Rgb<u8> {
    let t = if t.is_finite() { t.clamp(-1.0, 1.0) } else { 0.0 };
    let (end, weight) = if t < 0.0 { ([33.0, 102.0, 172.0], -t) } else { ([178.0, 24.0, 43.0], t) };
    let mix = |e: f32| (255.0 + (e - 255.0) * weight).round() as u8;
    Rgb([mix(end[0]), mix(end[1]), mix(end[2])])
}

fn mean_map<'a>(maps: impl Iterator<Item = &'a Vec<f32>>, side: usize) -> Vec<f32> {
    let mut sum = vec![0f64; side * side];
    let mut count = 0usize;
    for map in maps {
        for (s, &v) in sum.iter_mut().zip(map) {
            *s += v as f64;
        }
        count += 1;
    }
    sum.iter().map(|&s| (s / count.max(1) as f64) as f32).collect()
}

/// Box-averages a `side * side` map by `factor`, dropping a ragged border.
fn pooled(map: &[f32], side: usize, factor: usize) -> Vec<f32> {
    if factor == 1 {
        return map.to_vec();
    }
    let small = (side / factor).max(1);
    let mut out = vec![0f32; small * small];
    for (i, cell) in out.iter_mut().enumerate() {
        let (y, x) = (i / small, i % small);
        let mut sum = 0f32;
        for dy in 0..factor {
            for dx in 0..factor {
                sum +=
                    map[(y * factor + dy).min(side - 1) * side + (x * factor + dx).min(side - 1)];
            }
        }
        *cell = sum / (factor * factor) as f32;
    }
    out
}

fn paint(canvas: &mut RgbImage, map: &[f32], side: usize, scale: usize, origin: (u32, u32)) {
    let peak = map.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs()));
    for (i, &v) in map.iter().enumerate() {
        let colour = diverging(if peak > 0.0 { v / peak } else { 0.0 });
        let (y, x) = (i / side, i % side);
        for dy in 0..scale {
            for dx in 0..scale {
                let px = origin.0 + (x * scale + dx) as u32;
                let py = origin.1 + (y * scale + dy) as u32;
                canvas.put_pixel(px, py, colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_prefers_parameter_then_metadata_then_squares() {
        assert_eq!(heatmap_layout(3 * 28 * 28, 0, Some(3), Some(28)), Some((3, 28)));
        assert_eq!(heatmap_layout(3 * 28 * 28, 28, None, None), Some((3, 28)));
        assert_eq!(heatmap_layout(16, 0, None, None), Some((1, 4)));
        assert_eq!(heatmap_layout(3 * 25, 0, None, None), Some((3, 5)));
        assert_eq!(heatmap_layout(3 * 25, 0, None, Some(5)), Some((3, 5)));
        assert_eq!(heatmap_layout(10, 0, None, None), None);
        assert_eq!(heatmap_layout(16, 3, None, None), None);
    }

    #[test]
    fn diverging_map_is_white_at_zero_and_saturates_at_the_ends() {
        assert_eq!(diverging(0.0), Rgb([255, 255, 255]));
        assert_eq!(diverging(1.0), Rgb([178, 24, 43]));
        assert_eq!(diverging(-1.0), Rgb([33, 102, 172]));
        assert_eq!(diverging(-7.0), diverging(-1.0));
        assert_eq!(diverging(f32::NAN), diverging(0.0));
    }

    #[test]
    fn pooling_averages_blocks() {
        let map: Vec<f32> = (0..16).map(|v| v as f32).collect();
        // Blocks of the 4x4 ramp: (0+1+4+5)/4 = 2.5, (2+3+6+7)/4 = 4.5, then 10.5 and 12.5.
        assert_eq!(pooled(&map, 4, 2), vec![2.5, 4.5, 10.5, 12.5]);
    }
}
