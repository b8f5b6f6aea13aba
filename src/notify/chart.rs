//! PNG charts for alert mails: the metric the rule watches, its target line,
//! and the breach marked (the breaching readings in red, the alert's episode
//! shaded, the evaluation as a red rule).
//!
//! Drawn when a mail is sent, not when it is queued: the queued mail carries
//! a [`ChartRequest`] per chart (what to draw) and its HTML marks where each
//! chart goes; the sender asks its [`ChartSource`] for the PNGs and
//! [`finish_html`] keeps the charts drawn and drops the others. So drawing
//! never holds the write transaction that ingest and evaluation wait for.
//!
//! Drawn in memory with `plotters` (bitmap backend) and encoded with `png`.
//! Axis text uses an ASCII-only cut of DejaVu Sans embedded in the binary
//! (`assets/fonts/`), so no system font is needed. The picture holds no
//! words, only dates and numbers (no glyph can be missing): what each colour
//! means, the unit and the series are said in Chinese in the HTML beside it
//! (`templates/chart.html`). Rank charts are drawn 1st on top.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono_tz::Tz;
use plotters::prelude::*;
use plotters::style::FontStyle;
use serde::{Deserialize, Serialize};

use crate::alerts::state::{Notice, NoticeKind};
use crate::readings::store::Store;
use crate::readings::Labels;
use crate::rules::loader::{ChartLine, ChartSpec};
use crate::status::series::{chart_data, with_finding_threshold, ChartData};
use crate::status::Words;
use crate::time::{to_local, Millis, DAY};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-ascii.ttf");
const FAMILY: &str = "rulewatch-sans";
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 280;

/// An image carried inside a mail and shown by the HTML part (`cid:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineImage {
    /// Content-ID without angle brackets, e.g. `chart-1.3fa2…@rulewatch`.
    pub cid: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What to draw for one notice: its rule's chart, of its subject, up to
/// the evaluation, with the alert's episode shaded. Queued with the mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartRequest {
    pub rule: String,
    pub subject: Labels,
    /// When the alert's episode began.
    pub since: Millis,
    /// The evaluation that made the notice.
    pub at: Millis,
    /// The finding's own threshold (`details.threshold`), for rules whose
    /// chart line comes from the finding.
    pub threshold: Option<f64>,
}

impl ChartRequest {
    pub fn of_notice(n: &Notice) -> ChartRequest {
        ChartRequest {
            rule: n.rule.clone(),
            subject: n.subject.clone(),
            since: n.since,
            at: n.at,
            threshold: n.details.get("threshold").and_then(|v| v.as_f64()),
        }
    }
}

/// A chart a queued mail shows once drawn: its Content-ID and what to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingChart {
    pub cid: String,
    pub request: ChartRequest,
}

/// A chart drawn for a mail: the PNG, and the HTML naming its series
/// (empty for a chart of one series).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnChart {
    pub png: Vec<u8>,
    pub series_html: String,
}

/// Draws the chart of a request, if its rule has one.
pub trait ChartSource: Send + Sync {
    fn chart(&self, request: &ChartRequest) -> Option<DrawnChart>;
}

/// Where chart `cid` goes in a mail's HTML: between these two marks.
pub fn marks(cid: &str) -> (String, String) {
    (
        format!("<!--chart:{cid}-->"),
        format!("<!--/chart:{cid}-->"),
    )
}

/// Where the names of chart `cid`'s series go, inside its marks: known only
/// once it is drawn (the series are those in the store at sending time).
pub fn series_mark(cid: &str) -> String {
    format!("<!--series:{cid}-->")
}

/// The names of a chart's series in the colours of their lines, through
/// display names (`县（市、区）：南宫`, never `county=南宫`); empty for one
/// series.
pub fn series_legend(data: &ChartData, words: &Words) -> String {
    // Lines told apart by one label (the usual case): its display name
    // once, then the values (`各线（县（市、区））：■ 南宫 ■ 巨鹿`).
    let keys: Vec<Vec<&String>> = data
        .lines
        .iter()
        .map(|l| l.labels.keys().collect())
        .collect();
    let one_key = match keys.first() {
        Some(k) if k.len() == 1 && keys.iter().all(|x| x == k) => {
            words.name(k[0]).map(|n| (k[0].clone(), n.to_string()))
        }
        _ => None,
    };
    let named: Vec<String> = data
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.labels.is_empty() || !l.name.is_empty())
        .map(|(i, l)| {
            let RGBColor(r, g, b) = PALETTE[i % PALETTE.len()];
            let name = match (&one_key, l.labels.is_empty()) {
                (_, true) => l.name.clone(),
                (Some((key, _)), false) => words.value(key, &l.labels[key]),
                (None, false) => words.subject(&l.labels),
            };
            format!(
                "<span style=\"color: #{r:02x}{g:02x}{b:02x};\">■</span>&nbsp;{}",
                crate::status::format::escape_html(&name)
            )
        })
        .collect();
    if named.len() < 2 {
        return String::new();
    }
    let of = one_key.map(|(_, n)| format!("（{n}）")).unwrap_or_default();
    format!(
        "<br><span style=\"color: #555; font-size: 0.85em;\">各线{of}：{}</span>",
        named.join("　")
    )
}

/// The HTML as sent: each marked chart whose Content-ID is in `drawn` stays
/// (without its marks, its series named), every other marked chart is left
/// out, so a chart that could not be drawn leaves no broken image.
pub fn finish_html(html: &str, drawn: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<!--chart:") {
        let after = &rest[start + "<!--chart:".len()..];
        let Some(end) = after.find("-->") else { break };
        let cid = &after[..end];
        let (_, close) = marks(cid);
        let body_start = end + 3;
        let Some(body_len) = after[body_start..].find(&close) else {
            break;
        };
        out.push_str(&rest[..start]);
        if let Some(series) = drawn.get(cid) {
            let body = &after[body_start..body_start + body_len];
            out.push_str(&body.replace(&series_mark(cid), series));
        }
        rest = &after[body_start + body_len + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether a notice's mail carries a chart: firing, its reminders, and a
/// year's final verdict.
pub fn wants_chart(kind: NoticeKind) -> bool {
    matches!(
        kind,
        NoticeKind::Firing | NoticeKind::Reminder | NoticeKind::FinalVerdict
    )
}

/// Charts from the readings store, by each rule's `chart` metadata (looked
/// up by rule id through `spec`, so the daemon's current rule set is used).
pub struct StoreCharts<F> {
    store: Arc<Store>,
    tz: Tz,
    spec: F,
    /// The display names in force when a chart is drawn (a config reload
    /// may change them while the sender runs).
    words: Box<dyn Fn() -> Words + Send + Sync>,
}

impl<F> StoreCharts<F>
where
    F: Fn(&str) -> Option<ChartSpec> + Send + Sync,
{
    pub fn new(store: Arc<Store>, tz: Tz, spec: F) -> StoreCharts<F> {
        StoreCharts {
            store,
            tz,
            spec,
            words: Box::new(Words::default),
        }
    }

    /// Series named through these display names (the config's).
    pub fn with_words(self, words: Words) -> StoreCharts<F> {
        self.with_current_words(move || words.clone())
    }

    /// Series named through the display names `words` gives at drawing
    /// time: the daemon's current config.
    pub fn with_current_words(
        mut self,
        words: impl Fn() -> Words + Send + Sync + 'static,
    ) -> StoreCharts<F> {
        self.words = Box::new(words);
        self
    }
}

impl<F> ChartSource for StoreCharts<F>
where
    F: Fn(&str) -> Option<ChartSpec> + Send + Sync,
{
    fn chart(&self, n: &ChartRequest) -> Option<DrawnChart> {
        let spec = (self.spec)(&n.rule)?;
        let data = notice_chart(&self.store, &spec, n, self.tz);
        if data.is_empty() {
            return None;
        }
        match render_png(&data, Some(n.at), self.tz) {
            Ok(png) => Some(DrawnChart {
                png,
                series_html: series_legend(&data, &(self.words)()),
            }),
            Err(e) => {
                tracing::warn!(rule = %n.rule, error = %e, "mail chart not drawn");
                None
            }
        }
    }
}

/// The chart data of a notice: the subject's series up to the evaluation,
/// the line (the finding's own threshold where the spec says so), and the
/// alert's episode as the firing period.
pub fn notice_chart(store: &Store, spec: &ChartSpec, n: &ChartRequest, tz: Tz) -> ChartData {
    let mut data = chart_data(store, spec, Some(&n.subject), n.at, tz);
    if spec.line == ChartLine::FromFinding {
        data = with_finding_threshold(data, n.threshold);
    }
    data.firing = vec![(n.since.max(data.from), n.at.min(data.to))];
    data
}

fn register_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| "the embedded chart font does not load".to_string())
    })
    .clone()
}

/// Draws `data` as a PNG, `at` (the evaluation) as a red vertical rule.
pub fn render_png(data: &ChartData, at: Option<Millis>, tz: Tz) -> Result<Vec<u8>, String> {
    register_font()?;
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    draw(&mut buf, data, at, tz).map_err(|e| format!("cannot draw the chart: {e}"))?;
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&buf).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

pub const BLUE: RGBColor = RGBColor(0x15, 0x65, 0xc0);
pub const ORANGE: RGBColor = RGBColor(0xe6, 0x51, 0x00);
pub const CRIMSON: RGBColor = RGBColor(0xc6, 0x28, 0x28);
/// Behind the readings that breach the target.
pub const BREACH_SHADE: RGBColor = RGBColor(0xfb, 0xd5, 0xd5);
/// Along the top while the alert was active.
pub const FIRING_STRIP: RGBColor = RGBColor(0x7b, 0x1f, 0xa2);
/// One colour per series, as many as a chart draws
/// ([`crate::status::series::MAX_SERIES`]), none the target's orange or the
/// breach's red: the legend names each line by its colour.
const PALETTE: [RGBColor; 8] = [
    BLUE,
    RGBColor(0x6a, 0x1b, 0x9a),
    RGBColor(0x00, 0x83, 0x8f),
    RGBColor(0x5d, 0x40, 0x37),
    RGBColor(0x2e, 0x7d, 0x32),
    RGBColor(0xad, 0x14, 0x57),
    RGBColor(0x82, 0x77, 0x17),
    RGBColor(0x45, 0x5a, 0x64),
];

fn draw(
    buf: &mut [u8],
    data: &ChartData,
    at: Option<Millis>,
    tz: Tz,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buf, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    // A rank chart is drawn upside down (1st on top): plot -place.
    let rank = data.rank_of.is_some();
    let fy = move |v: f64| if rank { -v } else { v };
    let (b0, b1) = data.y_bounds();
    let (y0, y1) = if rank { (-b1, -b0) } else { (b0, b1) };
    let (x0, x1) = data.x_bounds();
    let long = x1.saturating_sub(x0) > 200 * DAY;
    // No legend and no words in the picture (the font has no Chinese): the
    // mail's HTML says what each colour is. Only dates and numbers here.
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .margin_right(24)
        .x_label_area_size(26)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1.max(x0 + 1), y0..y1)?;
    let y_labels = match data.rank_of {
        Some(n) => n.clamp(2, 16) + 1,
        None => 6,
    };
    chart
        .configure_mesh()
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .x_labels(6)
        .y_labels(y_labels)
        .label_style((FAMILY, 12))
        .x_label_formatter(&|t| {
            let d = to_local(*t, tz);
            if long {
                d.format("%Y-%m").to_string()
            } else {
                d.format("%m-%d").to_string()
            }
        })
        .y_label_formatter(&|v| {
            if rank {
                // Whole places only.
                let p = -v;
                if (p - p.round()).abs() < 1e-6 && p >= 1.0 {
                    format!("{}", p.round() as i64)
                } else {
                    String::new()
                }
            } else {
                crate::status::format::format_number((v * 1000.0).round() / 1000.0)
            }
        })
        .draw()?;
    // Where the readings breach the target: shaded full height.
    for (a, b) in data.breach_spans() {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(a, y0), (b, y1)],
            BREACH_SHADE.filled(),
        )))?;
    }
    // When the alert was active: a solid strip along the top edge.
    let strip = (y1 - y0) * 0.035;
    for &(a, b) in &data.firing {
        let (a, b) = (a.max(x0), b.min(x1));
        if b > a {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(a, y1 - strip), (b, y1)],
                FIRING_STRIP.filled(),
            )))?;
        }
    }
    if let Some(t) = at.filter(|t| *t >= x0 && *t <= x1) {
        chart.draw_series(LineSeries::new(
            vec![(t, y0), (t, y1)],
            CRIMSON.stroke_width(1),
        ))?;
    }
    if !data.target.is_empty() {
        let mut target: Vec<(Millis, f64)> = data.target.iter().map(|&(t, v)| (t, fy(v))).collect();
        // Reach the widened axis when the line is flat at its ends.
        if let (Some(first), Some(last)) = (target.first().copied(), target.last().copied()) {
            if first.0 > x0 {
                target.insert(0, (x0, first.1));
            }
            if last.0 < x1 {
                target.push((x1, last.1));
            }
        }
        chart.draw_series(DashedLineSeries::new(target, 6, 4, ORANGE.stroke_width(2)))?;
    }
    for (i, line) in data.lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<(Millis, f64)> = line.points.iter().map(|&(t, v)| (t, fy(v))).collect();
        chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
        let dense = line.points.len() > 60;
        let last = line.points.last().copied();
        chart.draw_series(line.points.iter().filter_map(|&(t, v)| {
            let breach = data.is_breach(t, v);
            let is_last = Some((t, v)) == last;
            if dense && !breach && !is_last {
                return None;
            }
            let style = if breach {
                CRIMSON.filled()
            } else {
                color.filled()
            };
            let r = if breach || is_last { 5 } else { 3 };
            Some(Circle::new((t, fy(v)), r, style))
        }))?;
        // The latest value, written beside its point (inside the plot).
        if let Some((t, v)) = last {
            let text = if rank {
                match data.rank_of {
                    Some(n) => format!("{}/{n}", v.round() as i64),
                    None => format!("{}", v.round() as i64),
                }
            } else {
                crate::status::format::format_number((v * 1000.0).round() / 1000.0)
            };
            // Centred over or under its point, away from the segment that
            // leads to it; kept inside the plot near its edges.
            let y = fy(v);
            let prev = line.points.iter().rev().nth(1).map(|p| fy(p.1));
            let mut below = prev.is_some_and(|p| p > y);
            let share = (y - y0) / (y1 - y0);
            if share > 0.88 {
                below = true;
            } else if share < 0.12 {
                below = false;
            }
            let dy = if below { 8 } else { -22 };
            let dx = -(7 * text.len() as i32) / 2;
            chart.draw_series(std::iter::once(
                EmptyElement::at((t, fy(v)))
                    + Text::new(text, (dx, dy), (FAMILY, 13).into_font().color(&BLACK)),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::series::Line;

    #[test]
    fn charts_not_drawn_leave_no_trace_in_the_html() {
        let (a0, a1) = marks("chart-1.x@rulewatch");
        let (b0, b1) = marks("chart-2.y@rulewatch");
        let html = format!("<p>1</p>{a0}<img a>{a1}<p>2</p>{b0}<img b>{b1}<p>3</p>");
        let drawn: HashMap<String, String> =
            [("chart-1.x@rulewatch".to_string(), String::new())].into();
        assert_eq!(
            finish_html(&html, &drawn),
            "<p>1</p><img a><p>2</p><p>3</p>"
        );
        assert_eq!(
            finish_html(&html, &HashMap::new()),
            "<p>1</p><p>2</p><p>3</p>"
        );
        assert_eq!(finish_html("<p>plain</p>", &drawn), "<p>plain</p>");
    }

    #[test]
    fn draws_a_png_without_system_fonts() {
        let d = |day: i64| 1_609_430_400_000 + day * DAY;
        let data = ChartData {
            from: d(0),
            to: d(200),
            lines: vec![Line {
                name: String::new(),
                labels: Default::default(),
                points: (0..7).map(|m| (d(m * 30), 4.0 + m as f64 * 0.1)).collect(),
            }],
            target: vec![(d(0), 4.5), (d(200), 4.5)],
            breach: Some(crate::rules::loader::Breach::Above),
            slack: 0.0,
            full_from: None,
            judged_from: None,
            unit: "%".into(),
            label: String::new(),
            firing: vec![(d(150), d(180))],
            omitted: 0,
            rank_of: None,
        };
        let png = render_png(&data, Some(d(180)), chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 2000, "{} bytes", png.len());
    }

    // ---- The picture itself, decoded: which pixels have which colour. ----

    struct Picture {
        rgb: Vec<u8>,
    }

    impl Picture {
        fn of(png: &[u8]) -> Picture {
            let mut reader = png::Decoder::new(std::io::Cursor::new(png))
                .read_info()
                .unwrap();
            let mut rgb = vec![0; reader.output_buffer_size()];
            reader.next_frame(&mut rgb).unwrap();
            Picture { rgb }
        }
        fn at(&self, x: u32, y: u32) -> (u8, u8, u8) {
            let i = ((y * WIDTH + x) * 3) as usize;
            (self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
        }
        /// The pixels close to `c`.
        fn find(&self, c: RGBColor) -> Vec<(u32, u32)> {
            let near = |a: u8, b: u8| (a as i32 - b as i32).abs() <= 12;
            let mut out = Vec::new();
            for y in 0..HEIGHT {
                for x in 0..WIDTH {
                    let (r, g, b) = self.at(x, y);
                    if near(r, c.0) && near(g, c.1) && near(b, c.2) {
                        out.push((x, y));
                    }
                }
            }
            out
        }
    }

    /// Renders `data`; with `RULEWATCH_CHART_DUMP=dir` also writes the PNG
    /// there, to look at.
    fn picture(name: &str, data: &ChartData, at: Option<Millis>) -> Picture {
        let png = render_png(data, at, SH).unwrap();
        if let Some(dir) = std::env::var_os("RULEWATCH_CHART_DUMP") {
            std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), &png).unwrap();
        }
        Picture::of(&png)
    }

    fn centroid(px: &[(u32, u32)]) -> (f64, f64) {
        let n = px.len() as f64;
        let (sx, sy) = px
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p.0 as f64, b + p.1 as f64));
        (sx / n, sy / n)
    }

    const SH: Tz = chrono_tz::Asia::Shanghai;
    fn day(n: i64) -> Millis {
        1_609_430_400_000 + n * DAY
    }

    fn flat_limit(points: Vec<(Millis, f64)>, limit: f64) -> ChartData {
        let from = points.first().unwrap().0;
        let to = points.last().unwrap().0;
        ChartData {
            from,
            to,
            lines: vec![Line {
                name: String::new(),
                labels: Default::default(),
                points,
            }],
            target: vec![(from, limit), (to, limit)],
            breach: Some(crate::rules::loader::Breach::Above),
            slack: 0.0,
            full_from: None,
            judged_from: None,
            unit: "%".into(),
            label: String::new(),
            firing: vec![],
            omitted: 0,
            rank_of: None,
        }
    }

    #[test]
    fn a_single_reading_is_a_visible_point_with_its_value() {
        let data = flat_limit(vec![(day(10), 4.7)], 4.5);
        let (x0, x1) = data.x_bounds();
        assert!(x1 - x0 >= 6 * DAY, "the time axis is not degenerate");
        let (y0, y1) = data.y_bounds();
        assert!(
            y0 < 4.5 && y1 > 4.7,
            "the point and the line are inside ({y0}, {y1})"
        );
        let pic = picture("single", &data, None);
        // The breaching reading: a red dot well inside the picture.
        let dot = pic.find(CRIMSON);
        assert!(dot.len() >= 40, "{} red pixels", dot.len());
        let (cx, cy) = centroid(&dot);
        assert!(
            cx > 150.0 && cx < 550.0 && cy > 30.0 && cy < 230.0,
            "dot at ({cx}, {cy})"
        );
        // Its value written beside it: dark text pixels near the dot.
        let (cx, cy) = (cx as u32, cy as u32);
        let mut ink = 0;
        for y in cy.saturating_sub(30)..(cy + 30).min(HEIGHT) {
            for x in cx.saturating_sub(70)..(cx + 70).min(WIDTH) {
                let (r, g, b) = pic.at(x, y);
                if r < 90 && g < 90 && b < 90 {
                    ink += 1;
                }
            }
        }
        assert!(
            ink >= 15,
            "no value written beside the point ({ink} dark pixels)"
        );
    }

    #[test]
    fn the_shade_marks_breaching_readings_and_the_strip_the_alert() {
        // Days 3–5 breach the 4.5 limit; the alert was active on days 6–9,
        // after the readings came back under the line.
        let values = [4.0, 4.1, 4.2, 4.8, 4.9, 4.8, 4.3, 4.2, 4.1, 4.0];
        let points = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (day(i as i64), v))
            .collect();
        let mut data = flat_limit(points, 4.5);
        data.firing = vec![(day(6), day(9))];
        assert_eq!(
            data.breach_spans(),
            vec![(day(3) - DAY / 2, day(5) + DAY / 2)]
        );
        let pic = picture("shade", &data, None);
        let shade = pic.find(BREACH_SHADE);
        let strip = pic.find(FIRING_STRIP);
        assert!(shade.len() > 2000, "{} shaded pixels", shade.len());
        assert!(strip.len() > 300, "{} strip pixels", strip.len());
        let right_of_shade = shade.iter().map(|p| p.0).max().unwrap();
        let left_of_strip = strip.iter().map(|p| p.0).min().unwrap();
        assert!(
            right_of_shade < left_of_strip,
            "the shade (to x={right_of_shade}) is where the readings breach, not the alert (from x={left_of_strip})"
        );
        // The strip is a band along the top, not the full height.
        let strip_height =
            strip.iter().map(|p| p.1).max().unwrap() - strip.iter().map(|p| p.1).min().unwrap();
        assert!(strip_height < 20, "strip {strip_height} px high");
    }

    #[test]
    fn nothing_covers_the_data_in_the_upper_left() {
        // Where a legend box used to sit: a high first reading must show.
        let values = [9.0, 9.0, 8.5, 3.0, 2.0, 2.5, 2.0];
        let points = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (day(i as i64 * 10), v))
            .collect();
        let data = flat_limit(points, 10.0);
        let pic = picture("upper-left", &data, None);
        let blue_upper_left = pic
            .find(BLUE)
            .into_iter()
            .filter(|&(x, y)| x < WIDTH / 3 && y < HEIGHT / 3)
            .count();
        assert!(
            blue_upper_left > 50,
            "{blue_upper_left} blue pixels in the upper left"
        );
    }

    #[test]
    fn a_rank_chart_puts_first_on_top_with_the_tier_line() {
        let mut data = flat_limit(vec![(day(15), 2.0), (day(45), 9.0)], 5.0);
        data.rank_of = Some(16);
        data.unit = "名".into();
        assert_eq!(data.y_bounds(), (0.5, 16.5));
        assert!(data.is_breach(day(45), 9.0) && !data.is_breach(day(15), 2.0));
        let pic = picture("rank", &data, None);
        let good = pic.find(BLUE);
        let bad = pic.find(CRIMSON);
        let tier = pic.find(ORANGE);
        assert!(!good.is_empty() && bad.len() >= 40 && !tier.is_empty());
        let first: Vec<(u32, u32)> = good.into_iter().filter(|p| p.0 < WIDTH / 4).collect();
        let (_, good_y) = centroid(&first);
        let (_, bad_y) = centroid(&bad);
        let (_, tier_y) = centroid(&tier);
        // 2nd above the tier (5th), 9th below it: smaller y is higher up.
        assert!(
            good_y < tier_y && tier_y < bad_y,
            "2nd at {good_y}, tier at {tier_y}, 9th at {bad_y}"
        );
    }
}
