use super::*;
use crate::report::figures::render;
use crate::report::figures::testing::{
    assert_deterministic, assert_has_texts, has_color, render_checked, texts,
};

fn sample() -> Speedup {
    let ps = [1.0, 2.0, 4.0, 8.0, 16.0];
    Speedup {
        name: "speedup".to_string(),
        caption: "Speedup to 90% accuracy".to_string(),
        x_label: "learners p".to_string(),
        y_label: "speedup (x, vs p = 1)".to_string(),
        lines: vec![
            Line {
                label: "Downpour".to_string(),
                points: ps
                    .iter()
                    .map(|&p: &f64| {
                        let y = p / (1.0 + 0.05 * p);
                        (p, y, y * 0.9, y * 1.1)
                    })
                    .collect(),
            },
            Line::plain("SSGD", ps.iter().map(|&p: &f64| (p, p.sqrt()))),
        ],
        settings: vec![],
        dashed: vec![],
        solid_means: String::new(),
        dashed_means: String::new(),
        ideal_base: Some(1.0),
    }
}

/// Where the legend goes inside, if it does.
fn placement(fig: &Speedup) -> Option<(i32, i32)> {
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, fig.size()).into_drawing_area();
    let chart = fig.build(&root, fig.ps()).expect("builds");
    fig.legend_inside(&chart)
}

#[test]
fn renders_labels_ticks_and_legend() {
    let (out, rgb) = render_checked(&sample());
    assert_has_texts(
        &out.svg,
        &[
            "learners p",
            "speedup (x, vs p = 1)",
            "Downpour",
            "SSGD",
            "ideal",
            "1",
            "2",
            "4",
            "8",
            "16",
        ],
    );
    assert!(has_color(&rgb, color(0)) && has_color(&rgb, color(1)));
    assert!(has_color(&rgb, IDEAL), "ideal not drawn");
}

#[test]
fn no_ideal_without_a_usable_base() {
    for base in [None, Some(0.0), Some(-1.0), Some(f64::NAN)] {
        let fig = Speedup {
            ideal_base: base,
            ..sample()
        };
        let out = render(&fig).expect("renders");
        assert!(!texts(&out.svg).iter().any(|s| s == "ideal"), "{base:?}");
    }
}

#[test]
fn y_axis_is_logarithmic_around_one_and_holds_the_ideal() {
    let fig = sample();
    let (y0, y1) = fig.y_range();
    assert!(y0 > 0.0 && y0 < 1.0);
    assert!(y1 >= 16.0 * X_PAD_OCTAVES.exp2());
    assert!(fig.y_ticks().contains(&1.0) && fig.y_ticks().contains(&16.0));
}

#[test]
fn legend_goes_outside_when_data_fills_the_upper_left() {
    assert!(
        placement(&sample()).is_some(),
        "sample leaves the upper left free"
    );
    // Flat lines at the top of the range cross the upper left.
    let mut fig = sample();
    fig.ideal_base = None;
    fig.lines
        .push(Line::plain("flat", [(1.0, 10.0), (16.0, 10.0)]));
    fig.lines
        .push(Line::plain("low", [(1.0, 0.5), (16.0, 1.0)]));
    assert!(placement(&fig).is_none());
    let out = render(&fig).expect("renders");
    assert_has_texts(&out.svg, &["flat"]);
}

#[test]
fn crowded_ticks_are_thinned() {
    let fig = Speedup {
        lines: vec![Line::plain(
            "dense",
            (1..=64).map(|p| (f64::from(p), f64::from(p) * 0.8)),
        )],
        ..sample()
    };
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, fig.size()).into_drawing_area();
    let chart = fig.build(&root, fig.ps()).expect("builds");
    let ticks = fig.thinned_ticks(&chart);
    assert_eq!(ticks[0], 1.0);
    assert!(ticks.len() < 64 && ticks.len() > 5, "{ticks:?}");
    render(&fig).expect("renders");
}

#[test]
fn a_setting_has_one_colour_and_one_legend_entry_for_both_its_measures() {
    let epoch = |label: &str, k: f64| Line::plain(label, [(1.0, 1.0), (16.0, k)]);
    let fig = Speedup {
        settings: vec!["SSGD".into(), "Downpour".into()],
        dashed: vec![epoch("Downpour", 12.0), epoch("SSGD", 14.0)],
        solid_means: "time to 90 %".into(),
        dashed_means: "epoch time".into(),
        ..sample()
    };
    let out = render(&fig).expect("renders");
    let t = texts(&out.svg);
    for label in ["Downpour", "SSGD", "time to 90 %", "epoch time", "ideal"] {
        assert_eq!(
            t.iter().filter(|s| *s == label).count(),
            1,
            "{label}: {t:?}"
        );
    }
    // The colours follow `settings`, not the order the lines come in.
    assert_eq!(fig.colour_of(&fig.lines[0]), color(1));
    assert_eq!(fig.colour_of(&fig.dashed[0]), color(1));
    assert_eq!(fig.colour_of(&fig.lines[1]), color(0));
    let unlabelled = Line::plain("", [(1.0, 1.0)]);
    assert_eq!(fig.colour_of(&unlabelled), KEY);
    // Dashed lines are drawn as many short strokes in their setting's colour; a solid line
    // is one stroke.
    let strokes = |c: RGBColor| {
        let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        out.svg
            .split("<polyline")
            .filter(|l| l.contains(&stroke))
            .count()
    };
    assert!(
        strokes(color(0)) > 10 && strokes(color(1)) > 10,
        "dashes missing"
    );
    let solid = Speedup {
        dashed: vec![],
        ..fig.clone()
    };
    let out = render(&solid).expect("renders");
    let solid_strokes = out
        .svg
        .split("<polyline")
        .filter(|l| l.contains("stroke=\"#0072B2\""))
        .count();
    assert!(solid_strokes < 5, "{solid_strokes}");
}

#[test]
fn the_key_is_shown_only_with_dashed_lines() {
    let plain = Speedup {
        solid_means: "time to 90 %".into(),
        dashed_means: "epoch time".into(),
        ..sample()
    };
    let t = texts(&render(&plain).expect("renders").svg);
    assert!(
        !t.iter().any(|s| s == "time to 90 %" || s == "epoch time"),
        "{t:?}"
    );
}

#[test]
fn rendering_is_deterministic() {
    assert_deterministic(sample);
}

#[test]
fn degenerate_inputs_render() {
    let with = |lines: Vec<Line>| Speedup { lines, ..sample() };
    let cases = [
        with(vec![]),
        with(vec![Line::plain("one", [(4.0, 3.0)])]),
        with(vec![Line::plain("flat", [(2.0, 1.0), (4.0, 1.0)])]),
        with(vec![Line::plain(
            "bad",
            [
                (0.0, 1.0),
                (-2.0, 1.0),
                (f64::NAN, 1.0),
                (2.0, f64::INFINITY),
                (4.0, 3.0),
            ],
        )]),
        Speedup {
            ideal_base: None,
            ..with(vec![Line::plain("zero", [(1.0, 0.0), (2.0, 0.0)])])
        },
    ];
    for fig in &cases {
        let (out, _) = render_checked(fig);
        assert!(!out.svg.contains("NaN"));
    }
    let empty = render(&cases[0]).expect("renders");
    assert_has_texts(&empty.svg, &["no data"]);
    assert_eq!(cases[3].ps(), [4.0]);
}
