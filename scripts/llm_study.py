#!/usr/bin/env python3
"""Model-variant study: a baseline model against variants of it (PaLU today) over the evaluation suites.

    python3 scripts/llm_study.py SPEC.yaml [--variant V]... [--suite S]... [--set KEY=VALUE]... [--tag TAG]
    python3 scripts/llm_study.py --report results/<experiment>

SPEC.yaml (configs/experiments/palu_vs_baseline.yaml is the seed study):
    experiment: palu_vs_baseline         # results/<experiment>/<variant>_<suite>_<tag>/
    output_root: results
    model: models/smollm2/...gguf        # the baseline model (any format hpcinfer reads)
    threads: 0
    variants:
      baseline: {}                       # the model as it is
      palu: {ratio: 0.7, group_size: 3, calib: FILE, calib_tokens: 4096, calib_skip_tokens: 200000}
    suites:
      infer: {warmup: 1, trials: 3, args: []}         # hpcinfer eval infer (its grid options go in args)
      ppl: {data: FILE, limit_tokens: 32768, args: []} # hpcinfer eval ppl
      mc: {tasks: [piqa, hellaswag], limit: 200}       # hpcinfer eval mc, one call per task
A variant with `ratio` is made by `hpcinfer palu compress` the first time a job needs it, in
results/<experiment>/models/<variant>-<digest of its options>/ (a file lock keeps concurrent jobs from making it
twice; suite `compress` makes it alone). Calibration text must not overlap the perplexity text: with the same file, calib_skip_tokens must be at least ppl's limit_tokens
(and limit_tokens not 0 = the whole file), else the study stops naming the keys.

Each job writes config.yaml (the spec as resolved for it), env.json, raw.json (the eval command's JSON),
summary.json (the figures the report compares, with the variant's KV bytes per token from `hpcinfer plan --show`)
and run_summary.md. Without --variant/--suite every variant x suite runs, then the report:
results/<experiment>/report/{report.md, report.json, ppl.png, accuracy.png, kv_bytes.png, decode_tok_s.png}
(the newest run of each variant x suite; plots need matplotlib, scripts/setup_report.sh).
Exit 2 on a bad spec (naming the key), 1 when an eval command fails (its output is kept in the run directory).
"""
import argparse
import datetime
import fcntl
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("llm_study: PyYAML is needed (pip install pyyaml, or apt-get install python3-yaml)")

SUITES = ("infer", "ppl", "mc")


class SpecError(Exception):
    pass


def load_spec(path, sets):
    try:
        with open(path) as f:
            spec = yaml.safe_load(f)
    except OSError as e:
        raise SpecError(f"{path}: {e.strerror}")
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}")
    if not isinstance(spec, dict):
        raise SpecError(f"{path}: expected a mapping at the top")
    for s in sets:
        if "=" not in s:
            raise SpecError(f"--set {s}: expected KEY=VALUE")
        key, value = s.split("=", 1)
        node, parts = spec, key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise SpecError(f"--set {key}: {p} is not a mapping")
        node[parts[-1]] = yaml.safe_load(value)
    for key in ("experiment", "model", "variants", "suites"):
        if key not in spec:
            raise SpecError(f"{path}: key {key} is missing")
    if not isinstance(spec["variants"], dict) or not spec["variants"]:
        raise SpecError(f"{path}: key variants: expected a mapping of variant names")
    if not isinstance(spec["suites"], dict):
        raise SpecError(f"{path}: key suites: expected a mapping")
    for name in spec["suites"]:
        if name not in SUITES:
            raise SpecError(f"{path}: key suites.{name}: unknown suite (infer, ppl, mc)")
    for name, v in spec["variants"].items():
        v = v or {}
        spec["variants"][name] = v
        known = {"ratio", "group_size", "calib", "calib_tokens", "calib_skip_tokens", "whitening", "rank_multiple",
                 "tokenizer"}
        for k in v:
            if k not in known:
                raise SpecError(f"{path}: key variants.{name}.{k}: unknown (known: {', '.join(sorted(known))})")
    check_disjoint(spec, path)
    return spec


def check_disjoint(spec, path):
    """Calibration tokens must not be among the tokens perplexity is measured on."""
    ppl = spec["suites"].get("ppl")
    if ppl is None:
        return
    data = os.path.realpath(ppl.get("data", "../shared/data/eval/wikitext-2-raw/wiki.test.raw"))
    limit = int(ppl.get("limit_tokens", 0))
    for name, v in spec["variants"].items():
        if "ratio" not in v or v.get("whitening") == "none" or not v.get("calib"):
            continue
        if os.path.realpath(v["calib"]) != data:
            continue
        skip = int(v.get("calib_skip_tokens", 0))
        if limit == 0 or skip < limit:
            raise SpecError(f"{path}: variants.{name}.calib is the perplexity text ({ppl.get('data')}): "
                            f"variants.{name}.calib_skip_tokens ({skip}) must be at least suites.ppl.limit_tokens "
                            f"({limit}{', the whole file' if limit == 0 else ''}) so the ranges are disjoint")


def run(cmd, log_path=None):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if log_path:
        with open(log_path, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n" + p.stderr + "\n")
    return p


def variant_model(spec, name, hpcinfer, exp_dir):
    """The model path of a variant: the baseline's, or its compressed copy (made once)."""
    v = spec["variants"][name]
    if "ratio" not in v:
        return spec["model"]
    # Named by a digest of the variant's options: a changed ratio (or --set) makes a new model, never reuses one.
    digest = hashlib.sha256(json.dumps([spec["model"], v], sort_keys=True).encode()).hexdigest()[:8]
    out = os.path.join(exp_dir, "models", f"{name}-{digest}")
    os.makedirs(os.path.join(exp_dir, "models"), exist_ok=True)
    with open(out + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(out, "config.json")):
            return out
        shutil.rmtree(out, ignore_errors=True)
        cmd = [hpcinfer, "palu", "compress", "--model", spec["model"], "--out", out, "--ratio", str(v["ratio"]),
               "--group-size", str(v.get("group_size", 4)), "--threads", str(spec.get("threads", 0))]
        for key, flag in (("calib", "--calib"), ("calib_tokens", "--calib-tokens"),
                          ("calib_skip_tokens", "--calib-skip-tokens"), ("whitening", "--whitening"),
                          ("rank_multiple", "--rank-multiple"), ("tokenizer", "--tokenizer")):
            if key in v:
                cmd += [flag, str(v[key])]
        print("llm_study: " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, text=True, capture_output=True)
        sys.stderr.write(p.stderr[-2000:])
        if p.returncode != 0:
            shutil.rmtree(out, ignore_errors=True)
            raise RuntimeError(f"palu compress for variant {name} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
        print(p.stdout.strip(), flush=True)
    return out


def kv_bytes_per_token(hpcinfer, model):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(f"model:\n  path: {os.path.abspath(model)}\n")
    try:
        p = run([hpcinfer, "plan", "--show", "--json", f.name])
        if p.returncode != 0:
            raise RuntimeError(f"plan --show for {model}: {p.stderr.strip()}")
        return sum(r["kv_bytes_per_token"] for r in json.loads(p.stdout))
    finally:
        os.unlink(f.name)


def environment(hpcinfer):
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = run([hpcinfer, "--version"]).stdout.strip()
    return {"hpcinfer": version, "host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "cwd": os.getcwd()}


def suite_commands(spec, suite, model):
    """The eval calls of one suite: [(label, argv)]."""
    s = spec["suites"][suite] or {}
    common = ["--model", model, "--threads", str(spec.get("threads", 0)), "--json"]
    extra = [str(a) for a in s.get("args", [])]
    if suite == "infer":
        return [("infer", ["eval", "infer", *common, "--warmup", str(s.get("warmup", 1)), "--trials",
                           str(s.get("trials", 3)), *extra])]
    if suite == "ppl":
        argv = ["eval", "ppl", *common, "--limit-tokens", str(s.get("limit_tokens", 0))]
        if "data" in s:
            argv += ["--data", s["data"]]
        return [("ppl", argv + extra)]
    return [(task, ["eval", "mc", "--task", task, *common, "--limit", str(s.get("limit", 200)), *extra])
            for task in s.get("tasks", ["piqa", "hellaswag"])]


def summarize(suite, raws):
    if suite == "ppl":
        r = raws["ppl"]
        return {"perplexity": r["perplexity"], "nll_mean": r["nll_mean"], "tokens_scored": r["tokens_scored"],
                "corpus": r.get("corpus"), "tokens_per_s": r.get("tokens_per_s")}
    if suite == "mc":
        return {task: {"acc": r["acc"], "acc_stderr": r["acc_stderr"], "acc_norm": r["acc_norm"],
                       "acc_norm_stderr": r["acc_norm_stderr"], "items": len(r.get("predictions", []))}
                for task, r in raws.items()}
    r = raws["infer"]
    pts = []
    for p in r["points"]:
        q = {k: p[k] for k in ("phase", "batch", "seq", "ctx", "gen", "status", "reason") if k in p}
        if p.get("status") == "ok":
            q.update({k: p["tok_s"][k] for k in ("mean", "std", "p50", "p90", "p99")})
        pts.append(q)
    return {"points": pts, "weights": r.get("weights"), "threads": r.get("threads")}


def run_job(spec, variant, suite, hpcinfer, tag):
    exp_dir = os.path.join(spec.get("output_root", "results"), spec["experiment"])
    model = variant_model(spec, variant, hpcinfer, exp_dir)
    if suite == "compress":
        return 0
    run_id = f"{variant}_{suite}_{tag}"
    out = os.path.join(exp_dir, run_id)
    os.makedirs(out, exist_ok=True)
    resolved = {"experiment": spec["experiment"], "run_id": run_id, "variant": variant, "suite": suite,
                "model": model, "baseline_model": spec["model"], "variant_spec": spec["variants"][variant],
                "suite_spec": spec["suites"][suite], "threads": spec.get("threads", 0)}
    with open(os.path.join(out, "config.yaml"), "w") as f:
        yaml.safe_dump(resolved, f, sort_keys=False)
    with open(os.path.join(out, "env.json"), "w") as f:
        json.dump(environment(hpcinfer), f, indent=2)
    raws = {}
    for label, argv in suite_commands(spec, suite, model):
        print(f"llm_study: {run_id}: hpcinfer {' '.join(argv)}", flush=True)
        p = run([hpcinfer, *argv], os.path.join(out, "stderr.log"))
        if p.returncode != 0:
            sys.stderr.write(p.stderr[-3000:])
            print(f"llm_study: {run_id}: '{' '.join(argv[:2])}' failed ({p.returncode}); see {out}/stderr.log",
                  file=sys.stderr)
            return 1
        raws[label] = json.loads(p.stdout)
    with open(os.path.join(out, "raw.json"), "w") as f:
        json.dump(raws, f, indent=1)
    summary = {"run_id": run_id, "variant": variant, "suite": suite, "model": model,
               "kv_bytes_per_token": kv_bytes_per_token(hpcinfer, model), "metrics": summarize(suite, raws)}
    if "ratio" in spec["variants"][variant]:
        cfg = json.load(open(os.path.join(model, "config.json")))["palu"]
        summary["palu"] = {k: cfg.get(k) for k in ("ratio", "group_size", "rank_k", "rank_v", "whitening", "calibration")}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out, "run_summary.md"), "w") as f:
        f.write(run_markdown(summary))
    print(f"llm_study: {run_id}: done -> {out}", flush=True)
    return 0


def run_markdown(s):
    lines = [f"# {s['run_id']}", "", f"variant `{s['variant']}`, suite `{s['suite']}`, model `{s['model']}`",
             f"KV cache: {s['kv_bytes_per_token']:.0f} bytes per token (f32, all layers)", ""]
    m = s["metrics"]
    if s["suite"] == "ppl":
        lines += [f"perplexity {m['perplexity']:.4f} over {m['tokens_scored']} tokens ({m['corpus']})"]
    elif s["suite"] == "mc":
        lines += ["| task | items | acc | acc_norm |", "|---|---|---|---|"]
        for t, r in m.items():
            lines.append(f"| {t} | {r['items']} | {r['acc']:.3f} ± {r['acc_stderr']:.3f} | "
                         f"{r['acc_norm']:.3f} ± {r['acc_norm_stderr']:.3f} |")
    else:
        lines += ["| phase | B | S/ctx | gen | tok/s mean | std | p50 | p90 | p99 |", "|---|---|---|---|---|---|---|---|---|"]
        for p in m["points"]:
            size = p.get("seq", p.get("ctx"))
            if p["status"] != "ok":
                lines.append(f"| {p['phase']} | {p['batch']} | {size} | {p.get('gen', '')} | skipped: {p['reason']} |||||")
            else:
                lines.append(f"| {p['phase']} | {p['batch']} | {size} | {p.get('gen', '')} | {p['mean']:.1f} | "
                             f"{p['std']:.1f} | {p['p50']:.1f} | {p['p90']:.1f} | {p['p99']:.1f} |")
    return "\n".join(lines) + "\n"


def collect(exp_dir):
    """The newest summary of each (variant, suite) under exp_dir."""
    best = {}
    for d in sorted(os.listdir(exp_dir)):
        f = os.path.join(exp_dir, d, "summary.json")
        if not os.path.isfile(f):
            continue
        s = json.load(open(f))
        key = (s["variant"], s["suite"])
        mtime = os.path.getmtime(f)
        if key not in best or mtime >= best[key][0]:
            best[key] = (mtime, s)
    return {k: v[1] for k, v in best.items()}


def report(exp_dir):
    runs = collect(exp_dir)
    if not runs:
        print(f"llm_study: no finished runs under {exp_dir}", file=sys.stderr)
        return 1
    variants = sorted({v for v, _ in runs}, key=lambda v: (v != "baseline", v))
    out = os.path.join(exp_dir, "report")
    os.makedirs(out, exist_ok=True)
    table = {}
    for v in variants:
        row = {}
        for (vv, suite), s in runs.items():
            if vv != v:
                continue
            row["kv_bytes_per_token"] = s["kv_bytes_per_token"]
            if "palu" in s:
                row["palu"] = s["palu"]
            m = s["metrics"]
            if suite == "ppl":
                row["perplexity"] = m["perplexity"]
            elif suite == "mc":
                for t, r in m.items():
                    row[t] = {"acc": r["acc"], "acc_stderr": r["acc_stderr"], "acc_norm": r["acc_norm"],
                              "acc_norm_stderr": r["acc_norm_stderr"], "items": r["items"]}
            else:
                row["decode_tok_s"] = {f"ctx{p['ctx']}_gen{p['gen']}_b{p['batch']}": p["mean"]
                                       for p in m["points"] if p["phase"] == "decode" and p["status"] == "ok"}
                row["prefill_tok_s"] = {f"b{p['batch']}_s{p['seq']}": p["mean"]
                                        for p in m["points"] if p["phase"] == "prefill" and p["status"] == "ok"}
        table[v] = row
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(table, f, indent=2)
    base = table.get("baseline", {})
    lines = [f"# {os.path.basename(os.path.normpath(exp_dir))}: baseline vs variants", "",
             "| variant | KV bytes/token | ratio | perplexity | piqa acc | hellaswag acc_norm | decode tok/s (largest ctx, B=1) |",
             "|---|---|---|---|---|---|---|"]
    for v in variants:
        r = table[v]
        kv = r.get("kv_bytes_per_token")
        rel = f"{kv / base['kv_bytes_per_token']:.3f}x" if kv and base.get("kv_bytes_per_token") else ""
        dec = r.get("decode_tok_s", {})
        b1 = {k: x for k, x in dec.items() if k.endswith("_b1")}
        big = max(b1, key=lambda k: int(k.split("_")[0][3:])) if b1 else None
        lines.append("| {} | {} | {} | {} | {} | {} | {} |".format(
            v, f"{kv:.0f}" if kv else "", rel, f"{r['perplexity']:.3f}" if "perplexity" in r else "",
            f"{r['piqa']['acc']:.3f} ± {r['piqa']['acc_stderr']:.3f}" if "piqa" in r else "",
            f"{r['hellaswag']['acc_norm']:.3f} ± {r['hellaswag']['acc_norm_stderr']:.3f}" if "hellaswag" in r else "",
            f"{b1[big]:.2f} ({big})" if big else ""))
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    plots(table, variants, out)
    print(f"llm_study: report in {out}")
    return 0


def plots(table, variants, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("llm_study: matplotlib missing: no plots (bash scripts/setup_report.sh)", file=sys.stderr)
        return

    def bars(values, errors, ylabel, title, name):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.bar(range(len(values)), [x for _, x in values], yerr=errors, capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(values)), [v for v, _ in values])
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=120)
        plt.close(fig)

    ppl = [(v, table[v]["perplexity"]) for v in variants if "perplexity" in table[v]]
    if ppl:
        bars(ppl, None, "perplexity", "Perplexity (lower is better)", "ppl.png")
    kv = [(v, table[v]["kv_bytes_per_token"]) for v in variants if "kv_bytes_per_token" in table[v]]
    if kv:
        bars(kv, None, "bytes per token", "KV cache per token (f32, all layers)", "kv_bytes.png")
    tasks = [t for t in ("piqa", "hellaswag") if any(t in table[v] for v in variants)]
    if tasks:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        width = 0.8 / max(1, len(variants))
        for i, v in enumerate(variants):
            xs = [j + i * width for j, t in enumerate(tasks) if t in table[v]]
            ys = [table[v][t]["acc_norm" if t == "hellaswag" else "acc"] for t in tasks if t in table[v]]
            es = [table[v][t]["acc_norm_stderr" if t == "hellaswag" else "acc_stderr"] for t in tasks if t in table[v]]
            ax.bar(xs, ys, width, yerr=es, capsize=3, label=v)
        ax.set_xticks([j + width * (len(variants) - 1) / 2 for j in range(len(tasks))],
                      ["piqa acc" if t == "piqa" else "hellaswag acc_norm" for t in tasks])
        ax.set_ylabel("accuracy (± standard error)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, "accuracy.png"), dpi=120)
        plt.close(fig)
    if any(table[v].get("decode_tok_s") for v in variants):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for v in variants:
            series = {}
            for k, x in table[v].get("decode_tok_s", {}).items():
                ctx, gen, b = k.split("_")
                series.setdefault(f"{v} {gen} {b}", []).append((int(ctx[3:]), x))
            for label, pts in sorted(series.items()):
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel("decode tokens/s")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "decode_tok_s.png"), dpi=120)
        plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec", nargs="?")
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--suite", action="append", default=[], help="infer | ppl | mc | compress")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE over the spec (dotted keys)")
    ap.add_argument("--tag", default=os.environ.get("SLURM_JOB_ID") or datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    ap.add_argument("--bin", default=os.environ.get("HPCINFER_BIN", "build/bin/hpcinfer"))
    ap.add_argument("--report", metavar="EXP_DIR", help="only the report of finished runs")
    ap.add_argument("--no-report", action="store_true")
    a = ap.parse_args()
    if a.report:
        return report(a.report)
    if not a.spec:
        ap.error("SPEC.yaml or --report EXP_DIR")
    try:
        spec = load_spec(a.spec, a.set)
        for v in a.variant:
            if v not in spec["variants"]:
                raise SpecError(f"--variant {v}: not in {a.spec} (variants: {', '.join(spec['variants'])})")
        for s in a.suite:
            if s != "compress" and s not in spec["suites"]:
                raise SpecError(f"--suite {s}: not in {a.spec} (suites: {', '.join(spec['suites'])}, compress)")
    except SpecError as e:
        print(f"llm_study: {e}", file=sys.stderr)
        return 2
    rc = 0
    for v in a.variant or list(spec["variants"]):
        for s in a.suite or list(spec["suites"]):
            try:
                rc = max(rc, run_job(spec, v, s, a.bin, a.tag))
            except RuntimeError as e:
                print(f"llm_study: {e}", file=sys.stderr)
                rc = 1
    if not a.no_report and not (a.variant or a.suite):
        report(os.path.join(spec.get("output_root", "results"), spec["experiment"]))
    return rc


if __name__ == "__main__":
    sys.exit(main())
