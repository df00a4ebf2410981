//! The interactive progress display of a run (indicatif): a bar with counts per outcome, a line
//! with the cases now running, and failures printed as they happen. Used only when stdout is a
//! terminal and `--quiet` was not given; otherwise the runner keeps libtest's plain lines.

use crate::outcome::Outcome;
use crate::results::{CaseReport, Summary};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use std::time::Duration;

pub struct Progress {
    bar: ProgressBar,
    running_line: ProgressBar,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: Vec<String>,
    done: Vec<CaseReport>,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let bar = multi.add(ProgressBar::new(total as u64));
        bar.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:32.green/red}] {pos}/{len}  {msg}")
                .expect("template is valid")
                .progress_chars("━╸ "),
        );
        let running_line = multi.add(ProgressBar::new_spinner());
        running_line
            .set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template is valid"));
        running_line.enable_steady_tick(Duration::from_millis(120));
        bar.enable_steady_tick(Duration::from_millis(500));
        let progress = Progress {
            bar,
            running_line,
            state: Mutex::default(),
        };
        progress.redraw(&State::default());
        progress
    }

    pub fn started(&self, id: &str) {
        let mut state = self.state.lock().unwrap();
        state.running.push(id.to_string());
        self.redraw(&state);
    }

    /// A case finished: count it, and print it at once if it did not pass as expected.
    pub fn finished(&self, report: &CaseReport, details: impl FnOnce() -> String) {
        let mut state = self.state.lock().unwrap();
        state.running.retain(|id| *id != report.id);
        state.done.push(report.clone());
        if matches!(
            report.outcome,
            Outcome::Fail | Outcome::Error | Outcome::Xpass
        ) {
            self.bar.println(format!(
                "{} {}\n  {}",
                report.outcome.as_str().to_uppercase(),
                report.id,
                details().replace('\n', "\n  ")
            ));
        }
        self.bar.inc(1);
        self.redraw(&state);
    }

    fn redraw(&self, state: &State) {
        let summary = Summary::of(&state.done);
        let counts: Vec<String> = crate::report::OUTCOMES
            .iter()
            .filter(|o| summary.count(**o) > 0)
            .map(|o| format!("{} {}", summary.count(*o), o.as_str()))
            .collect();
        self.bar.set_message(counts.join(" · "));
        let running = match state.running.as_slice() {
            [] => "waiting".to_string(),
            ids => {
                let short: Vec<&str> = ids
                    .iter()
                    .map(|id| id.strip_prefix("msc4140.").unwrap_or(id))
                    .collect();
                let mut line = format!("running {}: {}", ids.len(), short.join(", "));
                if line.chars().count() > 150 {
                    line = format!("{}…", line.chars().take(150).collect::<String>());
                }
                line
            }
        };
        self.running_line.set_message(running);
    }

    pub fn finish(self) {
        self.running_line.finish_and_clear();
        self.bar.finish();
    }
}
