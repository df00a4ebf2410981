//! How a load profile is shown: a table in the terminal, and one self-contained HTML page whose
//! plots (SVG, drawn by plotters) show how lateness, loss and request times grow with the load.
//! With earlier reports beside it (`--beside`), the page is `side_by_side.rs`'s.

use super::figures::Figures;
use super::plot::{line_plot, Series};
use super::{side_by_side, Beside, LoadReport};
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
pub(super) fn server_clock_line(f: &Figures) -> String {
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

/// The HTML page: this run's alone, or beside earlier runs' (`--beside`).
pub fn html(report: &LoadReport, beside: &[Beside]) -> String {
    if beside.is_empty() {
        single_page(report)
    } else {
        side_by_side::page(report, beside)
    }
}

/// One run's page: header, plots (for a sweep), and the figures of each workload.
fn single_page(report: &LoadReport) -> String {
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
    page.push_str(FOOTER);
    page
}

pub(super) const FOOTER: &str = "<footer>lateness: harness clock, from just before the request that set the event's timer plus its delay, to the /sync answer carrying it. Server figure: origin_server_ts minus the same due time on the wall clock.</footer></body></html>";

pub(super) const MANAGEMENT: [&str; 3] = ["cancel", "send", "restart"];

pub(super) fn management_p99(f: &Figures) -> f64 {
    MANAGEMENT
        .iter()
        .filter_map(|k| f.request_ms.get(*k))
        .map(|p| p.p99)
        .fold(0.0, f64::max)
}

pub(super) fn figure(title: &str, caption: &str, svg: &str) -> String {
    format!(
        "<figure><h2>{}</h2>{svg}<figcaption>{}</figcaption></figure>",
        esc(title),
        esc(caption)
    )
}

pub(super) const TABLE_HEAD: &str =
    "<table><thead><tr><th>events</th><th>users</th><th>call members</th><th>scheduled</th>\
     <th>refused</th><th>delivered once</th><th>lost</th><th>duplicated</th><th>early</th>\
     <th>late p50</th><th>p90</th><th>p99</th><th>max</th><th>server p99</th>\
     <th>schedule p99</th><th>heartbeats refused</th><th>CPU harness / server</th></tr></thead>";
pub(super) const TABLE_COLUMNS: usize = 17;

fn figures_table(report: &LoadReport) -> String {
    let mut t = format!("{TABLE_HEAD}<tbody>{}", figures_rows(report));
    t.push_str("</tbody></table><ul class=\"stamps\">");
    for f in &report.runs {
        let _ = write!(t, "<li>{}</li>", esc(server_clock_line(f).trim()));
    }
    t.push_str("</ul>");
    t
}

/// One table row per workload.
pub(super) fn figures_rows(report: &LoadReport) -> String {
    let mut t = String::new();
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
    t
}

pub(super) const CSS: &str =
    "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}\
header p{margin:0;color:#c9d1e0}.plots{display:flex;flex-wrap:wrap;gap:18px;padding:18px 28px}\
figure{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin:0;padding:12px 14px;width:560px}\
figure h2{font-size:16px;margin:0 0 6px}figcaption{color:#5b6475;font-size:13px}\
table{border-collapse:collapse;margin:0 28px 18px;background:#fff;font-size:13px}\
th,td{border:1px solid #dde1e8;padding:5px 8px;text-align:right}th{background:#eef1f5}\
td.bad{background:#fde8e8;color:#a4161a;font-weight:600}.warn{margin:12px 28px;color:#a4161a}\
.note{color:#5b6475}.stamps{margin:0 28px 14px;color:#3a4252;font-size:13px}footer{color:#5b6475;font-size:12px;padding:0 28px 24px}\
.key{list-style:none;margin:8px 0 6px;padding:0}.key li{margin:0 0 6px}.key span{color:#c9d1e0;font-size:13px}\
.key .swatch{font-size:18px;background:#fff;border-radius:4px;padding:0 4px}\
.legend{list-style:none;margin:4px 0 6px;padding:0;font-size:13px}.legend span{font-weight:700;letter-spacing:-2px;margin-right:6px}\
tr.block th{text-align:left;background:#fff;font-size:14px;padding-top:10px}.source{color:#5b6475;font-weight:400}";

pub(super) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
            Series::new("p50", BLUE, per_run(runs, |f| f.lateness_ms.p50)),
            Series::new("p90", ORANGE, per_run(runs, |f| f.lateness_ms.p90)),
            Series::new("p99", RED, per_run(runs, |f| f.lateness_ms.p99)),
            Series::new("max", GREY, per_run(runs, |f| f.lateness_ms.max)),
        ],
        Some(SeriesLabelPosition::UpperLeft),
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
            Series::new(
                "delivered once",
                GREEN,
                per_run(runs, |f| share(f.delivered_once, to_send(f))),
            ),
            Series::new("lost", RED, per_run(runs, |f| share(f.lost, to_send(f)))),
            Series::new(
                "duplicated",
                PURPLE,
                per_run(runs, |f| share(f.duplicated, to_send(f))),
            ),
            Series::new(
                "early",
                ORANGE,
                per_run(runs, |f| share(f.early, to_send(f))),
            ),
            Series::new(
                "refused",
                GREY,
                per_run(runs, |f| share(f.refused_total(), asked(f))),
            ),
        ],
        // Between the delivered share near 100 % and the losses near 0.
        Some(SeriesLabelPosition::MiddleLeft),
    )
}

fn request_plot(runs: &[Figures]) -> String {
    let of = |kind: &'static str, pick: fn(&super::figures::Percentiles) -> f64| {
        per_run(runs, move |f| f.request_ms.get(kind).map_or(0.0, pick))
    };
    line_plot(
        "request time (ms)",
        &[
            Series::new("schedule p50", BLUE, of("schedule", |p| p.p50)),
            Series::new("schedule p99", RED, of("schedule", |p| p.p99)),
            Series::new("management p99", PURPLE, per_run(runs, management_p99)),
        ],
        Some(SeriesLabelPosition::UpperLeft),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::homeserver::{Database, Topology};
    use crate::load::sample_report;

    #[test]
    fn one_report_keeps_its_own_page() {
        let workers = Topology {
            database: Database::Postgres,
            workers: 2,
            proxy: Some("nginx".into()),
        };
        let page = html(&sample_report(Some(workers), 100.0), &[]);
        assert!(page.contains("<h1>Delayed events under load: Synapse 1.163.2</h1>"));
        assert!(!page.contains("class=\"key\""));
        assert_eq!(page.matches("<figure>").count(), 3);
    }
}
