//! The flex CPU backend (cargo feature `flex`): trains, and swaps with ndarray both ways. Both
//! backends must be built in (`--features ndarray` beside the default flex); otherwise the one
//! test here says it was skipped.

mod common;

#[cfg(not(all(feature = "flex", feature = "ndarray")))]
#[test]
fn flex_trains_and_swaps_with_ndarray() {
    common::not_built("flex_trains_and_swaps_with_ndarray", "needs the `flex` and `ndarray` backends built in (`cargo test --features ndarray`)");
}

#[cfg(all(feature = "flex", feature = "ndarray"))]
mod both {
    use super::common::*;

    fn eval_acc(f: &Fixture, run: &str, backend: &str) -> f64 {
        let data = f.data();
        f.run(&["eval", "--artifacts", run, "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", backend]).ok();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path(run).join("eval.json")).unwrap()).unwrap();
        v["accuracy"].as_f64().unwrap()
    }

    #[test]
    fn flex_trains_and_swaps_with_ndarray() {
        let f = Fixture::new();
        let data = f.data();
        let d = data.to_str().unwrap();
        let out = f.run(&["train", "--config", "small.toml", "--epochs", "2", "--artifacts", "flex", "--data-dir", d, "--skip-checksum", "--backend", "flex"]);
        out.ok();
        assert!(out.stdout.lines().next().unwrap().contains("backend flex"), "{}", out.stdout);
        let rows = metrics(&f.path("flex"));
        assert!(rows[1].train_loss < rows[0].train_loss, "{rows:?}");
        // A flex run resumes on ndarray, an ndarray run on flex; models evaluate alike on both.
        f.resume("flex", "ndarray", &["--epochs", "3"]).ok();
        f.train("nd", &["--epochs", "1"]).ok();
        f.resume("nd", "flex", &["--epochs", "2"]).ok();
        assert_eq!(metrics(&f.path("nd")).len(), 2);
        for run in ["flex", "nd"] {
            let (a, b) = (eval_acc(&f, run, "ndarray"), eval_acc(&f, run, "flex"));
            assert!((a - b).abs() <= 0.001, "{run}: ndarray {a} vs flex {b}");
        }
        // Same recipe, same seed: flex and ndarray land close together.
        f.train("nd3", &["--epochs", "3"]).ok();
        f.run(&["train", "--config", "small.toml", "--artifacts", "flex3", "--data-dir", d, "--skip-checksum", "--backend", "flex"]).ok();
        let (x, y) = (metrics(&f.path("nd3")), metrics(&f.path("flex3")));
        assert!((x[2].train_loss - y[2].train_loss).abs() < 0.05, "{x:?} vs {y:?}");
    }
}
