//! How a load profile is shown: a table in the terminal, and one self-contained HTML page whose
//! plots (SVG, drawn by plotters) show how lateness, loss and request times grow with the load.

use super::figures::Figures;
use super::LoadReport;
use plotters::prelude::*;
use std::fmt::Write;

/// The terminal table: one row per workload.
pub fn table(report: &LoadReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>6} {:>5} {:>5} {:>9} {:>7} {:>9} {:>5} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7}",
        "events", "users", "calls", "scheduled", "refused", "delivered", "lost", "dup", "early",
        "late p50", "p90", "p99", "max", "req p99", "hb ref", "cpu h/s"
    );
    for f in &report.runs {
        let _ = writeln!(
            out,
            "{:>6} {:>5} {:>5} {:>9} {:>7} {:>9} {:>5} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7}",
            f.events,
            f.users,
            f.heartbeaters,
            f.scheduled,
            f.refused_total(),
            f.delivered_once,
            f.lost,
            f.duplicated,
            f.early,
            ms(f.lateness_ms.p50),
            ms(f.lateness_ms.p90),
            ms(f.lateness_ms.p99),
            ms(f.lateness_ms.max),
            f.request_ms.get("schedule").map_or("-".into(), |p| ms(p.p99)),
            f.heartbeats_refused,
            cpu_ratio(f),
        );
    }
    let _ = writeln!(
        out,
        "lateness: from due by the harness's clock to the /sync answer carrying the event (ms); \
         cpu h/s: the harness's CPU time over the server's"
    );
    for f in &report.runs {
        let _ = writeln!(out, "{}", server_clock_line(f));
        if !f.refused.is_empty() {
            let refusals: Vec<String> =
                f.refused.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            let _ = writeln!(
                out,
                "  {} events: refused {}",
                f.events,
                refusals.join(", ")
            );
        }
        if f.behind_plan > 0 {
            let _ = writeln!(
                out,
                "  {} events: scheduling fell behind the plan for {} (they got the minimal delay)",
                f.events, f.behind_plan
            );
        }
    }
    out
}

fn ms(value: f64) -> String {
    format!("{value:.0}")
}

fn cpu_ratio(f: &Figures) -> String {
    match f.server_cpu_ms {
        Some(server) if server > 0 => format!("{:.2}", f.harness_cpu_ms as f64 / server as f64),
        _ => "-".into(),
    }
}

/// What the server's own timestamps say, beside the harness's figure.
fn server_clock_line(f: &Figures) -> String {
    let stamps = match f.stamps_scheduled_time {
        Some(true) => "it stamps late events with their scheduled time, not the time it sent them",
        Some(false) => "it stamps events with the time it sent them",
        None => "no stamps to compare",
    };
    format!(
        "  {} events: by the server's timestamps p50 {} ms, p99 {} ms, max {} ms; stamp to \
         harness p90 {} ms (ordinary messages: {} ms): {stamps}",
        f.events,
        ms(f.server_lateness_ms.p50),
        ms(f.server_lateness_ms.p99),
        ms(f.server_lateness_ms.max),
        ms(f.stamp_to_arrival_ms.p90),
        ms(f.probe_stamp_to_arrival_ms.p90),
    )
}

/// The HTML page: header, plots (for a sweep), and the figures of each workload.
pub fn html(report: &LoadReport) -> String {
    let mut page = String::new();
    let target = &report.target;
    let title = format!(
        "Delayed events under load: {} {}",
        target.name,
        target.version.as_deref().unwrap_or("")
    );
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{CSS}</style></head><body>\
         <header><h1>{title}</h1><p>{} at {} · {} · {} · delay {} ms, spread {} ms · harness {} {}</p></header>",
        esc(&target.kind),
        esc(&target.base_url),
        esc(&report.api_form),
        esc(&report.started_at),
        report.runs.first().map_or(0, |f| f.delay_ms),
        report.runs.first().map_or(0, |f| f.spread_ms),
        report.harness.name,
        report.harness.version,
    );
    if report.interrupted {
        page.push_str("<p class=\"warn\">Interrupted: the figures are those gathered so far.</p>");
    }
    page.push_str("<section class=\"plots\">");
    if report.runs.len() > 1 {
        page.push_str(&figure(
            "Lateness by load",
            "From due (harness clock) to the /sync answer carrying the event",
            &lateness_plot(&report.runs),
        ));
        page.push_str(&figure(
            "What became of the events",
            "Delivered exactly once, lost, duplicated, early, refused",
            &delivery_plot(&report.runs),
        ));
        page.push_str(&figure(
            "Request times",
            "Scheduling and management requests, p50 and p99",
            &request_plot(&report.runs),
        ));
    } else {
        page.push_str(
            "<p class=\"note\">One workload: run with <code>--sweep 10,100,1000</code> to see how the figures grow with the load.</p>",
        );
    }
    page.push_str("</section>");
    page.push_str(&figures_table(report));
    page.push_str("<footer>lateness: harness clock, from just before the request that set the event's timer plus its delay, to the /sync answer carrying it. Server figure: origin_server_ts minus the same due time on the wall clock.</footer></body></html>");
    page
}

fn figure(title: &str, caption: &str, svg: &str) -> String {
    format!(
        "<figure><h2>{}</h2>{svg}<figcaption>{}</figcaption></figure>",
        esc(title),
        esc(caption)
    )
}

fn figures_table(report: &LoadReport) -> String {
    let mut t = String::from(
        "<table><thead><tr><th>events</th><th>users</th><th>call members</th><th>scheduled</th>\
         <th>refused</th><th>delivered once</th><th>lost</th><th>duplicated</th><th>early</th>\
         <th>late p50</th><th>p90</th><th>p99</th><th>max</th><th>server p99</th>\
         <th>schedule p99</th><th>heartbeats refused</th><th>CPU harness / server</th></tr></thead><tbody>",
    );
    for f in &report.runs {
        let bad = |n: usize| if n > 0 { " class=\"bad\"" } else { "" };
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td><td{}>{}</td>\
             <td{}>{}</td><td{}>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td{}>{}</td><td>{} ms / {}</td></tr>",
            f.events,
            f.users,
            f.heartbeaters,
            f.scheduled,
            bad(f.refused_total()),
            f.refused_total(),
            f.delivered_once,
            bad(f.lost),
            f.lost,
            bad(f.duplicated),
            f.duplicated,
            bad(f.early),
            f.early,
            ms(f.lateness_ms.p50),
            ms(f.lateness_ms.p90),
            ms(f.lateness_ms.p99),
            ms(f.lateness_ms.max),
            ms(f.server_lateness_ms.p99),
            f.request_ms.get("schedule").map_or("-".into(), |p| ms(p.p99)),
            bad(f.heartbeats_refused),
            f.heartbeats_refused,
            f.harness_cpu_ms,
            f.server_cpu_ms.map_or("unknown".into(), |s| format!("{s} ms")),
        );
    }
    t.push_str("</tbody></table><ul class=\"stamps\">");
    for f in &report.runs {
        let _ = write!(t, "<li>{}</li>", esc(server_clock_line(f).trim()));
    }
    t.push_str("</ul>");
    t
}

const CSS: &str =
    "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}\
header p{margin:0;color:#c9d1e0}.plots{display:flex;flex-wrap:wrap;gap:18px;padding:18px 28px}\
figure{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin:0;padding:12px 14px}\
figure h2{font-size:16px;margin:0 0 6px}figcaption{color:#5b6475;font-size:13px}\
table{border-collapse:collapse;margin:0 28px 18px;background:#fff;font-size:13px}\
th,td{border:1px solid #dde1e8;padding:5px 8px;text-align:right}th{background:#eef1f5}\
td.bad{background:#fde8e8;color:#a4161a;font-weight:600}.warn{margin:12px 28px;color:#a4161a}\
.note{color:#5b6475}.stamps{margin:0 28px 14px;color:#3a4252;font-size:13px}footer{color:#5b6475;font-size:12px;padding:0 28px 24px}";

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PLOT_SIZE: (u32, u32) = (560, 340);

/// One line of a plot: its name, its colour, and its (events, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// Series drawn as lines with points, on a logarithmic load axis.
fn line_plot(y_label: &str, series: &[Series]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        let _ = root.fill(&WHITE);
        let xs = series.iter().flat_map(|s| s.2.iter().map(|p| p.0));
        let ys = series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
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
        let _ = chart
            .configure_mesh()
            .x_desc("delayed events in the workload")
            .y_desc(y_label)
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(226, 229, 235))
            .x_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw();
        for (name, color, points) in series {
            let color = *color;
            let drawn = chart.draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ));
            if let Ok(drawn) = drawn {
                drawn.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
            let _ = chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())));
        }
        let _ = chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 204, 212))
            .draw();
        let _ = root.present();
    }
    svg
}

fn svg_error() -> String {
    "<p>(plot unavailable)</p>".into()
}

const BLUE: RGBColor = RGBColor(37, 99, 235);
const ORANGE: RGBColor = RGBColor(234, 134, 0);
const RED: RGBColor = RGBColor(200, 30, 40);
const GREY: RGBColor = RGBColor(90, 98, 112);
const GREEN: RGBColor = RGBColor(22, 140, 70);
const PURPLE: RGBColor = RGBColor(120, 60, 190);

fn per_run(runs: &[Figures], value: impl Fn(&Figures) -> f64) -> Vec<(f64, f64)> {
    runs.iter().map(|f| (f.events as f64, value(f))).collect()
}

fn lateness_plot(runs: &[Figures]) -> String {
    line_plot(
        "lateness (ms)",
        &[
            ("p50", BLUE, per_run(runs, |f| f.lateness_ms.p50)),
            ("p90", ORANGE, per_run(runs, |f| f.lateness_ms.p90)),
            ("p99", RED, per_run(runs, |f| f.lateness_ms.p99)),
            ("max", GREY, per_run(runs, |f| f.lateness_ms.max)),
        ],
    )
}

fn delivery_plot(runs: &[Figures]) -> String {
    // Shares of the events that should have been sent, except refusals: of all asked for.
    let share = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    let to_send = |f: &Figures| f.scheduled - f.cancelled;
    let asked = |f: &Figures| f.scheduled + f.refused_total();
    line_plot(
        "% of the workload's events",
        &[
            (
                "delivered once",
                GREEN,
                per_run(runs, |f| share(f.delivered_once, to_send(f))),
            ),
            ("lost", RED, per_run(runs, |f| share(f.lost, to_send(f)))),
            (
                "duplicated",
                PURPLE,
                per_run(runs, |f| share(f.duplicated, to_send(f))),
            ),
            (
                "early",
                ORANGE,
                per_run(runs, |f| share(f.early, to_send(f))),
            ),
            (
                "refused",
                GREY,
                per_run(runs, |f| share(f.refused_total(), asked(f))),
            ),
        ],
    )
}

fn request_plot(runs: &[Figures]) -> String {
    let of = |kind: &'static str, pick: fn(&super::figures::Percentiles) -> f64| {
        per_run(runs, move |f| f.request_ms.get(kind).map_or(0.0, pick))
    };
    line_plot(
        "request time (ms)",
        &[
            ("schedule p50", BLUE, of("schedule", |p| p.p50)),
            ("schedule p99", RED, of("schedule", |p| p.p99)),
            (
                "management p99",
                PURPLE,
                per_run(runs, |f| {
                    ["cancel", "send", "restart"]
                        .iter()
                        .filter_map(|k| f.request_ms.get(*k))
                        .map(|p| p.p99)
                        .fold(0.0, f64::max)
                }),
            ),
        ],
    )
}
