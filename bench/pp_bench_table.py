"""The markdown table of bench/pp_bench.sh: python3 pp_bench_table.py WORK ROUNDS VARIANT...

Reads WORK/round<r>/<variant>/metrics/rank_*.json of every round and prints, per variant, the median tokens/s over
the rounds, its range, its ratio to world=1 with one micro-batch (the first variant), and each rank's median compute,
comm and idle shares of its generation wall time.
"""
import glob
import json
import os
import statistics
import sys


def one_run(run_dir):
    ms = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(run_dir, "metrics", "rank_*.json")))]
    if not ms:
        sys.exit("pp_bench_table: no metrics under " + run_dir)
    wall = max(m["engine_wall_s"] for m in ms)
    tokens = sum(m["generated_tokens"] for m in ms)  # only the last stage counts generated tokens

    def share(key):
        return [m[key] / m["engine_wall_s"] for m in ms]

    return {"tok_s": tokens / wall, "threads": [m["threads"] for m in ms], "compute": share("compute_s"),
            "comm": share("comm_s"), "idle": share("idle_recv_wait_s")}


def label(variant):
    parts = variant.split("_")  # world1_m2, pp2_m1, pp2_m1_t1
    m = parts[1][1:]
    text = ("world=1, " if parts[0] == "world1" else "pp=2, ") + m + (" micro-batch" if m == "1" else " micro-batches")
    if len(parts) > 2:
        text += ", 1 thread per rank"
    return text


def main():
    work, rounds, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    res = {v: [one_run(os.path.join(work, "round%d" % r, v)) for r in range(1, rounds + 1)] for v in variants}
    med = statistics.median
    base = med([x["tok_s"] for x in res[variants[0]]])
    print("| run | threads per rank | tokens/s (median) | min-max | vs world=1 | compute share | comm share "
          "| idle (recv wait) share |")
    print("|---|---|---|---|---|---|---|---|")
    for v in variants:
        xs = res[v]
        t = [x["tok_s"] for x in xs]

        def shares(key):
            return " / ".join("%.0f%%" % (100 * med([x[key][i] for x in xs])) for i in range(len(xs[0][key])))

        pp = not v.startswith("world1")
        print("| %s | %s | %.2f | %.2f-%.2f | %.0f%% | %s | %s | %s |" % (
            label(v), " / ".join(str(th) for th in xs[0]["threads"]), med(t), min(t), max(t), 100 * med(t) / base,
            shares("compute"), shares("comm") if pp else "-", shares("idle") if pp else "-"))
    print("\nShares are of each rank's generation wall time (rank 0 / rank 1): compute = embedding, layers, head and "
          "sampling; comm = inside communicator calls; idle = blocked in recv (pipeline bubble plus transfer).")


if __name__ == "__main__":
    main()
