#!/usr/bin/env python3
"""PNG plots of an `hpcinfer report` directory, drawn from its CSV tables (the report writes them first).

usage: python3 scripts/plot_report.py REPORT_DIR      (hpcinfer report runs it; bash scripts/setup_report.sh
                                                      installs matplotlib)
Writes REPORT_DIR/plots/:
  <study>_speedup.png, <study>_efficiency.png   scaling.csv: speedup and parallel efficiency against world size, one
                                                line per series (pp, tp, ...) through the world=1 baseline, ideal dashed
  <study>_sensitivity_<key>.png                 sensitivity.csv: tokens/s against the key's value (+- std over repeats)
  <study>_ab.png                                ab.csv: tokens/s of the baseline and each change (+- std), delta in %
Every plot says which CSV it came from; the CSV's `source` column names the raw files. Prints "wrote FILE" per
plot. Exit status 3 when matplotlib cannot be imported (the report then says so and keeps its tables).
"""
import csv
import os
import re
import sys
from collections import OrderedDict

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as e:  # the report goes on without plots
    print(f"plot_report.py: matplotlib is not importable ({e}): pip install matplotlib", file=sys.stderr)
    sys.exit(3)


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


def save(fig, out_dir, name, source):
    fig.text(0.01, 0.01, f"numbers: {source} (raw files: its source column)", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path = os.path.join(out_dir, "plots", name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def by_study(rows):
    groups = OrderedDict()
    for r in rows:
        groups.setdefault(r["study"], []).append(r)
    return groups


def plot_scaling(out_dir):
    for study, rows in by_study(read_csv(os.path.join(out_dir, "scaling.csv"))).items():
        kind = rows[0]["kind"]
        singles = [r for r in rows if r["series"] == "single"]
        series = OrderedDict()
        for r in rows:
            if r["series"] != "single":
                series.setdefault(r["series"], []).append(r)
        if not series:
            series["single"] = singles
        worlds = sorted({int(r["world"]) for r in rows})
        for what, ylabel in (("speedup", "speedup (tokens/s vs world=1)"), ("efficiency", "parallel efficiency")):
            fig, ax = plt.subplots(figsize=(6, 4))
            for name, pts in series.items():
                pts = sorted(singles + pts if name != "single" else pts, key=lambda r: int(r["world"]))
                xs = [int(r["world"]) for r in pts]
                ys = [num(r[what]) for r in pts]
                # +- the point's tokens/s std, scaled like the value itself (value / tokens/s)
                err = [num(r["tokens_per_s_std"]) * num(r[what]) / num(r["tokens_per_s"]) for r in pts]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=name)
            ideal = worlds if what == "speedup" else [1.0] * len(worlds)
            ax.plot(worlds, ideal, "k--", linewidth=1, label="ideal")
            values = [num(r[what]) for r in rows if num(r[what]) > 0]
            if values and max(values + ideal) / min(values) > 20:
                ax.set_yscale("log")  # far from ideal: a linear axis would flatten the measured lines
            ax.set_xlabel("world size (ranks)")
            ax.set_ylabel(ylabel)
            ax.set_xticks(worlds)
            ax.set_title(f"{study}: {what} ({kind.replace('_', ' ')})")
            ax.grid(alpha=0.3)
            ax.legend()
            save(fig, out_dir, f"{safe(study)}_{what}.png", "scaling.csv")


def plot_sensitivity(out_dir):
    rows = read_csv(os.path.join(out_dir, "sensitivity.csv"))
    curves = OrderedDict()
    for r in rows:
        curves.setdefault((r["study"], r["key"], r["series"]), []).append(r)
    for (study, key, series), pts in curves.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        labels = [r["value"] for r in pts]
        ys = [num(r["tokens_per_s"]) for r in pts]
        err = [num(r["tokens_per_s_std"]) for r in pts]
        numeric = all(re.fullmatch(r"-?[0-9.]+(e[-+]?[0-9]+)?", v) for v in labels)
        if numeric:
            ax.errorbar([num(v) for v in labels], ys, yerr=err, marker="o", capsize=3)
            ax.set_xticks([num(v) for v in labels])
            ax.set_xticklabels(labels)
        else:
            colors = ["tab:orange" if r["point"] == r["base_point"] else "tab:blue" for r in pts]
            ax.bar(range(len(pts)), ys, yerr=err, capsize=3, color=colors)
            ax.set_xticks(range(len(pts)))
            ax.set_xticklabels(labels)
        base = [num(r["tokens_per_s"]) for r in pts if r["point"] == r["base_point"]]
        if base:
            ax.axhline(base[0], color="0.5", linestyle=":", linewidth=1, label="base point")
            ax.legend()
        ax.set_xlabel(key)
        ax.set_ylabel("tokens/s (mean +- std over repeats)")
        ax.set_title(f"{study}: tokens/s vs {key}\n({series})", fontsize=10)
        ax.grid(alpha=0.3)
        suffix = "" if series.startswith("others as ") else "_" + safe(series)[:40]
        save(fig, out_dir, f"{safe(study)}_sensitivity_{safe(key)}{suffix}.png", "sensitivity.csv")


def plot_ab(out_dir):
    for study, rows in by_study(read_csv(os.path.join(out_dir, "ab.csv"))).items():
        fig, ax = plt.subplots(figsize=(6, 4))
        names = [rows[0]["baseline"]] + [r["change"] for r in rows]
        ys = [num(rows[0]["tokens_per_s_a"])] + [num(r["tokens_per_s_b"]) for r in rows]
        err = [num(rows[0]["std_a"])] + [num(r["std_b"]) for r in rows]
        ax.bar(range(len(names)), ys, yerr=err, capsize=4, color=["tab:gray"] + ["tab:blue"] * len(rows))
        for i, r in enumerate(rows, start=1):
            ax.annotate(f"{num(r['delta_pct']):+.1f}% +- {num(r['delta_se_pct']):.1f}",
                        (i, ys[i] + (err[i] if err[i] == err[i] else 0)), ha="center", va="bottom", fontsize=9)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names)
        ax.set_ylabel("tokens/s (mean +- std over repeats)")
        ax.set_title(f"{study}: A/B against {rows[0]['baseline']}")
        ax.grid(alpha=0.3, axis="y")
        save(fig, out_dir, f"{safe(study)}_ab.png", "ab.csv")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = sys.argv[1]
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    plot_scaling(out_dir)
    plot_sensitivity(out_dir)
    plot_ab(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
