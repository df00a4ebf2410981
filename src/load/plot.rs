//! Plots of the load page: lines with markers against the workload's size, drawn by plotters
//! as inline SVG.

use plotters::prelude::*;

const PLOT_SIZE: (u32, u32) = (560, 340);

/// One line of a plot: its name, colour and marker (half-width in pixels), and its (events,
/// value) points.
pub(super) struct Series {
    pub(super) name: String,
    pub(super) color: RGBColor,
    pub(super) marker: Marker,
    pub(super) marker_size: f64,
    pub(super) points: Vec<(f64, f64)>,
}

impl Series {
    pub(super) fn new(name: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            color,
            marker: Marker::Circle,
            marker_size: MARKER_SIZE,
            points,
        }
    }
}

/// How a series marks its points, so that runs differ by shape as well as by colour.
#[derive(Clone, Copy)]
pub(super) enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
}

pub(super) const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Diamond,
];

/// Half the width of a marker, in pixels.
pub(super) const MARKER_SIZE: f64 = 4.0;
/// How much larger each earlier run's markers are on the side-by-side page, so that runs with
/// equal figures still show each marker, the later inside the earlier.
pub(super) const MARKER_GROWTH: f64 = 1.5;

impl Marker {
    /// The same shape in the page's text (key, table blocks).
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Marker::Circle => "●",
            Marker::Triangle => "▲",
            Marker::Square => "■",
            Marker::Diamond => "◆",
        }
    }

    /// The shape's corners in pixels around `centre`, drawn as a filled polygon: one element
    /// type for every shape, as plotters' legends need.
    fn corners(self, centre: (i32, i32), r: f64) -> Vec<(i32, i32)> {
        let corners: Vec<(f64, f64)> = match self {
            Marker::Circle => (0..12)
                .map(|i| f64::from(i) * std::f64::consts::PI / 6.0)
                .map(|a| (r * a.cos(), r * a.sin()))
                .collect(),
            Marker::Triangle => vec![(0.0, -r - 1.0), (r + 1.0, r), (-r - 1.0, r)],
            Marker::Square => vec![(-r, -r), (r, -r), (r, r), (-r, r)],
            Marker::Diamond => vec![
                (0.0, -r - 1.0),
                (r + 1.0, 0.0),
                (0.0, r + 1.0),
                (-r - 1.0, 0.0),
            ],
        };
        corners
            .into_iter()
            .map(|(x, y)| (centre.0 + x.round() as i32, centre.1 + y.round() as i32))
            .collect()
    }
}

/// Series drawn as lines with markers, on a logarithmic load axis; with a legend at `legend`,
/// or none (the page gives it).
pub(super) fn line_plot(
    y_label: &str,
    series: &[Series],
    legend: Option<SeriesLabelPosition>,
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        let _ = root.fill(&WHITE);
        let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
        let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        let x_min = xs.clone().fold(f64::INFINITY, f64::min).max(1.0);
        let x_max = xs.fold(1.0, f64::max).max(x_min * 10.0);
        let y_max = ys.fold(1.0, f64::max) * 1.15;
        let chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(58)
            .build_cartesian_2d((x_min * 0.8..x_max * 1.25).log_scale(), 0.0..y_max);
        let Ok(mut chart) = chart else {
            return svg_error();
        };
        // Label the workloads' sizes and the powers of ten; other ticks only get a grid line.
        let sizes: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        let x_label = |x: &f64| {
            let power_of_ten = (x.log10() - x.log10().round()).abs() < 1e-9;
            let a_size = sizes.iter().any(|n| (n - x).abs() < 0.5);
            if power_of_ten || a_size {
                format!("{x:.0}")
            } else {
                String::new()
            }
        };
        let _ = chart
            .configure_mesh()
            .x_desc("delayed events in the workload")
            .y_desc(y_label)
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(226, 229, 235))
            .x_labels(12)
            .x_label_formatter(&x_label)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw();
        for s in series {
            let (color, marker, size) = (s.color, s.marker, s.marker_size);
            let drawn = chart.draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ));
            if let Ok(drawn) = drawn {
                drawn.label(s.name.as_str()).legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (20, 0)], color.stroke_width(2))
                        + Polygon::new(marker.corners((10, 0), MARKER_SIZE), color.filled())
                });
            }
            let _ = chart.draw_series(s.points.iter().map(|p| {
                EmptyElement::at(*p) + Polygon::new(marker.corners((0, 0), size), color.filled())
            }));
        }
        if let Some(position) = legend {
            let _ = chart
                .configure_series_labels()
                .position(position)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 204, 212))
                .draw();
        }
        let _ = root.present();
    }
    svg
}

fn svg_error() -> String {
    "<p>(plot unavailable)</p>".into()
}

/// One colour per run on the side-by-side page (Okabe and Ito's, told apart with most kinds of
/// colour blindness).
pub(super) const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(60, 60, 60),
];

pub(super) fn css_color(c: RGBColor) -> String {
    format!("rgb({},{},{})", c.0, c.1, c.2)
}
