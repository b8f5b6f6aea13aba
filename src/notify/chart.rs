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
//! (`assets/fonts/`), so no system font is needed; the labels are dates and
//! numbers only, and the Chinese words stay in the mail's text.

use std::collections::HashSet;
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

/// Draws the chart of a request, if its rule has one (PNG bytes).
pub trait ChartSource: Send + Sync {
    fn chart(&self, request: &ChartRequest) -> Option<Vec<u8>>;
}

/// Where chart `cid` goes in a mail's HTML: between these two marks.
pub fn marks(cid: &str) -> (String, String) {
    (
        format!("<!--chart:{cid}-->"),
        format!("<!--/chart:{cid}-->"),
    )
}

/// The HTML as sent: each marked chart whose Content-ID is in `drawn` stays
/// (without its marks), every other marked chart is left out, so a chart
/// that could not be drawn leaves no broken image.
pub fn finish_html(html: &str, drawn: &HashSet<String>) -> String {
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
        if drawn.contains(cid) {
            out.push_str(&after[body_start..body_start + body_len]);
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
}

impl<F> StoreCharts<F>
where
    F: Fn(&str) -> Option<ChartSpec> + Send + Sync,
{
    pub fn new(store: Arc<Store>, tz: Tz, spec: F) -> StoreCharts<F> {
        StoreCharts { store, tz, spec }
    }
}

impl<F> ChartSource for StoreCharts<F>
where
    F: Fn(&str) -> Option<ChartSpec> + Send + Sync,
{
    fn chart(&self, n: &ChartRequest) -> Option<Vec<u8>> {
        let spec = (self.spec)(&n.rule)?;
        let data = notice_chart(&self.store, &spec, n, self.tz);
        if data.is_empty() {
            return None;
        }
        match render_png(&data, Some(n.at), self.tz) {
            Ok(png) => Some(png),
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

/// ASCII only: the embedded font has no other glyphs.
fn ascii(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii() || matches!(c, '°' | 'µ' | '³'))
        .collect::<String>()
        .trim()
        .to_string()
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

const BLUE: RGBColor = RGBColor(0x15, 0x65, 0xc0);
const ORANGE: RGBColor = RGBColor(0xe6, 0x51, 0x00);
const CRIMSON: RGBColor = RGBColor(0xc6, 0x28, 0x28);
const PALETTE: [RGBColor; 4] = [
    BLUE,
    RGBColor(0x6a, 0x1b, 0x9a),
    RGBColor(0x00, 0x83, 0x8f),
    RGBColor(0x5d, 0x40, 0x37),
];

fn draw(
    buf: &mut [u8],
    data: &ChartData,
    at: Option<Millis>,
    tz: Tz,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buf, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (y0, y1) = data.y_bounds();
    let unit = ascii(&data.unit);
    let long = data.to.saturating_sub(data.from) > 200 * DAY;
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(56)
        .build_cartesian_2d(data.from..data.to.max(data.from + 1), y0..y1)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .x_labels(6)
        .y_labels(6)
        .label_style((FAMILY, 12))
        .x_label_formatter(&|t| {
            let d = to_local(*t, tz);
            if long {
                d.format("%Y-%m").to_string()
            } else {
                d.format("%m-%d").to_string()
            }
        })
        .y_label_formatter(&|v| crate::status::format::format_number((v * 1000.0).round() / 1000.0))
        .y_desc(unit)
        .axis_desc_style((FAMILY, 12))
        .draw()?;
    // The alert's episode, shaded; the evaluation, a red rule.
    for &(a, b) in &data.firing {
        if b > a {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(a, y0), (b, y1)],
                CRIMSON.mix(0.12).filled(),
            )))?;
        }
    }
    if let Some(t) = at.filter(|t| *t >= data.from && *t <= data.to) {
        chart.draw_series(LineSeries::new(
            vec![(t, y0), (t, y1)],
            CRIMSON.stroke_width(1),
        ))?;
    }
    if !data.target.is_empty() {
        chart
            .draw_series(DashedLineSeries::new(
                data.target.clone(),
                6,
                4,
                ORANGE.stroke_width(2),
            ))?
            .label("target")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], ORANGE.stroke_width(2)));
    }
    for (i, line) in data.lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let name = ascii(&line.name);
        let series =
            chart.draw_series(LineSeries::new(line.points.clone(), color.stroke_width(2)))?;
        if i == 0 || !name.is_empty() {
            series
                .label(if name.is_empty() {
                    "value".to_string()
                } else {
                    name
                })
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
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
            Some(Circle::new((t, v), r, style))
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xcc, 0xcc, 0xcc))
        .label_font((FAMILY, 12))
        .draw()?;
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
        let drawn: HashSet<String> = ["chart-1.x@rulewatch".to_string()].into();
        assert_eq!(
            finish_html(&html, &drawn),
            "<p>1</p><img a><p>2</p><p>3</p>"
        );
        assert_eq!(
            finish_html(&html, &HashSet::new()),
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
        };
        let png = render_png(&data, Some(d(180)), chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 2000, "{} bytes", png.len());
    }
}
