//! Inline SVG charts for the status page: no script, no outside asset.

use std::fmt::Write as _;

use chrono_tz::Tz;

use super::escape;
use crate::status::format::{format_number, round};
use crate::status::series::ChartData;
use crate::time::{to_local, Millis};

/// Colours of the series, in order (the first is the usual single series).
pub const PALETTE: [&str; 8] = [
    "#1565c0", "#6a1b9a", "#00838f", "#5d4037", "#2e7d32", "#ad1457", "#455a64", "#9e9d24",
];
pub const TARGET_COLOR: &str = "#e65100";
pub const BREACH_COLOR: &str = "#c62828";

/// How big, and how much text.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub width: u32,
    pub height: u32,
    /// Axis labels and a legend (the detail page); the small chart has only
    /// the end values.
    pub full: bool,
}

pub const SMALL: Size = Size {
    width: 280,
    height: 90,
    full: false,
};
pub const LARGE: Size = Size {
    width: 720,
    height: 300,
    full: true,
};

/// The chart as an `<svg>` element. `alt` is its accessible description.
pub fn render(data: &ChartData, size: Size, tz: Tz, alt: &str) -> String {
    let (w, h) = (size.width as f64, size.height as f64);
    // The large chart's legend has a band of its own above the plot: it
    // never covers data (a 1st place or a peak at the top edge).
    let (left, right, top, bottom) = if size.full {
        (58.0, 12.0, 30.0, 28.0)
    } else {
        (34.0, 4.0, 6.0, 14.0)
    };
    let font = if size.full { 12 } else { 9 };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-label="{alt}" xmlns="http://www.w3.org/2000/svg"><title>{alt}</title>"#,
        alt = escape(alt)
    );
    let _ = write!(
        s,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#ddd\"/>",
        w - left - right,
        h - top - bottom
    );
    if data.is_empty() {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"middle\" fill=\"#888\">暂无数据</text></svg>",
            (left + w - right) / 2.0,
            (top + h - bottom) / 2.0 + 4.0,
            font + 2
        );
        return s;
    }
    let (y0, y1) = data.y_bounds();
    let span_t = data.to.saturating_sub(data.from).max(1) as f64;
    let x = |t: Millis| left + (t - data.from) as f64 / span_t * (w - left - right);
    // A rank chart (places) is drawn 1st on top.
    let rank = data.rank_of.is_some();
    let y = |v: f64| {
        let down = if rank { v - y0 } else { y1 - v };
        top + down / (y1 - y0) * (h - top - bottom)
    };

    for &(a, b) in &data.firing {
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{}\" fill=\"{BREACH_COLOR}\" fill-opacity=\"0.12\"><title>告警期间</title></rect>",
            x(a),
            (x(b) - x(a)).max(1.5),
            h - top - bottom
        );
    }
    if !data.target.is_empty() {
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{TARGET_COLOR}\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\" points=\"{}\"><title>目标线</title></polyline>",
            points(&data.target, &x, &y)
        );
    }
    for (i, line) in data.lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{}\" points=\"{}\"/>",
            if size.full { 2.0 } else { 1.5 },
            points(&line.points, &x, &y)
        );
        let r = if size.full { 3.0 } else { 2.0 };
        // Every point on a short series, only breaches and the last on a long one.
        let dense = line.points.len() > 60;
        for (j, &(t, v)) in line.points.iter().enumerate() {
            let breach = data.is_breach(t, v);
            let last = j + 1 == line.points.len();
            if dense && !breach && !last {
                continue;
            }
            let fill = if breach { BREACH_COLOR } else { color };
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\" fill=\"{fill}\"><title>{}</title></circle>",
                x(t),
                y(v),
                escape(&format!(
                    "{}{} {}{}{}",
                    if line.name.is_empty() {
                        String::new()
                    } else {
                        format!("{}：", line.name)
                    },
                    to_local(t, tz).format("%Y-%m-%d"),
                    format_number(round(v)),
                    data.unit,
                    if breach { "（越线）" } else { "" }
                ))
            );
        }
    }
    // Axis text: the value range at the left, the dates below.
    let _ = write!(
        s,
        "<g font-size=\"{font}\" fill=\"#555\"><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        left - 3.0,
        top + font as f64 * 0.8,
        escape(&if rank {
            "第1名".to_string()
        } else {
            axis_number(y1, y1 - y0)
        }),
        left - 3.0,
        h - bottom,
        escape(&match data.rank_of {
            Some(_) => format!("第{}名", (y1 - 0.5).round() as i64),
            None => axis_number(y0, y1 - y0),
        }),
    );
    let date_format = if data.to.saturating_sub(data.from) > 200 * crate::time::DAY {
        "%Y-%m"
    } else {
        "%m-%d"
    };
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        h - 2.0,
        to_local(data.from, tz).format(date_format),
        w - right,
        h - 2.0,
        to_local(data.to, tz).format(date_format),
    );
    if size.full {
        // Unit and legend along the top.
        let mut legend = String::new();
        let mut lx = left + 6.0;
        let mut item = |color: &str, text: &str, dashed: bool| {
            let _ = write!(
                legend,
                "<line x1=\"{lx}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"{color}\" stroke-width=\"2\"{2}/><text x=\"{3}\" y=\"{4}\">{5}</text>",
                top - 14.0,
                lx + 16.0,
                if dashed { " stroke-dasharray=\"5 3\"" } else { "" },
                lx + 20.0,
                top - 10.0,
                escape(text)
            );
            lx += 28.0 + text.chars().count() as f64 * (font as f64 + 1.0);
        };
        for (i, line) in data.lines.iter().enumerate() {
            let name = if line.name.is_empty() {
                if data.label.is_empty() {
                    "读数".to_string()
                } else {
                    data.label.clone()
                }
            } else {
                line.name.clone()
            };
            item(PALETTE[i % PALETTE.len()], &name, false);
        }
        if !data.target.is_empty() {
            item(TARGET_COLOR, "目标", true);
        }
        s.push_str(&legend);
        if !data.unit.is_empty() {
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                left - 3.0,
                top + font as f64 * 2.0,
                escape(&format!("({})", data.unit))
            );
        }
    }
    s.push_str("</g></svg>");
    s
}

fn points(line: &[(Millis, f64)], x: &impl Fn(Millis) -> f64, y: &impl Fn(f64) -> f64) -> String {
    let mut out = String::new();
    for &(t, v) in line {
        let _ = write!(out, "{:.1},{:.1} ", x(t), y(v));
    }
    out.trim_end().to_string()
}

/// An axis label: as many decimals as the axis span needs.
pub fn axis_number(v: f64, span: f64) -> String {
    let decimals = if span >= 10.0 {
        0
    } else if span >= 1.0 {
        1
    } else {
        2
    };
    format_number(format!("{v:.decimals$}").parse().unwrap_or(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::series::Line;
    use crate::time::DAY;

    /// The `cy` of each `<circle>`, in order.
    fn circle_ys(svg: &str) -> Vec<f64> {
        svg.split("<circle ")
            .skip(1)
            .map(|c| {
                let v = c.split("cy=\"").nth(1).unwrap().split('"').next().unwrap();
                v.parse().unwrap()
            })
            .collect()
    }

    /// A rank chart of 16 places over 60 days with the tier at 5th:
    /// `points` are (day, place).
    fn rank_chart(points: &[(i64, f64)], label: &str) -> ChartData {
        let d = |n: i64| 1_609_430_400_000 + n * DAY;
        ChartData {
            from: d(0),
            to: d(60),
            lines: vec![Line {
                name: String::new(),
                labels: Default::default(),
                points: points.iter().map(|&(n, place)| (d(n), place)).collect(),
            }],
            target: vec![(d(0), 5.0), (d(60), 5.0)],
            breach: Some(crate::rules::loader::Breach::Above),
            slack: 0.0,
            full_from: None,
            judged_from: None,
            unit: "名".into(),
            label: label.into(),
            firing: vec![],
            omitted: 0,
            rank_of: Some(16),
        }
    }

    #[test]
    fn a_rank_chart_has_first_place_on_top() {
        let data = rank_chart(&[(15, 2.0), (45, 9.0)], "");
        let svg = render(&data, LARGE, chrono_tz::Asia::Shanghai, "t");
        let ys = circle_ys(&svg);
        assert!(ys[0] < ys[1], "2nd is above 9th: {ys:?}");
        assert!(svg.contains("第1名") && svg.contains("第16名"), "{svg}");
    }

    /// The legend sits above the plot: a 1st place (drawn at the top edge)
    /// is never under it.
    #[test]
    fn the_legend_never_covers_data() {
        let data = rank_chart(&[(1, 1.0), (45, 9.0)], "名次");
        let svg = render(&data, LARGE, chrono_tz::Asia::Shanghai, "t");
        let top_point = circle_ys(&svg)[0];
        let legend_text_y: f64 = svg
            .split("<text x=\"")
            .find(|t| t.contains(">名次</text>"))
            .and_then(|t| t.split("y=\"").nth(1))
            .and_then(|t| t.split('"').next())
            .and_then(|y| y.parse().ok())
            .expect("the legend");
        assert!(
            legend_text_y + 4.0 < top_point - 3.0,
            "legend baseline {legend_text_y} above the 1st place at {top_point}"
        );
    }
}
