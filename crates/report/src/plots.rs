//! Line plots drawn with plotters into an RGB buffer and encoded as PNG: the Laplacian
//! eigenvalues of a partition and the ERM training curves.
//!
//! Text uses DejaVu Sans, registered from the bytes in `assets/` (its licence is beside it),
//! so drawing never looks up system fonts and gives the same pixels on every machine.

use std::sync::Once;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::RgbImage;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use exmap_stage::StageError;

use crate::diagnostics::PartitionQuality;
use crate::training::{EpochPoint, TrainingCurves};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Colours of the plotted series, in order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The minor grid lines: faint, so that the data stands out.
const LIGHT_GRID: RGBColor = RGBColor(238, 238, 238);

/// One panel of the training figure: which value it plots and where its legend sits.
struct Panel {
    name: &'static str,
    value: fn(&EpochPoint) -> f64,
    legend: SeriesLabelPosition,
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// The smallest eigenvalues of one partition, with the chosen k marked between the k-th and
/// the (k+1)-th eigenvalue. `None` when the partition has no eigenvalues.
pub fn eigenvalue_plot(
    title: &str,
    partition: &PartitionQuality,
) -> Result<Option<Vec<u8>>, StageError> {
    let values: Vec<(f64, f64)> = partition
        .eigenvalues
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| ((i + 1) as f64, v))
        .collect();
    if values.is_empty() {
        return Ok(None);
    }
    let caption = format!("{title}: {}", partition.name);
    let png = draw_png((480, 320), &caption, |root| {
        let (low, high) = padded_range(values.iter().map(|p| p.1));
        let mut chart = ChartBuilder::on(root)
            .caption(&caption, (FAMILY, 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.5..values.len() as f64 + 0.5, low..high)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("index (ascending)")
            .y_desc("eigenvalue")
            .label_style((FAMILY, 12))
            .light_line_style(LIGHT_GRID)
            .x_label_formatter(&whole_numbers)
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(values.iter().copied(), PALETTE[0]))
            .map_err(plot_error)?;
        chart
            .draw_series(values.iter().map(|&p| Circle::new(p, 3, PALETTE[0].filled())))
            .map_err(plot_error)?;
        if let Some(k) = partition.k.filter(|&k| k >= 1 && k < values.len()) {
            let x = k as f64 + 0.5;
            chart
                .draw_series(LineSeries::new([(x, low), (x, high)], PALETTE[3].stroke_width(2)))
                .map_err(plot_error)?
                .label(format!("chosen k = {k}"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], PALETTE[3]));
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        Ok(())
    })?;
    Ok(Some(png))
}

/// Loss and accuracy per epoch, one line per split, side by side.
pub fn training_plot(curves: &TrainingCurves) -> Result<Vec<u8>, StageError> {
    draw_png((880, 340), "ERM training curves", |root| {
        let areas = root.split_evenly((1, 2));
        let panels = [
            Panel { name: "loss", value: |p| p.loss, legend: SeriesLabelPosition::UpperRight },
            Panel {
                name: "accuracy",
                value: |p| p.accuracy,
                legend: SeriesLabelPosition::LowerRight,
            },
        ];
        for (area, panel) in areas.iter().zip(panels) {
            let Panel { name, value, legend: position } = panel;
            let (x_low, x_high) = padded_range(curves.points().map(|p| p.epoch));
            let (y_low, y_high) = padded_range(curves.points().map(value));
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name} per epoch"), (FAMILY, 16))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(x_low..x_high, y_low..y_high)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(name)
                .label_style((FAMILY, 12))
                .light_line_style(LIGHT_GRID)
                .x_label_formatter(&whole_numbers)
                .draw()
                .map_err(plot_error)?;
            for (i, curve) in curves.splits.iter().enumerate() {
                let colour = PALETTE[i % PALETTE.len()];
                let line: Vec<(f64, f64)> =
                    curve.points.iter().map(|p| (p.epoch, value(p))).collect();
                chart
                    .draw_series(LineSeries::new(line.iter().copied(), colour.stroke_width(2)))
                    .map_err(plot_error)?
                    .label(curve.split.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
                chart
                    .draw_series(line.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(plot_error)?;
            }
            legend(&mut chart, position)?;
        }
        Ok(())
    })
}

/// Encodes an RGB buffer as PNG, compressed hard: the figures are inlined in the HTML report.
pub fn encode_png(image: &RgbImage) -> Result<Vec<u8>, StageError> {
    let mut bytes = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut bytes, CompressionType::Best, FilterType::Adaptive);
    image
        .write_with_encoder(encoder)
        .map_err(|e| StageError::compute(format!("cannot encode a PNG figure: {e}")))?;
    Ok(bytes)
}

/// Draws into a white `size` canvas with `draw` and returns the PNG bytes.
fn draw_png(
    size: (u32, u32),
    what: &str,
    draw: impl FnOnce(&Area) -> Result<(), String>,
) -> Result<Vec<u8>, StageError> {
    register_font()?;
    let mut buffer = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, size).into_drawing_area();
        let fail = |e: String| StageError::compute(format!("cannot draw `{what}`: {e}"));
        root.fill(&WHITE).map_err(|e| fail(plot_error(e)))?;
        draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(plot_error(e)))?;
    }
    let image = RgbImage::from_raw(size.0, size.1, buffer).expect("buffer holds the whole canvas");
    encode_png(&image)
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .label_font((FAMILY, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(plot_error)
}

/// Axis labels for whole numbers only (epochs and eigenvalue indices are counts).
fn whole_numbers(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

/// A range covering `values` with 5% margins (a unit range around a constant).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    let span = high - low;
    if span <= 1e-12 {
        return (low - 0.5, high + 0.5);
    }
    (low - 0.05 * span, high + 0.05 * span)
}

fn register_font() -> Result<(), StageError> {
    static REGISTER: Once = Once::new();
    let mut failed = false;
    REGISTER.call_once(|| {
        failed = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err();
    });
    if failed {
        return Err(StageError::compute("the bundled font `DejaVuSans.ttf` does not load"));
    }
    Ok(())
}

fn plot_error(error: impl std::fmt::Debug) -> String {
    format!("{error:?}")
}
