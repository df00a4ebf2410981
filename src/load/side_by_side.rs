//! The HTML page of several load reports side by side (`--beside`): a key naming each run, one
//! plot per figure with a series per run, and the figures table with a block per run.

use super::figures::Figures;
use super::plot::{
    css_color, line_plot, Marker, Series, MARKERS, MARKER_GROWTH, MARKER_SIZE, PALETTE,
};
use super::render::{
    esc, figure, figures_rows, management_p99, server_clock_line, CSS, FOOTER, MANAGEMENT,
    TABLE_COLUMNS, TABLE_HEAD,
};
use super::{Beside, LoadReport};
use plotters::style::RGBColor;
use std::fmt::Write;

/// A report on the side-by-side page: its name, where it came from, and how its series look.
struct Shown<'a> {
    label: String,
    source: String,
    report: &'a LoadReport,
    color: RGBColor,
    marker: Marker,
}

/// This run first, then the `--beside` files in the order given; each with its own colour and
/// marker, and a label made unique by its start time where two would read the same.
fn shown<'a>(report: &'a LoadReport, beside: &'a [Beside]) -> Vec<Shown<'a>> {
    let mut all = vec![(report, "this run".to_string())];
    all.extend(
        beside
            .iter()
            .map(|b| (&b.report, format!("from {}", b.path.display()))),
    );
    let labels: Vec<String> = all.iter().map(|(r, _)| r.label()).collect();
    all.into_iter()
        .enumerate()
        .map(|(i, (report, source))| {
            let mut label = labels[i].clone();
            if labels.iter().filter(|l| **l == label).count() > 1 {
                label = format!("{label} · {}", report.started_at);
            }
            Shown {
                label,
                source,
                report,
                color: PALETTE[i % PALETTE.len()],
                marker: MARKERS[i % MARKERS.len()],
            }
        })
        .collect()
}

/// Several runs' page: a key naming each run, one plot per figure with a series per run, and
/// the figures table with a block per run.
pub(super) fn page(report: &LoadReport, beside: &[Beside]) -> String {
    let shown = shown(report, beside);
    let mut page = String::new();
    let title = "Delayed events under load, side by side";
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{CSS}</style></head><body>\
         <header><h1>{title}</h1><ul class=\"key\">"
    );
    for s in &shown {
        let r = s.report;
        let first = r.runs.first();
        let _ = write!(
            page,
            "<li><span class=\"swatch\" style=\"color:{}\">{}</span> <b>{}</b><br><span>{} · {} at {} · {} · started {} · delay {} ms, spread {} ms, {} call members</span></li>",
            css_color(s.color),
            s.marker.symbol(),
            esc(&s.label),
            esc(&s.source),
            esc(&r.target.kind),
            esc(&r.target.base_url),
            esc(&r.api_form),
            esc(&r.started_at),
            first.map_or(0, |f| f.delay_ms),
            first.map_or(0, |f| f.spread_ms),
            first.map_or(0, |f| f.heartbeaters),
        );
    }
    let _ = write!(
        page,
        "</ul><p>harness {} {}</p></header>",
        report.harness.name, report.harness.version
    );
    if let Some(warning) = workloads_differ(shown.iter().map(|s| s.report)) {
        let _ = write!(page, "<p class=\"warn\">{}</p>", esc(&warning));
    }
    for s in shown.iter().filter(|s| s.report.interrupted) {
        let _ = write!(
            page,
            "<p class=\"warn\">{} was interrupted: its figures are those gathered so far.</p>",
            esc(&s.label)
        );
    }
    page.push_str("<section class=\"plots\">");
    for plot in SIDE_BY_SIDE_PLOTS {
        if !shown
            .iter()
            .any(|s| s.report.runs.iter().any(|f| (plot.present)(f)))
        {
            continue;
        }
        let series: Vec<Series> = shown
            .iter()
            .enumerate()
            .map(|(i, s)| Series {
                name: s.label.clone(),
                color: s.color,
                marker: s.marker,
                marker_size: MARKER_SIZE + MARKER_GROWTH * (shown.len() - 1 - i) as f64,
                points: s
                    .report
                    .runs
                    .iter()
                    .filter(|f| (plot.present)(f))
                    .map(|f| (f.events as f64, (plot.value)(f)))
                    .collect(),
            })
            .collect();
        // Every plot has the same runs, with labels too long for a legend inside the plot:
        // the legend goes under it, in the page's text.
        let plot_and_legend = format!(
            "{}{}",
            line_plot(plot.y_label, &series, None),
            html_legend(&shown)
        );
        page.push_str(&figure(plot.title, plot.caption, &plot_and_legend));
    }
    page.push_str("</section>");
    page.push_str(&side_by_side_table(&shown));
    page.push_str(FOOTER);
    page
}

/// A plot's legend as text: each run's marker on a short line in its colour, and its label.
fn html_legend(shown: &[Shown]) -> String {
    let mut legend = String::from("<ul class=\"legend\">");
    for s in shown {
        let _ = write!(
            legend,
            "<li><span style=\"color:{}\">─{}─</span> {}</li>",
            css_color(s.color),
            s.marker.symbol(),
            esc(&s.label)
        );
    }
    legend.push_str("</ul>");
    legend
}

/// Lateness compares only between like workloads: say so where the runs' differ.
pub fn workloads_differ<'a>(reports: impl IntoIterator<Item = &'a LoadReport>) -> Option<String> {
    let shape = |r: &LoadReport| {
        r.runs
            .first()
            .map(|f| (f.delay_ms, f.spread_ms, f.heartbeaters))
    };
    let mut shapes = reports.into_iter().map(shape);
    let first = shapes.next()?;
    shapes.any(|s| s != first).then(|| {
        "The runs' workloads differ in delay, spread or call members: their lateness is not \
         directly comparable."
            .to_string()
    })
}

/// One plot of the side-by-side page: a figure of each workload against its size.
struct SideBySidePlot {
    title: &'static str,
    caption: &'static str,
    y_label: &'static str,
    value: fn(&Figures) -> f64,
    /// Whether a workload has this figure at all (no management requests: no point).
    present: fn(&Figures) -> bool,
}

const SIDE_BY_SIDE_PLOTS: [SideBySidePlot; 6] = [
    SideBySidePlot {
        title: "Lateness, median",
        caption: "p50 from due (harness clock) to the /sync answer carrying the event",
        y_label: "lateness p50 (ms)",
        value: |f| f.lateness_ms.p50,
        present: |f| f.lateness_ms.count > 0,
    },
    SideBySidePlot {
        title: "Lateness, p99",
        caption: "p99 from due (harness clock) to the /sync answer carrying the event",
        y_label: "lateness p99 (ms)",
        value: |f| f.lateness_ms.p99,
        present: |f| f.lateness_ms.count > 0,
    },
    SideBySidePlot {
        title: "Lateness by the server's stamps, p99",
        caption: "origin_server_ts minus due: the server's own claim",
        y_label: "server's lateness p99 (ms)",
        value: |f| f.server_lateness_ms.p99,
        present: |f| f.server_lateness_ms.count > 0,
    },
    SideBySidePlot {
        title: "Delivered exactly once",
        caption: "Share of the events to be sent (not cancelled); lost, duplicated and early ones are in the table",
        y_label: "% delivered exactly once",
        value: |f| 100.0 * f.delivered_once as f64 / (f.scheduled - f.cancelled).max(1) as f64,
        present: |f| f.scheduled > f.cancelled,
    },
    SideBySidePlot {
        title: "Scheduling requests, p99",
        caption: "Time to answer a request that schedules a delayed event",
        y_label: "schedule p99 (ms)",
        value: |f| f.request_ms.get("schedule").map_or(0.0, |p| p.p99),
        present: |f| f.request_ms.contains_key("schedule"),
    },
    SideBySidePlot {
        title: "Management requests, p99",
        caption: "The slowest p99 of cancel, send and restart (heartbeats) requests",
        y_label: "management p99 (ms)",
        value: management_p99,
        present: |f| MANAGEMENT.iter().any(|k| f.request_ms.contains_key(*k)),
    },
];

/// The figures table with a block per run, headed by its label, and each run's stamp lines.
fn side_by_side_table(shown: &[Shown]) -> String {
    let mut t = String::from(TABLE_HEAD);
    for s in shown {
        let _ = write!(
            t,
            "<tbody><tr class=\"block\"><th colspan=\"{TABLE_COLUMNS}\"><span style=\"color:{}\">{}</span> {} <span class=\"source\">({})</span></th></tr>{}</tbody>",
            css_color(s.color),
            s.marker.symbol(),
            esc(&s.label),
            esc(&s.source),
            figures_rows(s.report)
        );
    }
    t.push_str("</table><ul class=\"stamps\">");
    for s in shown {
        for f in &s.report.runs {
            let _ = write!(
                t,
                "<li>{}: {}</li>",
                esc(&s.label),
                esc(server_clock_line(f).trim())
            );
        }
    }
    t.push_str("</ul>");
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::homeserver::Topology;
    use crate::load::render::html;
    use crate::load::{sample_report, workers};

    fn beside(report: LoadReport, path: &str) -> Beside {
        Beside {
            path: path.into(),
            report,
        }
    }

    /// The SVG plots of a page, each with what follows it up to its figure's end.
    fn figures(page: &str) -> Vec<&str> {
        page.split("<figure>").skip(1).collect()
    }

    fn hex(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }

    #[test]
    fn each_plot_has_a_series_per_report_labelled_by_its_topology() {
        let this = sample_report(Some(workers()), 400.0);
        let single = beside(
            sample_report(Some(Topology::default()), 50.0),
            "single.json",
        );
        let page = html(&this, &[single]);
        let labels = [
            "Synapse 1.163.2 · PostgreSQL, main + 2 workers behind nginx",
            "Synapse 1.163.2 · SQLite",
        ];
        let plots = figures(&page);
        // The samples have no management requests and no server stamps: those plots are left out.
        assert_eq!(plots.len(), SIDE_BY_SIDE_PLOTS.len() - 2);
        for plot in plots {
            let (svg, legend) = plot.split_once("</svg>").unwrap();
            for (i, label) in labels.iter().enumerate() {
                assert!(svg.contains(&hex(PALETTE[i])), "no series {i} in {svg}");
                assert!(legend.contains(label), "{label} missing from {legend}");
            }
        }
        // The key and the figures table: each report with where it came from.
        assert!(page.contains("<b>Synapse 1.163.2 · PostgreSQL, main + 2 workers behind nginx</b>"));
        assert!(page.contains("this run"));
        assert!(page.contains("from single.json"));
        assert_eq!(page.matches("<tr class=\"block\">").count(), 2);
        assert_eq!(
            page.matches("<td>100</td><td>5</td>").count(),
            2,
            "a row per workload and report"
        );
        assert!(
            !page.contains("class=\"warn\""),
            "like workloads: no warning"
        );
    }

    #[test]
    fn reports_that_read_the_same_are_told_apart_by_their_start() {
        let this = sample_report(None, 100.0);
        let mut earlier = sample_report(None, 90.0);
        earlier.started_at = "2026-12-04T09:00:00Z".into();
        let page = html(&this, &[beside(earlier, "earlier.json")]);
        assert!(page.contains("Synapse 1.163.2 · SQLite · 2026-12-05T01:00:00Z"));
        assert!(page.contains("Synapse 1.163.2 · SQLite · 2026-12-04T09:00:00Z"));
    }

    #[test]
    fn unlike_workloads_are_flagged() {
        let this = sample_report(None, 100.0);
        let mut other = sample_report(Some(workers()), 90.0);
        for run in &mut other.runs {
            run.delay_ms = 5000;
        }
        let page = html(&this, &[beside(other, "other.json")]);
        assert!(page.contains("workloads differ in delay, spread or call members"));
    }
}
