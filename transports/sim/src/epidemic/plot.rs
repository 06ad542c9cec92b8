//! SVG figures with `plotters` (SVG backend only: text is left to the
//! viewer's fonts, so nothing here needs a font file or a C library).
//!
//! Log axes are drawn by plotting `log10` of the values on a linear axis
//! and labelling ticks with the values themselves.

use std::path::Path;

use plotters::prelude::*;

/// Line colours, one per series family: consort, classic, SWIM, others.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// One line of a figure.
#[derive(Clone, Debug)]
pub struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    colour: usize,
    dashed: bool,
}

impl Series {
    /// A solid line in colour `colour` (an index).
    pub fn new(name: &str, points: Vec<(f64, f64)>, colour: usize) -> Self {
        Series {
            name: name.to_string(),
            points,
            colour,
            dashed: false,
        }
    }

    /// The same, dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct Figure {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Series>,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
}

impl Figure {
    /// An empty figure.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Figure {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            log_x: false,
            log_y: false,
        }
    }

    /// Adds a line (lines without points are left out).
    pub fn add(&mut self, s: Series) {
        if !s.points.is_empty() {
            self.series.push(s);
        }
    }

    /// Writes the figure as SVG to `path`, with the command that made it
    /// written under the chart.
    pub fn write(&self, path: &Path, command: &str) -> Result<(), String> {
        self.draw(path, command)
            .map_err(|e| format!("cannot draw {}: {e}", path.display()))
    }

    fn tx(&self, v: f64) -> f64 {
        if self.log_x { v.max(1e-9).log10() } else { v }
    }

    fn ty(&self, v: f64) -> f64 {
        if self.log_y { v.max(1e-9).log10() } else { v }
    }

    fn draw(&self, path: &Path, command: &str) -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
        root.fill(&WHITE)?;
        let (chart_area, foot) = root.split_vertically(570);
        foot.draw(&Text::new(
            format!("produced by: {command}"),
            (10, 8),
            ("sans-serif", 13)
                .into_font()
                .color(&RGBColor(0x55, 0x55, 0x55)),
        ))?;
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            let (x, y) = (self.tx(x), self.ty(y));
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let xpad = ((x1 - x0) * 0.05).max(0.05);
        let ypad = ((y1 - y0) * 0.1).max(0.5);
        let ylo = if self.log_y {
            y0 - ypad
        } else {
            0.0f64.min(y0)
        };
        let mut chart = ChartBuilder::on(&chart_area)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((x0 - xpad)..(x1 + xpad), ylo..(y1 + ypad))?;
        let (lx, ly) = (self.log_x, self.log_y);
        let fx = move |v: &f64| {
            if lx {
                round2(10f64.powf(*v))
            } else {
                format!("{v:.2}")
            }
        };
        let fy = move |v: &f64| {
            if ly {
                round2(10f64.powf(*v))
            } else {
                format!("{v:.1}")
            }
        };
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(8)
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()?;
        for s in &self.series {
            let colour = COLOURS[s.colour % COLOURS.len()];
            let style = ShapeStyle::from(&colour).stroke_width(2);
            let data: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(x, y)| (self.tx(x), self.ty(y)))
                .collect();
            let anno = if s.dashed {
                chart.draw_series(DashedLineSeries::new(data.clone(), 6, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(data.clone(), style))?
            };
            anno.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 20, y)],
                    ShapeStyle::from(&colour).stroke_width(2),
                )
            });
            chart.draw_series(data.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xcc, 0xcc, 0xcc))
            .label_font(("sans-serif", 13))
            .draw()?;
        root.present()?;
        Ok(())
    }
}

/// A value rounded to two significant digits, for log-axis ticks.
fn round2(v: f64) -> String {
    if v <= 0.0 {
        return "0".into();
    }
    let mag = 10f64.powf(v.log10().floor() - 1.0);
    format!("{:.0}", (v / mag).round() * mag)
}
