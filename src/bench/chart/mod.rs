//! The benchmark's results as one self-contained SVG picture (`--export-svg`), drawn with
//! plotters: one row per pair, grouped by directory, and three panels beside the names —
//! throughput (median bar, min–max whisker), CPU s/GiB split into each end's share, and each
//! end's data-path syscalls. Every number is also written as text, and shares and reference rows
//! are told apart by hatching as well as colour. It only draws `Results`; `table` prints them.

mod marks;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::stats::{Kind, Outcome, Results, Row, Summary};
use super::table;
use marks::{
    Area, Drawn, Fill, GRID, Look, MUTED, RULE, bar, cut, dashed, rgb, rule, shown, whisker, write,
};

/// A 16:9 slide is 1600 wide at 100 %; the height follows the rows.
const WIDTH: u32 = 1600;
const MARGIN: i32 = 24;
/// Right edge of the names column.
const NAMES_RIGHT: i32 = 372;
/// Title, subtitle and the panels' headings, above the first row.
const TOP: i32 = 166;
/// Heights of a pair's row, of a directory's heading, of the line before the reference rows.
const ROW: i32 = 56;
const DIR_LINE: i32 = 42;
const APART_LINE: i32 = 34;
/// Below the rows: the x axes with their tick labels.
const AXIS: i32 = 34;
const CAPTION_LINE: i32 = 23;
/// Where the log scale of syscalls starts.
const LOG_FLOOR: f64 = 0.5;
/// The largest value an axis reaches: plotters' search for ticks does not end on a range near
/// `f64::MAX`, and a report read back may hold anything. Bars beyond end at the axis' end.
const LARGEST: f64 = 1e100;
/// Characters of a caption line, which fills the picture's width.
const CAPTION_CHARS: usize = 220;
/// Names longer than this many characters are cut, so they stay in their column.
const NAME_CHARS: usize = 40;

/// Where a panel is drawn: its left edge and width.
#[derive(Clone, Copy)]
struct Column {
    x: i32,
    w: i32,
}

const THROUGHPUT: Column = Column { x: 396, w: 536 };
const CPU: Column = Column { x: 964, w: 296 };
const SYSCALLS: Column = Column { x: 1294, w: 282 };

/// Bars of zcp's pairs, and of the ceiling and the other tools.
const PAIR_FILL: Fill = Fill::Solid(RGBColor(0x00, 0x72, 0xb2));
const REFERENCE_FILL: Fill =
    Fill::Hatched { fill: RGBColor(0xe4, 0xe4, 0xe4), ink: RGBColor(0x6e, 0x6e, 0x6e) };
/// The sender's share is solid, the receiver's hatched, in both per-side panels.
const CPU_SEND: Fill = Fill::Solid(RGBColor(0xd5, 0x5e, 0x00));
const CPU_RECV: Fill =
    Fill::Hatched { fill: RGBColor(0xf9, 0xd9, 0xc0), ink: RGBColor(0xd5, 0x5e, 0x00) };
const CALLS_SEND: Fill = Fill::Solid(RGBColor(0x00, 0x9e, 0x73));
const CALLS_RECV: Fill =
    Fill::Hatched { fill: RGBColor(0xc6, 0xea, 0xdf), ink: RGBColor(0x00, 0x7a, 0x59) };

/// The fills of the bars, for tests that count them: throughput of zcp's pairs and of the
/// reference rows, then CPU and syscalls of the sender and the receiver.
pub const FILLS: [(&str, (u8, u8, u8)); 6] = [
    ("pair", rgb(PAIR_FILL)),
    ("reference", rgb(REFERENCE_FILL)),
    ("cpu send", rgb(CPU_SEND)),
    ("cpu recv", rgb(CPU_RECV)),
    ("syscalls send", rgb(CALLS_SEND)),
    ("syscalls recv", rgb(CALLS_RECV)),
];

/// The picture of a benchmark: one group of rows per directory measured.
pub fn svg(all: &[Results]) -> anyhow::Result<String> {
    let lines = lines(all);
    let rows_h: i32 = lines.iter().map(|l| l.height()).sum();
    let caption = caption(all);
    let height = TOP + rows_h + AXIS + 16 + CAPTION_LINE * caption.len() as i32 + MARGIN;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height as u32)).into_drawing_area();
        draw(&root, all, &lines, rows_h, &caption)
            .map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
    }
    Ok(out)
}

/// One horizontal band of the picture.
enum Line<'a> {
    /// The heading of a directory's rows.
    Dir(&'a Results),
    /// A contender's row.
    Pair(&'a Row),
    /// The rule between zcp's pairs and the ceiling and other tools; whether a ceiling is
    /// among them.
    Apart { ceiling: bool },
}

impl Line<'_> {
    fn height(&self) -> i32 {
        match self {
            Line::Dir(_) => DIR_LINE,
            Line::Pair(_) => ROW,
            Line::Apart { .. } => APART_LINE,
        }
    }
}

/// Per directory: its heading, zcp's pairs, then (below a rule) the ceiling and other tools.
fn lines(all: &[Results]) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    for results in all {
        lines.push(Line::Dir(results));
        let (ours, reference): (Vec<&Row>, Vec<&Row>) =
            results.rows.iter().partition(|r| r.kind == Kind::Zcp);
        lines.extend(ours.into_iter().map(Line::Pair));
        if !reference.is_empty() {
            let ceiling = reference.iter().any(|r| r.kind == Kind::Ceiling);
            lines.push(Line::Apart { ceiling });
            lines.extend(reference.into_iter().map(Line::Pair));
        }
    }
    lines
}

/// Each line with the y of its top edge, from the first row's top.
fn placed<'a, 'b>(lines: &'b [Line<'a>]) -> impl Iterator<Item = (i32, &'b Line<'a>)> {
    lines.iter().scan(0, |y, line| {
        let top = *y;
        *y += line.height();
        Some((top, line))
    })
}

/// Everything, top to bottom: headings, the names column, the three panels, the caption.
fn draw(root: &Area, all: &[Results], lines: &[Line], rows_h: i32, caption: &[String]) -> Drawn {
    root.fill(&WHITE)?;
    heading(root, all)?;
    names(root, lines)?;
    throughput(root, lines, rows_h)?;
    cpu(root, lines, rows_h)?;
    syscalls(root, lines, rows_h)?;
    let top = TOP + rows_h + AXIS + 16;
    for (i, line) in caption.iter().enumerate() {
        let y = top + CAPTION_LINE * i as i32;
        write(root, line, (MARGIN, y), Look::CAPTION)?;
    }
    Ok(())
}

/// The title, and above each panel what it shows and how to read it.
fn heading(root: &Area, all: &[Results]) -> Drawn {
    let subject = all.first().map(table::sent_and_rounds).unwrap_or_default();
    write(root, &format!("zcp bench: {subject}"), (MARGIN, 22), Look::TITLE)?;
    let sub =
        "one row per sender:receiver pair or other tool, each end its own process, over loopback";
    write(root, sub, (MARGIN, 60), Look::SUBTITLE)?;
    let spread = match all.first().map_or(0, |r| r.rounds) {
        1 => "bar: the one round (more --rounds draw their spread)".to_string(),
        n => format!("bar: median · whisker: slowest–fastest of {n} rounds"),
    };
    let panels = [
        (THROUGHPUT, "Throughput", spread),
        (CPU, "CPU s/GiB", "sender (solid) + receiver (hatched)".to_string()),
        (SYSCALLS, "Data-path syscalls", "sender (solid) / receiver (hatched), log".to_string()),
    ];
    for (column, title, how) in panels {
        write(root, title, (column.x, TOP - 66), Look::HEADER)?;
        write(root, &how, (column.x, TOP - 40), Look::NOTE)?;
    }
    if all.iter().flat_map(|r| &r.rows).any(|r| r.kind != Kind::Zcp) {
        let hatched = "hatched, below the line: zcp's ceiling and other tools";
        write(root, hatched, (THROUGHPUT.x, TOP - 20), Look::NOTE)?;
    }
    Ok(())
}

/// The names column: directory headings, pair names with the paths they took, the rule.
fn names(root: &Area, lines: &[Line]) -> Drawn {
    for (top, line) in placed(lines) {
        let (top, mid) = (TOP + top, TOP + top + line.height() / 2);
        match line {
            Line::Dir(results) => {
                let y = top + 4;
                rule(root, y, MARGIN, WIDTH as i32 - MARGIN, RULE)?;
                let text = cut(&format!("copies in {}", shown(&results.dir)), CAPTION_CHARS);
                write(root, &text, (MARGIN, mid + 3), Look::DIR)?;
            }
            Line::Pair(row) => {
                let detail = detail(row);
                let y = if detail.is_empty() { mid } else { mid - 9 };
                write(root, &cut(&shown(&row.name), NAME_CHARS), (NAMES_RIGHT, y), Look::NAME)?;
                write(root, &detail, (NAMES_RIGHT, mid + 12), Look::DETAIL)?;
            }
            Line::Apart { ceiling } => {
                dashed(root, mid, NAMES_RIGHT + 12, WIDTH as i32 - MARGIN)?;
                let what = if *ceiling { "ceiling and other tools" } else { "other tools" };
                write(root, what, (NAMES_RIGHT, mid), Look::APART)?;
            }
        }
    }
    Ok(())
}

/// `sendfile → splice · 1.24× buffered`: the paths a row took (its name may say otherwise
/// after a fallback) and its ratio to the buffered pair.
fn detail(row: &Row) -> String {
    let Outcome::Measured(s) = &row.outcome else { return String::new() };
    let paths = match (&s.send_path, &s.recv_path) {
        (Some(send), Some(recv)) => Some(format!("{} → {}", shown(send), shown(recv))),
        _ => None,
    };
    let ratio = s.ratio_to_buffered.map(|r| format!("{r:.2}× buffered"));
    paths.into_iter().chain(ratio).collect::<Vec<_>>().join(" · ")
}

/// Median bars with min–max whiskers, on one scale for every directory.
fn throughput(root: &Area, lines: &[Line], rows_h: i32) -> Drawn {
    let measured = || measured_rows(lines);
    let top = measured().map(|(_, _, s)| s.max).fold(0.0, f64::max);
    let (unit, name) = rate_unit(top);
    let labels = measured().map(|(_, _, s)| {
        Look::VALUE.width(&rate_label(s)).max(Look::SPREAD.width(&spread_label(s)))
    });
    let x_max = linear_max(top / unit, labels.fold(0.0, f64::max), THROUGHPUT.w);
    let label = |v: &f64| tick(*v);
    let chart = panel(root, THROUGHPUT, rows_h, x_max, &label, name)?;
    // Values are kept in the axis' range: plotters overflows mapping one far beyond it.
    let x = |v: f64| chart.backend_coord(&((v / unit).clamp(0.0, x_max), 0.0)).0;
    for (top, line) in placed(lines) {
        let Line::Pair(row) = line else { continue };
        let mid = TOP + top + ROW / 2;
        let Outcome::Measured(s) = &row.outcome else {
            let text = cut(&shown(&table::status(&row.outcome)), 80);
            write(root, &text, (THROUGHPUT.x + 8, mid), Look::MISSING)?;
            continue;
        };
        let fill = if row.kind == Kind::Zcp { PAIR_FILL } else { REFERENCE_FILL };
        bar(root, (x(0.0), mid - 14), (x(s.median), mid + 14), fill)?;
        if s.max > s.min {
            whisker(root, x(s.min), x(s.max), mid)?;
        }
        let end = x(s.max).max(x(s.median)) + 8;
        if s.max > s.min {
            write(root, &rate_label(s), (end, mid - 8), Look::VALUE)?;
            write(root, &spread_label(s), (end, mid + 12), Look::SPREAD)?;
        } else {
            write(root, &rate_label(s), (end, mid), Look::VALUE)?;
        }
    }
    Ok(())
}

/// `min–max 1.10–1.40 GiB/s`: the spread of the rounds.
fn spread_label(s: &Summary) -> String {
    format!("min–max {}", table::range(s.min, s.max))
}

/// `1.23 GiB/s`, and for a tree `· 3400 files/s`.
fn rate_label(s: &Summary) -> String {
    match s.files_per_s {
        Some(files) => format!("{} · {files:.0} files/s", table::rate(s.median)),
        None => table::rate(s.median),
    }
}

/// The sender's and the receiver's CPU per GiB, stacked.
fn cpu(root: &Area, lines: &[Line], rows_h: i32) -> Drawn {
    let label = |s: &Summary| format!("{:.2} + {:.2}", s.send.cpu_s_per_gib, s.recv.cpu_s_per_gib);
    let total = |s: &Summary| s.send.cpu_s_per_gib + s.recv.cpu_s_per_gib;
    let top = measured_rows(lines).map(|(_, _, s)| total(s)).fold(0.0, f64::max);
    let widest = measured_rows(lines).map(|(_, _, s)| Look::VALUE.width(&label(s)));
    let x_max = linear_max(top, widest.fold(0.0, f64::max), CPU.w);
    let tick_label = |v: &f64| tick(*v);
    let chart = panel(root, CPU, rows_h, x_max, &tick_label, "s/GiB")?;
    let x = |v: f64| chart.backend_coord(&(v.clamp(0.0, x_max), 0.0)).0;
    for (top, _, s) in measured_rows(lines) {
        let mid = TOP + top + ROW / 2;
        let send = s.send.cpu_s_per_gib;
        bar(root, (x(0.0), mid - 14), (x(send), mid + 14), CPU_SEND)?;
        bar(root, (x(send), mid - 14), (x(total(s)), mid + 14), CPU_RECV)?;
        write(root, &label(s), (x(total(s)) + 8, mid), Look::VALUE)?;
    }
    Ok(())
}

/// Each end's data-path syscalls, on a log scale; other tools report none.
fn syscalls(root: &Area, lines: &[Line], rows_h: i32) -> Drawn {
    let counts = |s: &Summary| [s.send.syscalls, s.recv.syscalls];
    let most = measured_rows(lines).flat_map(|(_, _, s)| counts(s)).flatten().max().unwrap_or(1);
    let x_max = log_max(most as f64, Look::COUNT.width(&most.to_string()), SYSCALLS.w);
    let area = panel_area(root, SYSCALLS, rows_h);
    // From below 1, so that a single call still shows a bar.
    let mut chart = ChartBuilder::on(&area)
        .x_label_area_size(AXIS)
        .build_cartesian_2d((LOG_FLOOR..x_max).log_scale(), f64::from(rows_h)..0.0)?;
    let label = |v: &f64| count_tick(*v);
    mesh(&mut chart, &label, "calls")?;
    let x = |v: u64| chart.backend_coord(&((v.max(1) as f64).min(x_max), 0.0)).0;
    let zero = chart.backend_coord(&(LOG_FLOOR, 0.0)).0;
    for (top, _, s) in measured_rows(lines) {
        let mid = TOP + top + ROW / 2;
        let [Some(send), Some(recv)] = counts(s) else {
            write(root, "not counted: not zcp", (SYSCALLS.x + 8, mid), Look::MISSING)?;
            continue;
        };
        bar(root, (zero, mid - 15), (x(send), mid - 1), CALLS_SEND)?;
        bar(root, (zero, mid + 1), (x(recv), mid + 15), CALLS_RECV)?;
        write(root, &send.to_string(), (x(send) + 6, mid - 8), Look::COUNT)?;
        write(root, &recv.to_string(), (x(recv) + 6, mid + 8), Look::COUNT)?;
    }
    Ok(())
}

/// The measured rows with the y of their line's top.
fn measured_rows<'a>(lines: &'a [Line<'a>]) -> impl Iterator<Item = (i32, &'a Row, &'a Summary)> {
    placed(lines).filter_map(|(top, line)| match line {
        Line::Pair(row @ Row { outcome: Outcome::Measured(s), .. }) => Some((top, *row, &**s)),
        _ => None,
    })
}

/// The area of a panel: its rows and its axis below them.
fn panel_area<'a>(root: &Area<'a>, column: Column, rows_h: i32) -> Area<'a> {
    root.clone().shrink((column.x, TOP), (column.w as u32, (rows_h + AXIS) as u32))
}

/// A panel on a linear scale from 0 to `x_max`; y is pixels from the first row's top.
fn panel<'a>(
    root: &Area<'a>,
    column: Column,
    rows_h: i32,
    x_max: f64,
    label: &dyn Fn(&f64) -> String,
    unit: &str,
) -> Result<
    ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    DrawingAreaErrorKind<std::io::Error>,
> {
    let area = panel_area(root, column, rows_h);
    let mut chart = ChartBuilder::on(&area)
        .x_label_area_size(AXIS)
        .build_cartesian_2d(0.0..x_max, f64::from(rows_h)..0.0)?;
    mesh(&mut chart, label, unit)?;
    Ok(chart)
}

/// Vertical grid lines and the x axis with its ticks; the unit is written after the last tick.
fn mesh<X>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, RangedCoordf64>>,
    label: &dyn Fn(&f64) -> String,
    unit: &str,
) -> Drawn
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .y_labels(0)
        .x_labels(6)
        .max_light_lines(0)
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .x_label_style(Look::TICK.style())
        .x_label_formatter(label)
        .x_desc(unit)
        .axis_desc_style(Look::TICK.style())
        .draw()?;
    Ok(())
}

/// The x range of a linear panel that leaves room for a label `label` pixels wide after the
/// longest bar.
fn linear_max(top: f64, label: f64, width: i32) -> f64 {
    let share = bar_share(label, width);
    if top > 0.0 { top.min(LARGEST) / share } else { 1.0 }
}

/// The same for the log scale from `LOG_FLOOR`.
fn log_max(top: f64, label: f64, width: i32) -> f64 {
    let decades = (top.clamp(10.0, LARGEST) / LOG_FLOOR).log10() / bar_share(label, width);
    LOG_FLOOR * 10f64.powf(decades)
}

/// The share of a panel's width the longest bar may take, leaving the rest to its label (and a
/// gap), but at least half.
fn bar_share(label: f64, width: i32) -> f64 {
    let width = f64::from(width);
    ((width - label - 16.0) / width).max(0.5)
}

/// The unit of the throughput axis for rates up to `top`, in bytes per second.
fn rate_unit(top: f64) -> (f64, &'static str) {
    const KIB: f64 = 1024.0;
    match top {
        t if t >= KIB * KIB * KIB => (KIB * KIB * KIB, "GiB/s"),
        t if t >= KIB * KIB => (KIB * KIB, "MiB/s"),
        _ => (KIB, "KiB/s"),
    }
}

/// A linear tick: `0`, `0.5`, `1.5`, `250`.
fn tick(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A log tick: `1`, `100`, `10k`, `1M`.
fn count_tick(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{}M", tick(v / 1e6)),
        v if v >= 1e3 => format!("{}k", tick(v / 1e3)),
        v => tick(v),
    }
}

/// The machine, the command and how the numbers were taken.
fn caption(all: &[Results]) -> Vec<String> {
    let Some(first) = all.first() else { return Vec::new() };
    let machine = format!("Machine: {}", shown(&first.machine.describe()));
    let command = format!("Command: {}", shown(&first.command));
    let how = "Throughput: bytes over the wall time from starting the sender until both ends \
               exited. CPU: user + system time of each process, per GiB. Syscalls: the data-path \
               calls zcp's own reports count.";
    [machine, command, how.to_string()].iter().flat_map(|line| wrap(line, CAPTION_CHARS)).collect()
}

/// `text` in lines of at most `max` characters, broken at spaces (a longer word is cut):
/// joined with single spaces, the lines are `text` again.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= max => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.into_iter().map(|line| cut(&line, max)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_join_back_to_the_text() {
        assert_eq!(wrap("zcp bench --size 8M", 9), ["zcp bench", "--size 8M"]);
        let command = "zcp bench --dir /a/very/long/path --dir /another --export-svg x.svg";
        for max in [17, 20, 40, 200] {
            let lines = wrap(command, max);
            assert!(lines.iter().all(|l| l.chars().count() <= max), "{lines:?}");
            assert_eq!(lines.join(" "), command);
        }
        assert_eq!(wrap("abcdefgh", 4), ["abc…"], "a longer word is cut");
    }

    #[test]
    fn axes_leave_room_for_labels_and_stay_finite() {
        assert_eq!(linear_max(0.0, 50.0, 500), 1.0);
        assert!((linear_max(2.0, 100.0, 500) - 2.0 * 500.0 / 384.0).abs() < 1e-9);
        assert_eq!(linear_max(1.0, 400.0, 500), 2.0, "the bar keeps half the panel");
        assert!(linear_max(f64::MAX, 10.0, 500).is_finite());
        assert!(log_max(u64::MAX as f64, 10.0, 300).is_finite());
        assert_eq!(count_tick(10_000.0), "10k");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(2.0), "2");
    }
}
