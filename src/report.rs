//! `report`: the regulator's report, as one self-contained HTML file (inline
//! CSS and SVG, no network resource, print styles) and its Markdown twin.
//!
//! Both are filled from the templates in reports/ (embedded at build time):
//! `{{name}}` placeholders, replaced in a single pass so that a value is
//! never expanded again. The content is built once as a small document
//! model (facts, tables, charts with their data) and rendered twice: to
//! HTML, where every text is HTML-escaped, and to Markdown, where every
//! text is escaped for Markdown and HTML. Charts are SVG drawn here, with
//! coordinates computed in exact decimals; the Markdown twin gives each
//! chart's data as a table instead.
//!
//! The report describes one ledger state (tree size N) and is a pure
//! function of it and the as-of date: the verification section states what
//! [`crate::verify::verify`] found for entries 0 to N - 1, which stays true
//! when the ledger grows. So a report can be signed like an export (a
//! MANIFEST of kind `report`) and recomputed byte for byte by
//! `verify-export`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::SigningKey;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::export::{self, CsvOptions, ExportFile, ExportKind, Manifest};
use crate::history::{
    money_group, quarter, quarter_end, Figures, History, LedgerState, Scope, MONEY_GROUPS,
};
use crate::ledger::Ledger;
use crate::query::{ratio, RATIO_PLACES};
use crate::state::Account;

/// The HTML template (reports/report.html.tmpl).
pub const HTML_TEMPLATE: &str = include_str!("../reports/report.html.tmpl");
/// The Markdown template (reports/report.md.tmpl).
pub const MARKDOWN_TEMPLATE: &str = include_str!("../reports/report.md.tmpl");
/// File names in a report directory.
pub const REPORT_HTML: &str = "report.html";
pub const REPORT_MARKDOWN: &str = "report.md";

/// Longest placeholder name in a template.
const PLACEHOLDER_LEN_MAX: usize = 64;

// ---------------------------------------------------------------------------
// Templates and escaping.
// ---------------------------------------------------------------------------

/// Fill `{{name}}` placeholders in one pass. Every placeholder must have a
/// value; values are inserted as given and never scanned again.
pub fn fill(template: &str, values: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .filter(|&e| e <= PLACEHOLDER_LEN_MAX)
            .ok_or_else(|| Error::format("report template: '{{' without a closing '}}'"))?;
        let name = &after[..end];
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') || name.is_empty() {
            return Err(Error::format(format!(
                "report template: bad placeholder {{{{{name}}}}}"
            )));
        }
        let value = values.get(name).ok_or_else(|| {
            Error::format(format!("report template: no value for {{{{{name}}}}}"))
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Escape text for HTML element content and quoted attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escape text for Markdown (CommonMark/GFM), including in table cells: the
/// characters with a Markdown meaning get a backslash, and `<`, `>`, `&`
/// become entities so that no raw HTML passes. An `_` between two letters
/// or digits (as in ids like `sovereign_fund`) cannot emphasise and is kept.
pub fn markdown_escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '_' => {
                let inner = i > 0
                    && chars[i - 1].is_alphanumeric()
                    && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
                if !inner {
                    out.push('\\');
                }
                out.push('_');
            }
            '\\' | '`' | '*' | '[' | ']' | '|' | '#' | '!' | '~' | '{' | '}' | '(' | ')' | '+'
            | '-' | '.'
                if needs_escape(&chars, i) =>
            {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Backslash, backtick, `*`, brackets and `|` are always escaped; the
/// others only where they could start a block (`#`, `+`, `-`, `.` after
/// digits at the start) or a link or image (`!`, `(`).
fn needs_escape(chars: &[char], i: usize) -> bool {
    let ends_marker = |j: usize| chars.get(j).is_none_or(|c| *c == ' ');
    match chars[i] {
        '\\' | '`' | '*' | '[' | ']' | '|' | '~' => true,
        '#' | '+' => i == 0 && ends_marker(i + 1),
        '-' => i == 0 && (ends_marker(i + 1) || chars.get(i + 1) == Some(&'-')),
        '.' | ')' => {
            i > 0 && i <= 9 && chars[..i].iter().all(|c| c.is_ascii_digit()) && ends_marker(i + 1)
        }
        '!' => chars.get(i + 1) == Some(&'['),
        _ => false,
    }
}

/// An amount for reading: canonical digits grouped by three with a narrow
/// no-break space (U+202F), `.` decimal mark, `-` sign. Exact.
pub fn group_digits(canonical: &str) -> String {
    let (sign, unsigned) = match canonical.strip_prefix('-') {
        Some(u) => ("-", u),
        None => ("", canonical),
    };
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push('\u{202F}');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A fraction as a percentage with 2 places, rounded half-even: `0.7439`
/// is `74.39 %`; `-` when absent.
pub fn percent(fraction: &Option<String>) -> String {
    match fraction.as_deref().and_then(|f| f.parse::<Decimal>().ok()) {
        Some(d) => format!(
            "{:.2} %",
            (d * Decimal::ONE_HUNDRED)
                .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
        ),
        None => "-".into(),
    }
}

fn dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

// ---------------------------------------------------------------------------
// The document model.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
    /// Left, never wrapped (dates).
    Keep,
}

#[derive(Debug, Clone, Default)]
struct Grid {
    caption: String,
    head: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
    foot: Option<Vec<String>>,
}

impl Grid {
    fn new(caption: &str, head: &[(&str, Align)]) -> Grid {
        Grid {
            caption: caption.to_string(),
            head: head.iter().map(|(h, a)| (h.to_string(), *a)).collect(),
            rows: Vec::new(),
            foot: None,
        }
    }
}

#[derive(Debug, Clone)]
enum Block {
    Text(String),
    Note(String),
    Facts(Vec<(String, String)>),
    Grid(Grid),
    /// An SVG drawn here, its legend, and its data for the Markdown twin.
    Chart {
        caption: String,
        svg: String,
        legend: Vec<(&'static str, &'static str)>,
        data: Grid,
    },
    Status {
        intact: bool,
        text: String,
    },
}

fn html_blocks(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Text(t) => out.push_str(&format!("<p>{}</p>\n", html_escape(t))),
            Block::Note(t) => out.push_str(&format!("<p class=\"note\">{}</p>\n", html_escape(t))),
            Block::Facts(facts) => {
                out.push_str("<dl class=\"facts\">\n");
                for (k, v) in facts {
                    out.push_str(&format!(
                        "<div><dt>{}</dt><dd>{}</dd></div>\n",
                        html_escape(k),
                        html_escape(v)
                    ));
                }
                out.push_str("</dl>\n");
            }
            Block::Grid(g) => out.push_str(&html_table(g)),
            Block::Chart {
                caption,
                svg,
                legend,
                ..
            } => {
                out.push_str(&format!(
                    "<figure>\n<figcaption>{}</figcaption>\n<div class=\"legend\">",
                    html_escape(caption)
                ));
                for (name, color) in legend {
                    out.push_str(&format!(
                        "<span style=\"--swatch: {color}\">{}</span>",
                        html_escape(name)
                    ));
                }
                out.push_str("</div>\n");
                out.push_str(svg);
                out.push_str("</figure>\n");
            }
            Block::Status { intact, text } => out.push_str(&format!(
                "<p><span class=\"status {}\">{}</span></p>\n",
                if *intact { "intact" } else { "failed" },
                html_escape(text)
            )),
        }
    }
    out
}

fn html_table(g: &Grid) -> String {
    let class = |a: Align| match a {
        Align::Right => " class=\"num\"",
        Align::Keep => " class=\"keep\"",
        Align::Left => "",
    };
    let mut out = String::from("<table>\n");
    if !g.caption.is_empty() {
        out.push_str(&format!("<caption>{}</caption>\n", html_escape(&g.caption)));
    }
    out.push_str("<thead><tr>");
    for (h, a) in &g.head {
        out.push_str(&format!("<th{}>{}</th>", class(*a), html_escape(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let cells = |row: &[String]| -> String {
        debug_assert_eq!(
            row.len(),
            g.head.len(),
            "a row of {:?} has the wrong width",
            g.caption
        );
        row.iter()
            .zip(&g.head)
            .map(|(c, (_, a))| format!("<td{}>{}</td>", class(*a), html_escape(c)))
            .collect()
    };
    for row in &g.rows {
        out.push_str(&format!("<tr>{}</tr>\n", cells(row)));
    }
    out.push_str("</tbody>\n");
    if let Some(foot) = &g.foot {
        out.push_str(&format!("<tfoot><tr>{}</tr></tfoot>\n", cells(foot)));
    }
    out.push_str("</table>\n");
    out
}

fn markdown_blocks(blocks: &[Block]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for b in blocks {
        match b {
            Block::Text(t) => parts.push(markdown_escape(t)),
            Block::Note(t) => parts.push(format!("*{}*", markdown_escape(t))),
            Block::Facts(facts) => {
                let mut g = Grid::new("", &[("Item", Align::Left), ("Value", Align::Left)]);
                g.rows = facts
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.clone()])
                    .collect();
                parts.push(markdown_table(&g));
            }
            Block::Grid(g) => parts.push(markdown_table(g)),
            Block::Chart { data, .. } if !data.head.is_empty() => parts.push(markdown_table(data)),
            Block::Chart { .. } => {}
            Block::Status { text, .. } => parts.push(format!("**{}**", markdown_escape(text))),
        }
    }
    parts.join("\n\n")
}

fn markdown_table(g: &Grid) -> String {
    let mut out = String::new();
    if !g.caption.is_empty() {
        out.push_str(&format!("**{}**\n\n", markdown_escape(&g.caption)));
    }
    let line = |cells: &[String]| -> String {
        debug_assert_eq!(
            cells.len(),
            g.head.len(),
            "a row of {:?} has the wrong width",
            g.caption
        );
        let escaped: Vec<String> = cells.iter().map(|c| markdown_escape(c)).collect();
        format!("| {} |\n", escaped.join(" | "))
    };
    let head: Vec<String> = g.head.iter().map(|(h, _)| h.clone()).collect();
    out.push_str(&line(&head));
    let rule: Vec<&str> = g
        .head
        .iter()
        .map(|(_, a)| if *a == Align::Right { "---:" } else { "---" })
        .collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for row in &g.rows {
        out.push_str(&line(row));
    }
    if let Some(foot) = &g.foot {
        let bold: Vec<String> = foot.to_vec();
        out.push_str(&line(&bold));
    }
    out.trim_end().to_string()
}

// ---------------------------------------------------------------------------
// Charts: inline SVG, coordinates in exact decimals.
// ---------------------------------------------------------------------------

const CHART_WIDTH: i64 = 960;
const CHART_HEIGHT: i64 = 300;
const CHART_LEFT: i64 = 84;
const CHART_RIGHT: i64 = 16;
const CHART_TOP: i64 = 14;
const CHART_BOTTOM: i64 = 32;
/// Most y-axis ticks a chart draws.
const CHART_TICKS_MAX: usize = 12;

/// Series colours (also the legend swatches). Distinct from the page's
/// greys so a test can find each series' pixels in a screenshot.
pub const COLOR_COMMITTED: &str = "#1f4e79";
pub const COLOR_CALLED: &str = "#2e86c1";
pub const COLOR_PAID_IN: &str = "#28b463";
pub const COLOR_DISTRIBUTED: &str = "#d68910";
pub const COLOR_NAV: &str = "#8e44ad";
pub const COLOR_PUBLIC: &str = "#1f4e79";
pub const COLOR_PRIVATE: &str = "#d68910";
pub const COLOR_OTHER: &str = "#7f8c8d";

struct Series {
    name: &'static str,
    color: &'static str,
    points: Vec<(time::Date, Decimal)>,
}

/// A step in 1, 2 or 5 times a power of ten giving at most about 6 ticks.
fn nice_step(span: Decimal) -> Decimal {
    if span <= Decimal::ZERO {
        return Decimal::ONE;
    }
    let raw = span / Decimal::from(5);
    let ten = Decimal::TEN;
    let mut magnitude = Decimal::ONE;
    for _ in 0..40 {
        match magnitude.checked_mul(ten) {
            Some(m) if m <= raw => magnitude = m,
            _ => break,
        }
    }
    for _ in 0..40 {
        if magnitude <= raw {
            break;
        }
        magnitude /= ten;
    }
    for m in [1, 2, 5, 10] {
        let step = magnitude * Decimal::from(m);
        if step >= raw {
            return step;
        }
    }
    magnitude * ten
}

/// A tick label: `150 M`, `2.5 bn`, `500 k`, `0`.
fn compact(value: Decimal, step: Decimal) -> String {
    let (unit, suffix) = if step >= Decimal::from(1_000_000_000) {
        (Decimal::from(1_000_000_000), " bn")
    } else if step >= Decimal::from(1_000_000) {
        (Decimal::from(1_000_000), " M")
    } else if step >= Decimal::from(1_000) {
        (Decimal::from(1_000), " k")
    } else {
        (Decimal::ONE, "")
    };
    if value.is_zero() {
        return "0".into();
    }
    format!("{}{suffix}", (value / unit).normalize())
}

fn coordinate(value: Decimal) -> String {
    format!(
        "{:.1}",
        value.round_dp_with_strategy(1, RoundingStrategy::MidpointNearestEven)
    )
}

/// A step-line chart of dated series from `start` to `end`.
fn line_chart(
    id: &str,
    title: &str,
    series: &[Series],
    start: time::Date,
    end: time::Date,
) -> String {
    let plot_w = Decimal::from(CHART_WIDTH - CHART_LEFT - CHART_RIGHT);
    let plot_h = Decimal::from(CHART_HEIGHT - CHART_TOP - CHART_BOTTOM);
    let days = Decimal::from(((end - start).whole_days()).max(1));
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, v)| *v))
        .fold(Decimal::ZERO, Decimal::max);
    let min = series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, v)| *v))
        .fold(Decimal::ZERO, Decimal::min);
    let step = nice_step(max - min);
    let y_min = (min / step).floor() * step;
    let mut y_max = (max / step).ceil() * step;
    if y_max <= y_min {
        y_max = y_min + step;
    }
    let x = |d: time::Date| -> Decimal {
        let offset = Decimal::from(
            (d - start)
                .whole_days()
                .clamp(0, (end - start).whole_days().max(0)),
        );
        Decimal::from(CHART_LEFT) + offset * plot_w / days
    };
    let y = |v: Decimal| -> Decimal {
        Decimal::from(CHART_TOP) + plot_h - (v - y_min) * plot_h / (y_max - y_min)
    };

    let mut svg = format!(
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" width=\"{CHART_WIDTH}\" height=\"{CHART_HEIGHT}\" role=\"img\" aria-labelledby=\"{id}-title\">\n<title id=\"{id}-title\">{}</title>\n",
        html_escape(title)
    );
    // Horizontal grid and y labels.
    let mut tick = y_min;
    let mut ticks = 0;
    while tick <= y_max && ticks < CHART_TICKS_MAX {
        let ty = coordinate(y(tick));
        svg.push_str(&format!(
            "<line x1=\"{CHART_LEFT}\" x2=\"{}\" y1=\"{ty}\" y2=\"{ty}\" stroke=\"#d5dbdb\" stroke-width=\"1\"/>\n<text x=\"{}\" y=\"{ty}\" dy=\"4\" text-anchor=\"end\">{}</text>\n",
            CHART_WIDTH - CHART_RIGHT,
            CHART_LEFT - 6,
            html_escape(&compact(tick, step))
        ));
        tick += step;
        ticks += 1;
    }
    // Vertical grid at each 1 January, labelled with the year.
    for year in (start.year() + 1)..=end.year() {
        if let Ok(jan) = time::Date::from_calendar_date(year, time::Month::January, 1) {
            let tx = coordinate(x(jan));
            svg.push_str(&format!(
                "<line x1=\"{tx}\" x2=\"{tx}\" y1=\"{CHART_TOP}\" y2=\"{}\" stroke=\"#eaeded\" stroke-width=\"1\"/>\n<text x=\"{tx}\" y=\"{}\" text-anchor=\"middle\">{year}</text>\n",
                CHART_HEIGHT - CHART_BOTTOM,
                CHART_HEIGHT - CHART_BOTTOM + 18
            ));
        }
    }
    svg.push_str(&format!(
        "<line x1=\"{CHART_LEFT}\" x2=\"{}\" y1=\"{b}\" y2=\"{b}\" stroke=\"#5d6d7e\" stroke-width=\"1\"/>\n",
        CHART_WIDTH - CHART_RIGHT,
        b = coordinate(y(y_min.max(Decimal::ZERO).min(y_max)))
    ));
    for s in series {
        let Some((first_date, first_value)) = s.points.first() else {
            continue;
        };
        let mut d = format!(
            "M{} {}",
            coordinate(x(*first_date)),
            coordinate(y(*first_value))
        );
        for (date, value) in &s.points[1..] {
            d.push_str(&format!(
                " H{} V{}",
                coordinate(x(*date)),
                coordinate(y(*value))
            ));
        }
        d.push_str(&format!(" H{}", coordinate(x(end))));
        svg.push_str(&format!(
            "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"3\" stroke-linejoin=\"round\" data-series=\"{}\"/>\n",
            s.color,
            html_escape(s.name)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// Three 100 % bars (committed, paid-in, distributed) split by money group.
fn share_bars(rows: &[(&str, [Decimal; 3])]) -> String {
    let width = Decimal::from(CHART_WIDTH - 200);
    let colors = [COLOR_PUBLIC, COLOR_PRIVATE, COLOR_OTHER];
    let bar_h = 26;
    let height = rows.len() as i64 * (bar_h + 14) + 10;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"chart-groups\" viewBox=\"0 0 {CHART_WIDTH} {height}\" width=\"{CHART_WIDTH}\" height=\"{height}\" role=\"img\" aria-labelledby=\"chart-groups-title\">\n<title id=\"chart-groups-title\">Shares of public, private and other money</title>\n"
    );
    for (i, (label, values)) in rows.iter().enumerate() {
        let top = 6 + i as i64 * (bar_h + 14);
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\">{}</text>\n",
            top + bar_h / 2 + 4,
            html_escape(label)
        ));
        let total: Decimal = values.iter().copied().sum();
        let mut left = Decimal::from(180);
        for (value, color) in values.iter().zip(colors) {
            if total <= Decimal::ZERO || *value <= Decimal::ZERO {
                continue;
            }
            let w = *value * width / total;
            svg.push_str(&format!(
                "<rect x=\"{}\" y=\"{top}\" width=\"{}\" height=\"{bar_h}\" fill=\"{color}\"/>\n",
                coordinate(left),
                coordinate(w)
            ));
            left += w;
        }
        if total <= Decimal::ZERO {
            svg.push_str(&format!(
                "<text x=\"180\" y=\"{}\">none</text>\n",
                top + bar_h / 2 + 4
            ));
        }
    }
    svg.push_str("</svg>\n");
    svg
}

// ---------------------------------------------------------------------------
// The content.
// ---------------------------------------------------------------------------

/// What verify found for the entries a report describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// Entries 0 to tree_size - 1 all verified.
    pub intact: bool,
    /// Entries verified before the first failure (tree_size when intact).
    pub entries_verified: u64,
    /// The first failure among those entries.
    pub failure: Option<crate::verify::Failure>,
}

/// Run [`crate::verify::verify`] and state its result for entries 0 to
/// `tree_size - 1` (a failure at a later entry leaves them intact).
pub fn check_chain(ledger: &Ledger, tree_size: u64) -> Result<ChainCheck> {
    let report = crate::verify::verify(ledger.store(), &mut |_, _| {})?;
    Ok(match report.failure {
        Some(f) if f.seq < tree_size => ChainCheck {
            intact: false,
            entries_verified: f.seq,
            failure: Some(f),
        },
        _ if report.entries_verified < tree_size => ChainCheck {
            intact: false,
            entries_verified: report.entries_verified,
            failure: None,
        },
        _ => ChainCheck {
            intact: true,
            entries_verified: tree_size,
            failure: None,
        },
    })
}

/// One date on the timeline: cumulative figures after that day.
#[derive(Debug, Clone, Copy)]
struct Point {
    date: time::Date,
    committed: Decimal,
    called: Decimal,
    paid_in: Decimal,
    distributed: Decimal,
    nav: Decimal,
}

fn timeline(h: &History) -> Result<Vec<Point>> {
    let start = crate::state::parse_date(&h.fund.value.date)?;
    let mut order: Vec<&crate::history::FundEntry> = h.entries.iter().collect();
    order.sort_by_key(|e| (e.date, e.seq));
    let mut points = vec![Point {
        date: start,
        committed: Decimal::ZERO,
        called: Decimal::ZERO,
        paid_in: Decimal::ZERO,
        distributed: Decimal::ZERO,
        nav: Decimal::ZERO,
    }];
    let mut current = points[0];
    for e in order {
        if e.date != current.date {
            if current.date >= start {
                points.push(current);
            }
            current.date = e.date;
        }
        for (k, v) in &e.amounts {
            match k.account {
                Account::Commitment => current.committed -= v,
                Account::Called => {
                    current.called += v;
                    current.paid_in += v;
                }
                Account::CallReceivable => current.paid_in -= v,
                Account::Distributions => current.distributed += v,
                Account::Cash | Account::Investments | Account::FairValueAdjustment => {
                    current.nav += v
                }
                _ => {}
            }
        }
    }
    points.push(current);
    // One point per date: the last one of each date wins.
    points.dedup_by(|later, earlier| {
        if later.date == earlier.date {
            *earlier = *later;
            true
        } else {
            false
        }
    });
    Ok(points)
}

/// The timeline at each quarter end (and the report date).
fn quarter_points(points: &[Point], end: time::Date) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    let Some(first) = points.first() else {
        return out;
    };
    let mut q_end = quarter_end(first.date);
    let mut i = 0;
    let mut last = *first;
    for _ in 0..4000 {
        let cut = q_end.min(end);
        while i < points.len() && points[i].date <= cut {
            last = points[i];
            i += 1;
        }
        let mut p = last;
        p.date = cut;
        out.push(p);
        if cut >= end {
            break;
        }
        match q_end.next_day() {
            Some(next) => q_end = quarter_end(next),
            None => break,
        }
    }
    out
}

/// Everything a report shows, built once for both renderings.
struct Content {
    h: History,
    chain: ChainCheck,
}

impl Content {
    fn money(&self, value: Decimal) -> String {
        group_digits(&self.h.amount(value))
    }

    fn overview(&self, figures: &BTreeMap<String, Figures>) -> Vec<Block> {
        let h = &self.h;
        let f = &h.fund.value;
        let total = History::total(figures, |_| true);
        let perf = h.performance(&total, |_| true);
        let public = figures
            .keys()
            .filter(|p| money_group(h.partner_type(p)) == "public")
            .count();
        let holdings = export::holdings_of(h).unwrap_or_default();
        let held = holdings.iter().filter(|x| x.cost > Decimal::ZERO).count();
        let fee = f
            .management_fee_rate
            .parse::<Decimal>()
            .map(|r| {
                format!(
                    "{} % a year on {} capital",
                    (r * Decimal::ONE_HUNDRED).normalize(),
                    f.management_fee_basis.replace('_', "-")
                )
            })
            .unwrap_or_else(|_| f.management_fee_rate.clone());
        vec![
            Block::Facts(vec![
                ("Fund".into(), format!("{} ({})", f.name, f.fund)),
                ("Jurisdiction".into(), f.jurisdiction.clone()),
                ("Vintage".into(), f.vintage.to_string()),
                ("Base currency".into(), f.currency.clone()),
                ("Management fee".into(), fee),
                ("Partners".into(), format!("{} ({} public)", figures.len(), public)),
                ("Holdings".into(), format!("{held} held, {} invested in", holdings.len())),
                ("Period".into(), format!("{} to {}", f.date, h.report_date)),
            ]),
            Block::Facts(vec![
                ("Committed".into(), self.money(total.committed)),
                ("Called".into(), self.money(total.called)),
                ("Paid-in".into(), self.money(total.paid_in())),
                ("Unfunded".into(), self.money(total.unfunded())),
                ("Outstanding calls".into(), self.money(total.outstanding)),
                ("Distributed".into(), self.money(total.distributed)),
                ("Net asset value".into(), self.money(total.nav())),
                ("TVPI / IRR".into(), format!("{} / {}", dash(&perf.tvpi), percent(&perf.irr))),
            ]),
            Block::Note(format!(
                "All figures are as of {} and are computed from the signed entries of the ledger (tree size {}); amounts are exact, in {}.",
                h.report_date,
                h.state.tree_size,
                h.currency.code()
            )),
        ]
    }

    fn charts(&self) -> Result<Vec<Block>> {
        let h = &self.h;
        let points = timeline(h)?;
        let start = points.first().map(|p| p.date).unwrap_or(h.report_date);
        let end = h.report_date.max(start);
        let pick =
            |f: fn(&Point) -> Decimal| points.iter().map(|p| (p.date, f(p))).collect::<Vec<_>>();
        let capital = [
            Series {
                name: "Committed",
                color: COLOR_COMMITTED,
                points: pick(|p| p.committed),
            },
            Series {
                name: "Called",
                color: COLOR_CALLED,
                points: pick(|p| p.called),
            },
            Series {
                name: "Paid-in",
                color: COLOR_PAID_IN,
                points: pick(|p| p.paid_in),
            },
            Series {
                name: "Distributed",
                color: COLOR_DISTRIBUTED,
                points: pick(|p| p.distributed),
            },
        ];
        let nav = [Series {
            name: "NAV",
            color: COLOR_NAV,
            points: pick(|p| p.nav),
        }];
        let quarters = quarter_points(&points, end);
        let mut capital_data = Grid::new(
            "Capital at each quarter end",
            &[
                ("Date", Align::Left),
                ("Committed", Align::Right),
                ("Called", Align::Right),
                ("Paid-in", Align::Right),
                ("Distributed", Align::Right),
            ],
        );
        let mut nav_data = Grid::new(
            "NAV at each quarter end",
            &[("Date", Align::Left), ("NAV", Align::Right)],
        );
        for p in &quarters {
            capital_data.rows.push(vec![
                p.date.to_string(),
                self.money(p.committed),
                self.money(p.called),
                self.money(p.paid_in),
                self.money(p.distributed),
            ]);
            nav_data
                .rows
                .push(vec![p.date.to_string(), self.money(p.nav)]);
        }
        Ok(vec![
            Block::Chart {
                caption: "Committed, called, paid-in and distributed capital".into(),
                svg: line_chart("chart-capital", "Committed, called, paid-in and distributed capital over time", &capital, start, end),
                legend: capital.iter().map(|s| (s.name, s.color)).collect(),
                data: capital_data,
            },
            Block::Chart {
                caption: "Net asset value".into(),
                svg: line_chart("chart-nav", "Net asset value over time", &nav, start, end),
                legend: nav.iter().map(|s| (s.name, s.color)).collect(),
                data: nav_data,
            },
            Block::Note(format!(
                "Cumulative figures after each effective date, from the fund's creation to {}; NAV is cash plus investments at fair value.",
                end
            )),
        ])
    }

    fn public_private(&self, figures: &BTreeMap<String, Figures>) -> Vec<Block> {
        let h = &self.h;
        let total = History::total(figures, |_| true);
        let mut g = Grid::new(
            "",
            &[
                ("Money", Align::Left),
                ("Partners", Align::Right),
                ("Committed", Align::Right),
                ("Share", Align::Right),
                ("Paid-in", Align::Right),
                ("Share", Align::Right),
                ("Distributed", Align::Right),
                ("Share", Align::Right),
            ],
        );
        let mut sums: Vec<Figures> = Vec::new();
        for group in MONEY_GROUPS {
            let sum = History::total(figures, |p| money_group(h.partner_type(p)) == group);
            let n = figures
                .keys()
                .filter(|p| money_group(h.partner_type(p)) == group)
                .count();
            g.rows.push(vec![
                match group {
                    "public" => "Public (government, sovereign fund, development bank)".to_string(),
                    "private" => "Private".to_string(),
                    _ => "Other".to_string(),
                },
                n.to_string(),
                self.money(sum.committed),
                percent(&ratio(sum.committed, total.committed, RATIO_PLACES)),
                self.money(sum.paid_in()),
                percent(&ratio(sum.paid_in(), total.paid_in(), RATIO_PLACES)),
                self.money(sum.distributed),
                percent(&ratio(sum.distributed, total.distributed, RATIO_PLACES)),
            ]);
            sums.push(sum);
        }
        g.foot = Some(vec![
            "Total".into(),
            figures.len().to_string(),
            self.money(total.committed),
            String::new(),
            self.money(total.paid_in()),
            String::new(),
            self.money(total.distributed),
            String::new(),
        ]);
        let bars = [
            (
                "Committed",
                [sums[0].committed, sums[1].committed, sums[2].committed],
            ),
            (
                "Paid-in",
                [sums[0].paid_in(), sums[1].paid_in(), sums[2].paid_in()],
            ),
            (
                "Distributed",
                [
                    sums[0].distributed,
                    sums[1].distributed,
                    sums[2].distributed,
                ],
            ),
        ];
        vec![
            Block::Grid(g),
            Block::Chart {
                caption: "Shares of public, private and other money".into(),
                svg: share_bars(&bars),
                legend: vec![("Public", COLOR_PUBLIC), ("Private", COLOR_PRIVATE), ("Other", COLOR_OTHER)],
                // The table above holds the same figures.
                data: Grid::default(),
            },
            Block::Note("Shares are of the fund total, rounded half-even; public money is that of government, sovereign_fund and development_bank partners.".into()),
        ]
    }

    fn partners(&self, figures: &BTreeMap<String, Figures>) -> Vec<Block> {
        let h = &self.h;
        let total = History::total(figures, |_| true);
        let mut capital = Grid::new(
            "Commitments and capital",
            &[
                ("Partner", Align::Left),
                ("Legal name", Align::Left),
                ("Type", Align::Left),
                ("Country", Align::Left),
                ("Committed", Align::Right),
                ("Called", Align::Right),
                ("Paid-in", Align::Right),
                ("Unfunded", Align::Right),
                ("Outstanding", Align::Right),
            ],
        );
        let mut value = Grid::new(
            "Value and performance",
            &[
                ("Partner", Align::Left),
                ("Distributed", Align::Right),
                ("NAV", Align::Right),
                ("NAV share", Align::Right),
                ("DPI", Align::Right),
                ("RVPI", Align::Right),
                ("TVPI", Align::Right),
                ("IRR", Align::Right),
            ],
        );
        for (p, f) in figures {
            let country = h
                .partners
                .get(p)
                .map(|r| r.value.country.clone())
                .unwrap_or_default();
            capital.rows.push(vec![
                p.clone(),
                h.legal_name(p).to_string(),
                h.partner_type(p).to_string(),
                country,
                self.money(f.committed),
                self.money(f.called),
                self.money(f.paid_in()),
                self.money(f.unfunded()),
                self.money(f.outstanding),
            ]);
            let perf = h.performance(f, |x| x == p);
            value.rows.push(vec![
                p.clone(),
                self.money(f.distributed),
                self.money(f.nav()),
                percent(&ratio(f.nav(), total.nav(), RATIO_PLACES)),
                dash(&perf.dpi),
                dash(&perf.rvpi),
                dash(&perf.tvpi),
                percent(&perf.irr),
            ]);
        }
        capital.foot = Some(vec![
            "Fund".into(),
            String::new(),
            String::new(),
            String::new(),
            self.money(total.committed),
            self.money(total.called),
            self.money(total.paid_in()),
            self.money(total.unfunded()),
            self.money(total.outstanding),
        ]);
        let perf = h.performance(&total, |_| true);
        value.foot = Some(vec![
            "Fund".into(),
            self.money(total.distributed),
            self.money(total.nav()),
            percent(&ratio(total.nav(), total.nav(), RATIO_PLACES)),
            dash(&perf.dpi),
            dash(&perf.rvpi),
            dash(&perf.tvpi),
            percent(&perf.irr),
        ]);
        vec![Block::Grid(capital), Block::Grid(value)]
    }

    fn portfolio(&self) -> Result<Vec<Block>> {
        let h = &self.h;
        let holdings = export::holdings_of(h)?;
        let mut g = Grid::new(
            "",
            &[
                ("Startup", Align::Left),
                ("Name", Align::Left),
                ("Country, sector", Align::Left),
                ("Status", Align::Left),
                ("Invested", Align::Right),
                ("Cost held", Align::Right),
                ("Fair value", Align::Right),
                ("Proceeds", Align::Right),
                ("Total value", Align::Right),
                ("Multiple", Align::Right),
                ("Last valued", Align::Keep),
            ],
        );
        let mut sum = export::Holding::default();
        for x in &holdings {
            let info = h.startups.get(&x.startup).map(|r| &r.value);
            g.rows.push(vec![
                x.startup.clone(),
                info.map(|i| i.name.clone()).unwrap_or_default(),
                info.map(|i| format!("{}, {}", i.country, i.sector))
                    .unwrap_or_default(),
                x.status().replace('_', " "),
                self.money(x.invested),
                self.money(x.cost),
                self.money(x.fair_value()),
                self.money(x.proceeds),
                self.money(x.total_value()),
                dash(&ratio(x.total_value(), x.invested, RATIO_PLACES)),
                x.last_valuation
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
            ]);
            sum.invested += x.invested;
            sum.cost += x.cost;
            sum.fair_value_adjustment += x.fair_value_adjustment;
            sum.proceeds += x.proceeds;
        }
        g.foot = Some(vec![
            "Total".into(),
            String::new(),
            String::new(),
            String::new(),
            self.money(sum.invested),
            self.money(sum.cost),
            self.money(sum.fair_value()),
            self.money(sum.proceeds),
            self.money(sum.total_value()),
            dash(&ratio(sum.total_value(), sum.invested, RATIO_PLACES)),
            String::new(),
        ]);
        Ok(vec![
            Block::Grid(g),
            Block::Note("Multiple = (fair value + proceeds) / invested, gross of fees. Fair values are the latest valuations recorded in the ledger.".into()),
        ])
    }

    fn flows(&self) -> Result<Vec<Block>> {
        let h = &self.h;
        // called, paid-in, invested, proceeds, distributions, fees, expenses, net cash
        let mut per: BTreeMap<String, [Decimal; 8]> = BTreeMap::new();
        let parse = |text: &str, seq: u64| {
            crate::money::parse_canonical_amount(text, h.currency)
                .map_err(|e| Error::format(e.to_string()).at_seq(seq))
        };
        for e in &h.entries {
            let q = per.entry(quarter(e.date)).or_default();
            let sign = e.sign();
            for (k, v) in &e.amounts {
                match k.account {
                    Account::Called => {
                        q[0] += v;
                        q[1] += v;
                    }
                    Account::CallReceivable => q[1] -= v,
                    Account::Cash => q[7] += v,
                    _ => {}
                }
            }
            match &*e.base {
                Event::Investment(i) => q[2] += sign * parse(&i.amount, e.seq)?,
                Event::Realization(r) => q[3] += sign * parse(&r.proceeds, e.seq)?,
                Event::Distribution(d) => q[4] += sign * parse(&d.amount, e.seq)?,
                Event::Fee(d) => q[5] += sign * parse(&d.amount, e.seq)?,
                Event::Expense(d) => q[6] += sign * parse(&d.amount, e.seq)?,
                _ => {}
            }
        }
        let mut g = Grid::new(
            "",
            &[
                ("Quarter", Align::Left),
                ("Called", Align::Right),
                ("Paid in", Align::Right),
                ("Invested", Align::Right),
                ("Proceeds", Align::Right),
                ("Distributed", Align::Right),
                ("Fees", Align::Right),
                ("Expenses", Align::Right),
                ("Net cash flow", Align::Right),
                ("Cash at end", Align::Right),
            ],
        );
        let mut cash = Decimal::ZERO;
        let mut totals = [Decimal::ZERO; 8];
        for (q, v) in &per {
            let net = v[1] - v[2] + v[3] - v[4] - v[5] - v[6];
            if net != v[7] {
                return Err(Error::format(format!(
                    "flows of {q} do not add up to the change in cash ({} != {})",
                    h.amount(net),
                    h.amount(v[7])
                )));
            }
            cash += v[7];
            for (t, x) in totals.iter_mut().zip(v) {
                *t += x;
            }
            let mut row = vec![q.clone()];
            row.extend(v.iter().map(|x| self.money(*x)));
            row.push(self.money(cash));
            g.rows.push(row);
        }
        let mut foot = vec!["Total".to_string()];
        foot.extend(totals.iter().map(|x| self.money(*x)));
        foot.push(self.money(cash));
        g.foot = Some(foot);
        Ok(vec![
            Block::Grid(g),
            Block::Note("By quarter of effective date; reversals count in the quarter of the reversal, with the opposite sign. Net cash flow = paid in - invested + proceeds - distributed - fees - expenses. Quarters without entries are omitted.".into()),
        ])
    }

    fn fees(&self, figures: &BTreeMap<String, Figures>) -> Vec<Block> {
        let h = &self.h;
        let mut years: BTreeMap<i32, [Decimal; 2]> = BTreeMap::new();
        for e in &h.entries {
            for (k, v) in &e.amounts {
                match k.account {
                    Account::ManagementFees => years.entry(e.date.year()).or_default()[0] += v,
                    Account::FundExpenses => years.entry(e.date.year()).or_default()[1] += v,
                    _ => {}
                }
            }
        }
        let mut by_year = Grid::new(
            "By year",
            &[
                ("Year", Align::Left),
                ("Management fees", Align::Right),
                ("Fund expenses", Align::Right),
                ("Total", Align::Right),
                ("Fees / committed", Align::Right),
            ],
        );
        for (year, v) in &years {
            let end = time::Date::from_calendar_date(*year, time::Month::December, 31)
                .unwrap_or(h.report_date)
                .min(h.report_date);
            let committed = -h
                .balances_at(end)
                .iter()
                .filter(|(k, _)| k.account == Account::Commitment)
                .map(|(_, v)| *v)
                .sum::<Decimal>();
            by_year.rows.push(vec![
                year.to_string(),
                self.money(v[0]),
                self.money(v[1]),
                self.money(v[0] + v[1]),
                percent(&ratio(v[0], committed, RATIO_PLACES)),
            ]);
        }
        let total = History::total(figures, |_| true);
        by_year.foot = Some(vec![
            "Total".into(),
            self.money(total.management_fees),
            self.money(total.fund_expenses),
            self.money(total.management_fees + total.fund_expenses),
            String::new(),
        ]);
        let mut by_partner = Grid::new(
            "Borne by each partner (pro rata to commitments)",
            &[
                ("Partner", Align::Left),
                ("Type", Align::Left),
                ("Management fees", Align::Right),
                ("Fund expenses", Align::Right),
                ("Total", Align::Right),
                ("Share", Align::Right),
                ("Of paid-in", Align::Right),
            ],
        );
        let all = total.management_fees + total.fund_expenses;
        for (p, f) in figures {
            let t = f.management_fees + f.fund_expenses;
            by_partner.rows.push(vec![
                p.clone(),
                h.partner_type(p).to_string(),
                self.money(f.management_fees),
                self.money(f.fund_expenses),
                self.money(t),
                percent(&ratio(t, all, RATIO_PLACES)),
                percent(&ratio(t, f.paid_in(), RATIO_PLACES)),
            ]);
        }
        by_partner.foot = Some(vec![
            "Fund".into(),
            String::new(),
            self.money(total.management_fees),
            self.money(total.fund_expenses),
            self.money(all),
            String::new(),
            percent(&ratio(all, total.paid_in(), RATIO_PLACES)),
        ]);
        vec![Block::Grid(by_year), Block::Grid(by_partner)]
    }

    fn performance(&self, figures: &BTreeMap<String, Figures>) -> Vec<Block> {
        let h = &self.h;
        let mut g = Grid::new(
            "",
            &[
                ("", Align::Left),
                ("Paid-in", Align::Right),
                ("Distributed", Align::Right),
                ("NAV", Align::Right),
                ("DPI", Align::Right),
                ("RVPI", Align::Right),
                ("TVPI", Align::Right),
                ("IRR", Align::Right),
            ],
        );
        let mut row = |label: &str, f: &Figures, keep: &dyn Fn(&str) -> bool| {
            let perf = h.performance(f, keep);
            g.rows.push(vec![
                label.to_string(),
                self.money(f.paid_in()),
                self.money(f.distributed),
                self.money(f.nav()),
                dash(&perf.dpi),
                dash(&perf.rvpi),
                dash(&perf.tvpi),
                percent(&perf.irr),
            ]);
        };
        row("Fund", &History::total(figures, |_| true), &|_| true);
        for group in MONEY_GROUPS {
            let in_group = |p: &str| money_group(h.partner_type(p)) == group;
            if figures.keys().any(|p| in_group(p)) {
                let label = format!("{}{} partners", group[..1].to_uppercase(), &group[1..]);
                row(&label, &History::total(figures, in_group), &in_group);
            }
        }
        vec![
            Block::Grid(g),
            Block::Note(format!(
                "DPI = distributed / paid-in; RVPI = NAV / paid-in; TVPI = (distributed + NAV) / paid-in, each rounded half-even to 4 places. IRR is the XIRR (actual/365) of contributions (negative), distributions (positive) and the NAV on {} (positive), shown to 2 places of a percent; '-' where none exists.",
                h.report_date
            )),
        ]
    }

    fn verification(&self) -> Vec<Block> {
        let h = &self.h;
        let s = &h.state;
        let b64 = base64::engine::general_purpose::STANDARD.encode(s.root_hash);
        let mut blocks = vec![Block::Status {
            intact: self.chain.intact,
            text: if self.chain.intact {
                format!("Intact: entries 0 to {} verify", s.tree_size - 1)
            } else {
                format!(
                    "FAILED: entry {} does not verify",
                    self.chain.entries_verified
                )
            },
        }];
        if let Some(f) = &self.chain.failure {
            blocks.push(Block::Text(format!(
                "First failure, at entry {} ({}): {}",
                f.seq, f.check, f.message
            )));
        }
        blocks.push(Block::Facts(vec![
            ("Origin".into(), s.origin.clone()),
            ("Tree size".into(), s.tree_size.to_string()),
            (
                "Entries verified".into(),
                self.chain.entries_verified.to_string(),
            ),
            (
                "Signatures verified".into(),
                if self.chain.intact {
                    s.signatures.to_string()
                } else {
                    "-".into()
                },
            ),
        ]));
        let mut g = Grid::new(
            "The ledger state this report describes",
            &[("Item", Align::Left), ("Value", Align::Left)],
        );
        g.rows = vec![
            vec!["Origin".into(), s.origin.clone()],
            vec!["Tree size (entries)".into(), s.tree_size.to_string()],
            vec![
                "Merkle root (RFC 9162), hex".into(),
                hex::encode(s.root_hash),
            ],
            vec!["Merkle root, base64 (as in checkpoints)".into(), b64],
            vec![
                format!("Head: hash of entry {}", s.tree_size - 1),
                hex::encode(s.head_hash),
            ],
        ];
        blocks.push(Block::Grid(g));
        blocks.push(Block::Text(format!(
            "fundledger verify re-derived every hash, link, signature, key role and accounting rule of entries 0 to {} from the stored bytes. Anyone holding the ledger can repeat it with \"fundledger --ledger LEDGER verify\", and reproduce this report byte for byte from the same ledger state with \"fundledger --ledger LEDGER report --fund {}{}\" (or check a signed report directory with \"fundledger --ledger LEDGER verify-export DIR\").",
            s.tree_size - 1,
            h.scope.fund,
            h.scope.as_of.map(|d| format!(" --as-of {d}")).unwrap_or_default()
        )));
        blocks
    }
}

/// The rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    pub markdown: String,
}

/// Render the report of a history with its chain check.
pub fn render(h: History, chain: ChainCheck) -> Result<Rendered> {
    h.check_consistency()?;
    let content = Content { h, chain };
    let figures = content.h.figures();
    let sections: Vec<(&str, Vec<Block>)> = vec![
        ("overview", content.overview(&figures)),
        ("charts", content.charts()?),
        ("public_private", content.public_private(&figures)),
        ("partners", content.partners(&figures)),
        ("portfolio", content.portfolio()?),
        ("flows", content.flows()?),
        ("fees", content.fees(&figures)),
        ("performance", content.performance(&figures)),
        ("verification", content.verification()),
    ];
    let h = &content.h;
    let f = &h.fund.value;
    let status_text = if content.chain.intact {
        "intact"
    } else {
        "FAILED"
    };
    let footer = format!(
        "Generated by {} from ledger {} at tree size {} (head {}). Amounts are exact decimals as booked, in {}; ratios are rounded half-even. This report has no generation time: the same ledger state and as-of date always give the same bytes.",
        export::generator(),
        h.state.origin,
        h.state.tree_size,
        hex::encode(h.state.head_hash),
        h.currency.code()
    );
    let plain: Vec<(&str, String)> = vec![
        ("generator", export::generator()),
        (
            "title",
            format!("{} — report as of {}", f.name, h.report_date),
        ),
        ("fund_name", f.name.clone()),
        ("fund_id", f.fund.clone()),
        ("as_of", h.report_date.to_string()),
        ("currency", h.currency.code().to_string()),
        ("origin", h.state.origin.clone()),
        ("tree_size", h.state.tree_size.to_string()),
        ("root_hash", hex::encode(h.state.root_hash)),
        ("status_text", status_text.to_string()),
        (
            "status_class",
            if content.chain.intact {
                "intact"
            } else {
                "failed"
            }
            .to_string(),
        ),
        ("footer", footer),
    ];
    let mut html_values: BTreeMap<&str, String> = BTreeMap::new();
    let mut markdown_values: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in &plain {
        html_values.insert(k, html_escape(v));
        // Inside code spans (fund id, origin, root hash) the text is shown
        // as is; those values are ids, origins and hex, with no backtick.
        let md = match *k {
            "fund_id" | "origin" | "root_hash" => v.replace('`', ""),
            _ => markdown_escape(v),
        };
        markdown_values.insert(k, md);
    }
    for (k, blocks) in &sections {
        html_values.insert(k, html_blocks(blocks));
        markdown_values.insert(k, markdown_blocks(blocks));
    }
    Ok(Rendered {
        html: fill(HTML_TEMPLATE, &html_values)?,
        markdown: fill(MARKDOWN_TEMPLATE, &markdown_values)?,
    })
}

/// The report's files at a ledger state.
pub fn report_files(ledger: &Ledger, h: History) -> Result<Vec<ExportFile>> {
    let chain = check_chain(ledger, h.state.tree_size)?;
    let rendered = render(h, chain)?;
    Ok(vec![
        ExportFile {
            name: REPORT_HTML.into(),
            bytes: rendered.html.into_bytes(),
        },
        ExportFile {
            name: REPORT_MARKDOWN.into(),
            bytes: rendered.markdown.into_bytes(),
        },
    ])
}

/// `report`: write report.html and report.md for `fund` at the ledger's
/// head into `out` (new or empty), with a signed MANIFEST when `signer` is
/// given. Returns the path of report.html.
pub fn write_report(
    ledger: &Ledger,
    fund: &str,
    as_of: Option<time::Date>,
    signer: Option<&SigningKey>,
    out: &Path,
    progress: &mut crate::history::Progress<'_>,
) -> Result<PathBuf> {
    if let Some(key) = signer {
        export::check_export_signer(ledger, key)?;
    }
    let history = export::load_at_head(ledger, fund, as_of, None, progress)?;
    let state: LedgerState = history.state.clone();
    let files = report_files(ledger, history)?;
    let options = CsvOptions {
        as_of,
        from: None,
        excel: false,
    };
    export::write_signed_dir(
        out,
        ExportKind::Report,
        &state,
        fund,
        options,
        signer,
        &mut |sink| {
            files
                .iter()
                .try_for_each(|f| export::write_file(sink, &f.name, &f.bytes))
        },
    )?;
    Ok(out.join(REPORT_HTML))
}

/// Recompute a signed report from its manifest (for verify-export): the
/// ledger state at its tree size; the files are written to `sink`.
pub fn recompute(
    ledger: &Ledger,
    m: &Manifest,
    progress: &mut crate::history::Progress<'_>,
    sink: &mut dyn export::FileSink,
) -> Result<LedgerState> {
    if m.from.is_some() || m.excel {
        return Err(Error::input(
            "a report manifest must say from start and excel false",
        ));
    }
    let history = History::load(
        ledger,
        &Scope {
            fund: m.fund.clone(),
            tree_size: m.tree_size,
            as_of: m.as_of,
            from: None,
        },
        progress,
    )?;
    let state = history.state.clone();
    for f in report_files(ledger, history)? {
        export::write_file(sink, &f.name, &f.bytes)?;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_once_and_refuses_unknowns() {
        let mut v = BTreeMap::new();
        v.insert("a", "{{b}}".to_string());
        v.insert("b", "B".to_string());
        assert_eq!(fill("x{{a}}y{{b}}", &v).unwrap(), "x{{b}}yB");
        assert!(fill("{{c}}", &v).is_err());
        assert!(fill("{{a", &v).is_err());
        assert!(fill("{{A}}", &v).is_err());
    }

    #[test]
    fn escaping() {
        assert_eq!(html_escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(markdown_escape("a|b*c_d <x>"), "a\\|b\\*c_d &lt;x&gt;");
        assert_eq!(markdown_escape("_x_"), "\\_x\\_");
        assert_eq!(markdown_escape("# title"), "\\# title");
        assert_eq!(markdown_escape("#1"), "#1");
        assert_eq!(markdown_escape("1. item"), "1\\. item");
        assert_eq!(markdown_escape("0.00"), "0.00");
        assert_eq!(markdown_escape("-12 530.00"), "-12 530.00");
        assert_eq!(markdown_escape("- x"), "\\- x");
        assert_eq!(markdown_escape("---"), "\\---");
        assert_eq!(markdown_escape("[link](http://x)"), "\\[link\\](http://x)");
    }

    #[test]
    fn digits_are_grouped_exactly() {
        assert_eq!(group_digits("150000000.00"), "150\u{202F}000\u{202F}000.00");
        assert_eq!(group_digits("-1234.5"), "-1\u{202F}234.5");
        assert_eq!(group_digits("999"), "999");
        assert_eq!(group_digits("0.000"), "0.000");
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(&Some("0.7439".into())), "74.39 %");
        assert_eq!(percent(&Some("0.064972".into())), "6.50 %");
        assert_eq!(percent(&Some("-0.5".into())), "-50.00 %");
        assert_eq!(percent(&None), "-");
    }

    #[test]
    fn nice_steps() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(nice_step(d("410000000")), d("100000000"));
        assert_eq!(nice_step(d("167250000")), d("50000000"));
        assert_eq!(nice_step(d("0.3")), d("0.1"));
        assert_eq!(nice_step(Decimal::ZERO), Decimal::ONE);
        assert_eq!(compact(d("150000000"), d("50000000")), "150 M");
        assert_eq!(compact(d("2500000000"), d("500000000")), "2500 M");
    }

    #[test]
    fn templates_have_only_known_placeholders() {
        let names = [
            "generator",
            "title",
            "fund_name",
            "fund_id",
            "as_of",
            "currency",
            "origin",
            "tree_size",
            "root_hash",
            "status_text",
            "status_class",
            "footer",
            "overview",
            "charts",
            "public_private",
            "partners",
            "portfolio",
            "flows",
            "fees",
            "performance",
            "verification",
        ];
        let values: BTreeMap<&str, String> = names.iter().map(|n| (*n, String::new())).collect();
        fill(HTML_TEMPLATE, &values).unwrap();
        fill(MARKDOWN_TEMPLATE, &values).unwrap();
        for external in [
            "http:", "https:", "src=", "href=", "url(", "@import", "<link", "<script",
        ] {
            assert!(
                !HTML_TEMPLATE.contains(external),
                "the HTML template refers to {external}"
            );
        }
    }
}
