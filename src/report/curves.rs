//! PLACEHOLDER until `crate::plot::curves_svg` (plotters SVGBackend, another branch) is merged:
//! on merge, delete this file, `mod curves;` in report/mod.rs, and call
//! `crate::plot::curves_svg` in report/run.rs (`curves_section`), which has the same signature.

use crate::error::Result;
use crate::run::metrics::EpochRow;

const W: f64 = 640.0;
const H: f64 = 360.0;
const PAD: f64 = 40.0;

/// Train loss, train accuracy and test accuracy of each run, one polyline per series.
pub fn curves_svg(runs: &[(String, Vec<EpochRow>)]) -> Result<String> {
    let rows: Vec<&EpochRow> = runs.iter().flat_map(|(_, r)| r).collect();
    let last = rows.iter().map(|r| r.epoch).max().unwrap_or(1).max(2) as f64;
    let top = rows.iter().map(|r| r.train_loss).filter(|v| v.is_finite()).fold(1.0f64, f64::max);
    let x = |e: usize| PAD + (e as f64 - 1.0) / (last - 1.0) * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD - v.clamp(0.0, top) / top * (H - 2.0 * PAD);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         font-family=\"sans-serif\" font-size=\"12\"><rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\
         <path d=\"M{PAD} {PAD}V{b}H{r}\" stroke=\"black\" fill=\"none\"/>\
         <text x=\"{PAD}\" y=\"{t}\" text-anchor=\"middle\">epoch</text>",
        b = H - PAD,
        r = W - PAD,
        t = H - 10.0
    );
    let series: [(&str, &str, fn(&EpochRow) -> f64); 3] = [
        ("train loss", "#1f77b4", |r| r.train_loss),
        ("train acc", "#2ca02c", |r| r.train_acc),
        ("test acc", "#d62728", |r| r.test_acc),
    ];
    for (i, (name, colour, get)) in series.iter().enumerate() {
        for (_, run) in runs {
            let pts: Vec<String> = run.iter().map(|r| format!("{:.1},{:.1}", x(r.epoch), y(get(r)))).collect();
            s.push_str(&format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                pts.join(" ")
            ));
        }
        let ly = PAD + 16.0 * i as f64;
        s.push_str(&format!("<text x=\"{}\" y=\"{ly}\" fill=\"{colour}\">{name}</text>", W - PAD - 80.0));
    }
    s.push_str("</svg>");
    Ok(s)
}
