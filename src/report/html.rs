//! `index.html` of a sweep report: one self-contained page (inline style, no network, figures
//! by relative path) that opens from disk in any browser. It only formats what it is given.

use super::results::{MEASURES, Row, SweepResults, value_label};
use super::summary::Summary;
use std::fmt::Write as _;

/// A figure on the page: `<name>.svg` shown, `<name>.png` linked.
pub struct Shown {
    pub name: String,
    pub caption: String,
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

const STYLE: &str = "body{font-family:'Liberation Sans',Arial,Helvetica,sans-serif;margin:2em auto;max-width:1250px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.95em;color:#444;margin-top:.3em}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
.diverged{color:#b00}";

/// Marks the page with how many figures loaded, so a headless browser can check them.
const CHECK: &str = "window.addEventListener('load',function(){var f=document.querySelectorAll('img.figure'),n=0;for(var i=0;i<f.length;i++){if(f[i].complete&&f[i].naturalWidth>0){n++;}}document.body.setAttribute('data-figures-loaded',n+'/'+f.length);});";

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{:.2}", 100.0 * x))
}

/// Every value `of` takes over the points, in the order they first appear, joined by ", ": a
/// sweep over algorithms names them all, not the first point's.
fn distinct(results: &SweepResults, of: impl Fn(&Summary) -> String) -> String {
    let mut seen: Vec<String> = Vec::new();
    for pt in &results.points {
        let v = of(&pt.summary);
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(", ")
}

/// The page.
pub fn page(results: &SweepResults, rows: &[Row], target: Option<f64>, shown: &[Shown]) -> String {
    let sw = &results.sweep;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>asgd-sim report: {name}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n<h1>asgd-sim sweep <code>{name}</code></h1>\n",
        name = escape(&sw.name)
    );
    let _ = writeln!(
        h,
        "<p>{} on {}: model {} ({} parameters), data set {}, {} gradients, {} epochs. {} of {} points finished.</p>",
        escape(&distinct(results, |s| s.algorithm.clone())),
        escape(&distinct(results, |s| s.machine.clone())),
        escape(&distinct(results, |s| s.model.clone())),
        distinct(results, |s| s.params.to_string()),
        escape(&distinct(results, |s| s.dataset.clone())),
        escape(&distinct(results, |s| s.gradients.clone())),
        distinct(results, |s| s.epochs.to_string()),
        results.points.len(),
        sw.points.len()
    );

    h.push_str("<h2>Sweep</h2>\n<table>\n");
    let _ = writeln!(
        h,
        "<tr><th class=\"l\">base scenario</th><td class=\"l\"><code>{}</code> ({})</td></tr>",
        escape(&sw.scenario_name),
        escape(&sw.scenario)
    );
    for f in &sw.fixed {
        let _ = writeln!(
            h,
            "<tr><th class=\"l\">fixed</th><td class=\"l\"><code>{}</code></td></tr>",
            escape(f)
        );
    }
    for a in &sw.axes {
        let values: Vec<String> = a.values.iter().map(value_label).collect();
        let _ = writeln!(
            h,
            "<tr><th class=\"l\">axis <code>{}</code></th><td class=\"l\">{}</td></tr>",
            escape(&a.key),
            escape(&values.join(", "))
        );
    }
    if let Some(t) = target {
        let _ = writeln!(
            h,
            "<tr><th class=\"l\">target test accuracy</th><td class=\"l\">{:.1} %{}</td></tr>",
            100.0 * t,
            if sw.target_accuracy.is_some() {
                ""
            } else {
                " (half-way from the starting accuracy to the best any point reached)"
            }
        );
    }
    if !results.missing.is_empty() {
        let _ = writeln!(
            h,
            "<tr><th class=\"l\">missing points</th><td class=\"l diverged\">{}</td></tr>",
            escape(&results.missing.join("; "))
        );
    }
    h.push_str("</table>\n");

    h.push_str("<h2>Figures</h2>\n");
    for f in shown {
        let _ = writeln!(
            h,
            "<figure id=\"{n}\"><img class=\"figure\" src=\"{n}.svg\" alt=\"{c}\"><figcaption>{c} <a href=\"{n}.svg\">SVG</a> · <a href=\"{n}.png\">PNG</a></figcaption></figure>",
            n = escape(&f.name),
            c = escape(&f.caption)
        );
    }

    let _ = write!(
        h,
        "<h2>Points</h2>\n<p>Seconds are {}, per epoch, mean over learners. Accuracies in percent at the end of the run.</p>\n<table>\n<tr><th class=\"l\">point</th><th>p</th><th>seed</th>",
        results.clock()
    );
    for m in &MEASURES {
        let _ = write!(h, "<th>{}</th>", m.html);
    }
    h.push_str("<th>train acc.</th><th>test acc.</th><th>time to target (s)</th><th class=\"l\">status</th></tr>\n");
    for r in rows {
        let _ = write!(
            h,
            "<tr><td class=\"l\"><code>{}</code></td><td>{}</td><td>{}</td>",
            escape(&r.point),
            r.learners,
            r.seed
        );
        for m in &MEASURES {
            let _ = write!(
                h,
                "<td>{:.*}</td>",
                m.html_decimals,
                m.html_scale * (m.value)(r)
            );
        }
        let _ = writeln!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td><td class=\"l{}\">{}</td></tr>",
            pct(r.final_train_accuracy),
            pct(r.final_test_accuracy),
            r.time_to_target_s
                .map_or("not reached".into(), |t| format!("{t:.3}")),
            if r.diverged { " diverged" } else { "" },
            if r.diverged { "diverged" } else { "ok" }
        );
    }
    h.push_str("</table>\n<p>The same numbers: <a href=\"points.csv\">points.csv</a>, <a href=\"report.json\">report.json</a>.</p>\n");

    let _ = write!(
        h,
        "<h2>Base scenario</h2>\n<pre>{}</pre>\n<script>{CHECK}</script>\n</body>\n</html>\n",
        escape(&sw.scenario_text)
    );
    h
}
