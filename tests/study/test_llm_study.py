#!/usr/bin/env python3
"""ctest llm_study: scripts/llm_study.py end to end on stories260K (seconds), as the seed study runs it.

    python3 tests/study/test_llm_study.py BUILD/bin/hpcinfer SOURCE_DIR

Runs configs/experiments/palu_vs_baseline.yaml shrunk by --set (stories260K, palu ratio 0.7 with one group of its
4 kv heads, the quick infer grid, 2000 perplexity tokens, 10 items per task) and checks: every variant x suite run
directory holds config.yaml, env.json, raw.json, summary.json and run_summary.md; the palu variant's KV bytes per
token are 0.75 of the baseline's (rank 24 of 32, multiples of 8) and its calibration range is recorded and disjoint
from the scored tokens; the report names both variants (and has its plots when matplotlib is there). Then the
refusals: a calibration range overlapping the perplexity tokens, an unknown variant key, a variant not in the spec.
Skips (77) without ../shared/data's stories260K and WikiText-2, or without PyYAML.
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    hpcinfer, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    data = os.path.join(src, "..", "shared", "data")
    for need in ("models/stories260K/stories260K.bin", "eval/wikitext-2-raw/wiki.test.raw", "eval/piqa/valid.jsonl"):
        if not os.path.exists(os.path.join(data, need)):
            print(f"SKIPPED: ../shared/data/{need} is absent")
            return 77
    try:
        import yaml  # noqa: F401
    except ImportError:
        print("SKIPPED: PyYAML is not importable by this python3 (bash scripts/setup_report.sh installs it)")
        return 77
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        base = [sys.executable, os.path.join(src, "scripts/llm_study.py"),
                os.path.join(src, "configs/experiments/palu_vs_baseline.yaml"), "--bin", hpcinfer,
                "--set", "experiment=tiny", "--set", f"output_root={tmp}",
                "--set", f"model={data}/models/stories260K/stories260K.bin",
                "--set", f"variants.palu.calib={data}/eval/wikitext-2-raw/wiki.test.raw",
                "--set", "variants.palu.group_size=4", "--set", "variants.palu.calib_skip_tokens=5000",
                "--set", "variants.palu.calib_tokens=1024", "--set", "suites.infer.args=[--quick]",
                "--set", "suites.infer.trials=1", "--set", "suites.infer.warmup=0",
                "--set", f"suites.ppl.data={data}/eval/wikitext-2-raw/wiki.test.raw",
                "--set", "suites.ppl.limit_tokens=2000", "--set", "suites.mc.limit=10", "--tag", "t1"]
        p = subprocess.run(base, capture_output=True, text=True, cwd=src)
        check(p.returncode == 0, f"the study runs (exit {p.returncode})\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}")
        exp = os.path.join(tmp, "tiny")
        summaries = {}
        for v in ("baseline", "palu"):
            for s in ("infer", "ppl", "mc"):
                d = os.path.join(exp, f"{v}_{s}_t1")
                files = [f for f in ("config.yaml", "env.json", "raw.json", "summary.json", "run_summary.md")
                         if os.path.isfile(os.path.join(d, f))]
                check(len(files) == 5, f"{v}_{s}: the run directory has its five files (has {files})")
                if os.path.isfile(os.path.join(d, "summary.json")):
                    summaries[(v, s)] = json.load(open(os.path.join(d, "summary.json")))
        if ("baseline", "ppl") in summaries and ("palu", "ppl") in summaries:
            b, q = summaries[("baseline", "ppl")], summaries[("palu", "ppl")]
            check(abs(q["kv_bytes_per_token"] / b["kv_bytes_per_token"] - 0.75) < 1e-9,
                  f"palu KV bytes per token 0.75x the baseline's ({q['kv_bytes_per_token']} / {b['kv_bytes_per_token']})")
            cal = q["palu"]["calibration"]
            check(cal["token_range"] == [5000, 6024] and cal["token_range"][0] >= q["metrics"]["tokens_scored"],
                  f"calibration range recorded and after the scored tokens ({cal['token_range']})")
            check(q["palu"]["rank_k"] == [24] * 5, f"rank 24 of 32 in every layer ({q['palu']['rank_k']})")
            check(1 < b["metrics"]["perplexity"] < 1000 and q["metrics"]["perplexity"] != b["metrics"]["perplexity"],
                  f"perplexities measured ({b['metrics']['perplexity']:.3f} vs {q['metrics']['perplexity']:.3f})")
        if ("palu", "mc") in summaries:
            m = summaries[("palu", "mc")]["metrics"]
            check(set(m) == {"piqa", "hellaswag"} and all(r["items"] == 10 and r["acc_stderr"] > 0 for r in m.values()),
                  "mc: both tasks, 10 items each, standard errors")
        report = os.path.join(exp, "report", "report.md")
        text = open(report).read() if os.path.isfile(report) else ""
        check("| baseline |" in text and "| palu |" in text and "0.750x" in text, "the report compares both variants")
        try:
            import matplotlib  # noqa: F401
            for png in ("ppl.png", "accuracy.png", "kv_bytes.png", "decode_tok_s.png"):
                f = os.path.join(exp, "report", png)
                check(os.path.isfile(f) and os.path.getsize(f) > 1000, f"plot {png}")
        except ImportError:
            print("note: matplotlib missing, plots not checked")

        def refused(extra, says, what):
            r = subprocess.run(base + extra, capture_output=True, text=True, cwd=src)
            check(r.returncode == 2 and says in r.stderr, f"{what} (exit {r.returncode}: {r.stderr.strip()[-300:]})")

        refused(["--set", "variants.palu.calib_skip_tokens=100"],
                "variants.palu.calib_skip_tokens (100) must be at least suites.ppl.limit_tokens (2000)",
                "a calibration range overlapping the perplexity tokens is refused")
        refused(["--set", "variants.palu.ratios=0.5"], "key variants.palu.ratios: unknown", "an unknown variant key")
        refused(["--variant", "palu2"], "--variant palu2: not in", "a variant not in the spec")
    print(f"test_llm_study: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
