#!/usr/bin/env python3
"""Check a sweep folder's `journal.log` with Optuna itself (JournalStorage, Optuna >= 4).

    python scripts/optuna_check.py STUDY_DIR [--expect-trials N] [--importance]

Needs `pip install optuna` (tested with 5.1). The study is loaded the way a user would:

    optuna.load_study(study_name=<STUDY_DIR's file name>,
                      storage=JournalStorage(JournalFileBackend(STUDY_DIR/journal.log)))

and checked against STUDY_DIR/leaderboard.csv
(`rank,trial,<swept fields...>,epochs|trained,val_loss,val_acc,train_loss,train_acc,seconds,status`):

- the study maximizes one objective and carries the user attrs `method`, `fixed` (an object)
  and `space`;
- trial numbers are 0..N-1, each once (--expect-trials N: exactly N, none left RUNNING/WAITING);
- every COMPLETE trial has a param for every swept field, each with a distribution of the right
  class (from the `space` attr's [space] table when it parses: list -> CategoricalDistribution
  with the listed values as choices, a list value [512, 256] as "512-256"; uniform ->
  FloatDistribution(log=False); log_uniform -> FloatDistribution(log=True); int_log_uniform ->
  IntDistribution(log=True); bounds equal), the value inside it and equal to its leaderboard cell;
- its intermediate values are steps 1..E (E = its leaderboard epochs cell), its value is the last
  of them and equals its leaderboard val_acc (to 1e-6, or to half the last digit the CSV holds);
- a finished trial has user attr `folder` = trials/NNN (NNN its number); a FAIL one a `reason`;
  a leaderboard row that diverged is not COMPLETE in the journal, one that was pruned is PRUNED
  there (and its intermediate values are steps 1..E too);
- study.best_value / study.best_trial.number equal leaderboard row 1's val_acc / trial;
- --importance: optuna.importance.get_param_importances(study) runs and returns an importance for
  every swept field whose distribution is not a single value (and no other); they are printed.

Prints one summary line; on failure exits 1 with one line on stderr.
"""
import argparse
import csv
import json
import math
import os
import re
import sys
import warnings

try:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState
except ImportError as e:  # reported after argument parsing, so --help works without it
    MISSING = e
else:
    MISSING = None

PROG = "optuna_check.py"
FIGURES = ["val_loss", "val_acc", "train_loss", "train_acc", "seconds", "status"]


class CheckError(Exception):
    pass


def fail(msg):
    raise CheckError(msg)


def read_leaderboard(path):
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    if not rows:
        fail(f"{path} is empty")
    header = rows[0]
    # The last 7 columns are epochs (or `trained` when epochs is swept) and FIGURES.
    if len(header) < 9 or header[:2] != ["rank", "trial"] or header[-6:] != FIGURES or header[-7] not in ("epochs", "trained"):
        fail(f"{path}: unexpected header {','.join(header)!r} (want rank,trial,<fields...>,epochs,{','.join(FIGURES)})")
    fields = header[2:-7]
    if not fields:
        fail(f"{path}: no swept field between `trial` and `{header[-7]}`")
    board = []
    for i, r in enumerate(rows[1:], start=2):
        if not r:
            continue
        if len(r) != len(header):
            fail(f"{path} line {i}: {len(r)} cells, the header has {len(header)}")
        cell = dict(zip(header, r))
        try:
            row = {
                "rank": int(cell["rank"]),
                "trial": int(cell["trial"]),
                "params": {k: cell[k] for k in fields},
                "epochs": int(cell[header[-7]]),
                "val_acc": float(cell["val_acc"]),
                "val_acc_text": cell["val_acc"],
                "status": cell["status"],
                "line": i,
            }
        except ValueError as e:
            fail(f"{path} line {i}: {e}")
        board.append(row)
    if not board:
        fail(f"{path} has no rows")
    if [r["rank"] for r in board] != list(range(1, len(board) + 1)):
        fail(f"{path}: ranks are not 1..{len(board)} in order")
    seen = set()
    for r in board:
        if r["trial"] in seen:
            fail(f"{path} line {r['line']}: trial {r['trial']} listed twice")
        seen.add(r["trial"])
    return fields, board


def tolerance(text):
    """1e-6, or half a unit of the last decimal the CSV cell holds when that is coarser."""
    m = re.fullmatch(r"[-+]?\d*\.(\d+)", text.strip())
    decimals = len(m.group(1)) if m else 0
    return max(1e-6, 0.5 * 10.0 ** -decimals) * (1 + 1e-9) + 1e-12


def expected_distributions(space_text, fields):
    """{field: (class, check)} from the [space] table of the `space` attr, or None if it does not parse."""
    try:
        import tomllib
    except ImportError:
        return None
    try:
        space = tomllib.loads(space_text).get("space")
    except (tomllib.TOMLDecodeError, AttributeError, TypeError):
        return None
    if not isinstance(space, dict):
        return None
    out = {}
    for name in fields:
        d = space.get(name)
        if isinstance(d, list):
            choices = tuple("-".join(str(x) for x in v) if isinstance(v, list) else v for v in d)
            out[name] = CategoricalDistribution(choices)
        elif isinstance(d, dict) and len(d) == 1:
            (kind, (lo, hi)), = d.items()
            if kind == "uniform":
                out[name] = FloatDistribution(float(lo), float(hi))
            elif kind == "log_uniform":
                out[name] = FloatDistribution(float(lo), float(hi), log=True)
            elif kind == "int_log_uniform":
                out[name] = IntDistribution(int(lo), int(hi), log=True)
    return out


def same_as_cell(value, cell):
    """A journal param value against its leaderboard cell (TOML's spelling)."""
    if isinstance(value, bool):
        return cell == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            c = float(cell)
        except ValueError:
            return False
        return math.isclose(float(value), c, rel_tol=1e-9, abs_tol=1e-12)
    return str(value) == cell


def check(study_dir, expect_trials, importance):
    study_dir = os.path.normpath(study_dir)
    name = os.path.basename(os.path.abspath(study_dir))
    journal = os.path.join(study_dir, "journal.log")
    # JournalFileBackend creates a missing file: look first so that a wrong folder is not touched.
    if not os.path.isfile(journal):
        fail(f"{journal} does not exist")
    fields, board = read_leaderboard(os.path.join(study_dir, "leaderboard.csv"))
    by_trial = {r["trial"]: r for r in board}

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in storage.get_all_studies()]
        fail(f"{journal}: no study named {name!r} (it holds {names})")

    if study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
        fail(f"study {name}: directions {[d.name for d in study.directions]}, want [MAXIMIZE]")
    attrs = study.user_attrs
    for key in ("method", "fixed", "space"):
        if key not in attrs:
            fail(f"study {name}: no user attr {key!r} (it has {sorted(attrs)})")
    if not isinstance(attrs["fixed"], dict):
        fail(f"study {name}: user attr 'fixed' is a {type(attrs['fixed']).__name__}, want a JSON object")
    expected = expected_distributions(attrs["space"], fields) if isinstance(attrs["space"], str) else None
    allowed = (FloatDistribution, IntDistribution, CategoricalDistribution)

    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    if sorted(numbers) != list(range(len(trials))):
        fail(f"trial numbers are not 0..{len(trials) - 1} each once: {numbers}")
    if expect_trials is not None:
        if len(trials) != expect_trials:
            fail(f"{len(trials)} trials in the journal, expected {expect_trials}")
        open_ = [t.number for t in trials if not t.state.is_finished()]
        if open_:
            fail(f"trials {open_} are still {trials[open_[0]].state.name} (the sweep should have finished them)")

    for r in board:
        if r["trial"] >= len(trials):
            fail(f"leaderboard line {r['line']}: trial {r['trial']} is not in the journal ({len(trials)} trials)")
        if r["status"] == "diverged" and trials[r["trial"]].state == TrialState.COMPLETE:
            fail(f"trial {r['trial']}: diverged on the leaderboard but COMPLETE in the journal")
        if r["status"] == "pruned" and trials[r["trial"]].state != TrialState.PRUNED:
            fail(f"trial {r['trial']}: pruned on the leaderboard but {trials[r['trial']].state.name} in the journal")

    states = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
        if t.state.is_finished():
            folder = t.user_attrs.get("folder")
            m = re.fullmatch(r"trials/(\d+)", folder) if isinstance(folder, str) else None
            if not m or int(m.group(1)) != t.number:
                fail(f"trial {t.number} ({t.state.name}): user attr folder = {folder!r}, want 'trials/{t.number:03d}'")
        nulls = [s for s, v in t.intermediate_values.items() if v is None]
        if nulls:
            fail(f"trial {t.number} ({t.state.name}): intermediate value null at steps {sorted(nulls)} "
                 "(write NaN as the token NaN or leave the step out; the dashboard fails on null)")
        if t.state == TrialState.FAIL and not t.user_attrs.get("reason"):
            fail(f"trial {t.number} is FAIL without a user attr 'reason'")
        if t.state == TrialState.PRUNED and t.number in by_trial:
            e = by_trial[t.number]["epochs"]
            steps = sorted(t.intermediate_values, key=str)
            if steps != list(range(1, e + 1)):
                fail(f"trial {t.number} (PRUNED): intermediate steps {steps}, want 1..{e} (its leaderboard epochs)")
        if t.state != TrialState.COMPLETE:
            continue
        # Params: every swept field, each with a distribution of the right class.
        missing = [f for f in fields if f not in t.params]
        if missing:
            fail(f"trial {t.number} (COMPLETE): no param for {missing} (params: {sorted(t.params)}; "
                 "a SET_TRIAL_PARAM whose distribution is incompatible with an earlier trial's is dropped on replay)")
        extra = sorted(set(t.params) - set(fields))
        if extra:
            fail(f"trial {t.number}: params {extra} are not leaderboard columns {fields}")
        row = by_trial.get(t.number)
        if row is None:
            fail(f"trial {t.number} is COMPLETE but has no leaderboard row")
        if row["status"] != "done":
            fail(f"trial {t.number} is COMPLETE but its leaderboard status is {row['status']!r}")
        for f in fields:
            dist, value = t.distributions[f], t.params[f]
            if not isinstance(dist, allowed):
                fail(f"trial {t.number} param {f}: distribution {dist!r} is not Float/Int/CategoricalDistribution")
            want = expected.get(f) if expected else None
            if want is not None and dist != want:
                fail(f"trial {t.number} param {f}: distribution {dist!r}, the space says {want!r}")
            if not dist._contains(dist.to_internal_repr(value)):
                fail(f"trial {t.number} param {f} = {value!r} lies outside {dist!r}")
            if not same_as_cell(value, row["params"][f]):
                fail(f"trial {t.number} param {f} = {value!r}, its leaderboard cell is {row['params'][f]!r}")
        # Intermediate values: steps 1..E, the value the last of them and the leaderboard's.
        bad = {s: v for s, v in t.intermediate_values.items() if isinstance(v, bool) or not isinstance(v, (int, float))}
        if bad:
            fail(f"trial {t.number}: intermediate values that are not numbers: {bad} (a NaN written as null? the dashboard fails on it)")
        odd = [s for s in t.intermediate_values if isinstance(s, bool) or not isinstance(s, int)]
        if odd:
            fail(f"trial {t.number}: intermediate steps {odd!r} are not JSON integers")
        steps = sorted(t.intermediate_values)
        if steps != list(range(1, row["epochs"] + 1)):
            fail(f"trial {t.number}: intermediate steps {steps}, want 1..{row['epochs']} (its leaderboard epochs)")
        last = t.intermediate_values[row["epochs"]]
        if t.value is None or not math.isclose(t.value, last, rel_tol=0, abs_tol=1e-12):
            fail(f"trial {t.number}: value {t.value} is not its last intermediate value {last} (step {row['epochs']})")
        tol = tolerance(row["val_acc_text"])
        if not abs(t.value - row["val_acc"]) <= tol:
            fail(f"trial {t.number}: value {t.value!r} differs from its leaderboard val_acc {row['val_acc_text']} by more than {tol:.1e}")

    complete = states.get("COMPLETE", 0)
    if complete == 0:
        fail(f"study {name}: no COMPLETE trial")
    top = board[0]
    best = study.best_trial
    tol = tolerance(top["val_acc_text"])
    if not abs(study.best_value - top["val_acc"]) <= tol:
        fail(f"study.best_value {study.best_value!r} != leaderboard row 1 val_acc {top['val_acc_text']} (to {tol:.1e})")
    if best.number != top["trial"]:
        fail(f"study.best_trial.number {best.number} != leaderboard row 1 trial {top['trial']}")

    extra_note = ""
    if importance:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                imp = optuna.importance.get_param_importances(study)
            except Exception as e:  # noqa: BLE001 - any failure of Optuna's own analysis is the finding
                fail(f"get_param_importances failed: {type(e).__name__}: {e}")
        varying = {f for f in fields if not best.distributions[f].single()}
        if not varying <= set(imp) or not set(imp) <= set(fields):
            fail(f"get_param_importances returned {sorted(imp)}, want every varying swept field {sorted(varying)} (and only swept fields)")
        for k, v in imp.items():
            if not (isinstance(v, float) and math.isfinite(v)):
                fail(f"importance of {k} is {v!r}")
            print(f"importance {k}: {v:.4f}")
        for w in caught:
            print(f"note: optuna: {str(w.message).splitlines()[0]}")
        extra_note = f", importances for {len(imp)} fields"

    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    print(
        f"ok: {journal}: study {name!r} (maximize, method {attrs['method']!r}), {len(trials)} trials ({counts}), "
        f"{len(fields)} swept fields ({', '.join(fields)}), best trial {best.number} value {study.best_value:.6f} "
        f"= leaderboard row 1{extra_note}"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study_dir", metavar="STUDY_DIR", help="a sweep folder holding journal.log and leaderboard.csv")
    ap.add_argument("--expect-trials", type=int, metavar="N", help="the journal must hold exactly N trials, all finished")
    ap.add_argument("--importance", action="store_true", help="run optuna.importance.get_param_importances and print them")
    args = ap.parse_args()
    if MISSING is not None:
        sys.exit(f"{PROG}: {MISSING}; install it with `pip install optuna`")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        check(args.study_dir, args.expect_trials, args.importance)
    except CheckError as e:
        print(f"{PROG}: FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - Optuna refusing the journal is a failure too, one line
        print(f"{PROG}: FAIL: Optuna could not read the study: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
