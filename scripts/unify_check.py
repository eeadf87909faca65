#!/usr/bin/env python3
"""Check that CI's matrix build reuses the README build's crates outside Burn.

Cargo compiles a crate again when the features it is built with change, and everything above
it too. The wgpu and ndarray features turn on features in crates the default build shares
(serde's `rc`, syn's `fold`, ...); Cargo.toml's feature-unification section turns those on in
every build, so that the matrix build (`--features wgpu,ndarray`) after the README's
`cargo build --release --all-targets` compiles only Burn's crates (whose features it changes
for certain) and the crates it adds. This asks Cargo (nightly's `--unit-graph`, which builds
nothing) for both builds' units and lists every crate of the default build the matrix build
would compile again, outside Burn and cubecl's crates that Burn's features change.

usage: scripts/unify_check.py [CARGO_ARGS_OF_THE_MATRIX_BUILD...]
"""
import json
import subprocess
import sys

# Crates whose features the wgpu and ndarray features change by design: Burn's, and the cubecl
# crates under burn-std (`persistence` would bring cubecl's autotune database, an SQLite in Rust,
# into the default build).
CHANGED_BY_DESIGN = ("burn", "cubecl-common", "cubecl-environment", "cubecl-zspace", "d2l-mlp")


def units(args):
    out = subprocess.run(
        ["cargo", "+nightly", "build", "--unit-graph", "-Z", "unstable-options", *args],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)["units"]


def identities(units):
    """A unit's identity is what Cargo's fingerprint covers: package, target, mode, profile,
    features, and its dependencies' identities."""
    memo = {}

    def ident(i):
        if i not in memo:
            u = units[i]
            memo[i] = hash((
                u["pkg_id"], u["target"]["name"], tuple(u["target"]["kind"]), u["mode"],
                json.dumps(u["profile"], sort_keys=True), tuple(u["features"]), u.get("platform"),
                tuple(sorted(ident(d["index"]) for d in u["dependencies"])),
            ))
        return memo[i]

    return [ident(i) for i in range(len(units))]


def package(unit):
    return unit["pkg_id"].split("#")[-1]


def main():
    matrix_args = sys.argv[1:] or ["--release", "--features", "wgpu,ndarray", "--locked", "--bin", "d2l-mlp"]
    default = units(["--release", "--all-targets", "--locked"])
    matrix_units = units(matrix_args)
    matrix = set(identities(matrix_units))
    # A crate the matrix build does not use at all (a dev-dependency of a test it does not build)
    # is not compiled again.
    used = {(u["pkg_id"], u["target"]["name"], u["mode"]) for u in matrix_units}
    rebuilt = sorted({
        package(u) for u, i in zip(default, identities(default))
        if i not in matrix and (u["pkg_id"], u["target"]["name"], u["mode"]) in used
        and not package(u).startswith(CHANGED_BY_DESIGN)
    })
    if rebuilt:
        print("unify_check: the matrix build would compile these crates of the default build again "
              f"(their features or a dependency's differ): {', '.join(rebuilt)}. Add the features the "
              "matrix build gives them to Cargo.toml's feature-unification section.")
        sys.exit(1)
    print(f"unify_check: the matrix build reuses every crate of the default build outside Burn ({len(default)} units)")


if __name__ == "__main__":
    main()
