#!/usr/bin/env python3
"""same_tokens.py REFERENCE.jsonl NAME=RUN.jsonl...: exit 0 when every run's completions have the same prompt ids and
the same token ids as the reference (a single-process run); otherwise name the first prompts that differ."""
import json
import sys


def token_ids(path):
    with open(path) as f:
        return {r["id"]: r["token_ids"] for r in map(json.loads, f) if r}


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    ref = token_ids(argv[1])
    if not ref:
        sys.exit(f"{argv[1]}: no completions")
    for arg in argv[2:]:
        name, _, path = arg.rpartition("=")
        got = token_ids(path)
        if sorted(got) != sorted(ref):
            sys.exit(f"{name or path}: prompts {sorted(got)} differ from the reference's {sorted(ref)}")
        bad = [k for k in ref if ref[k] != got[k]]
        if bad:
            sys.exit(f"{name or path}: token ids differ from the single-process run for {bad}")
        print(f"{name or path}: {len(ref)} completions, {sum(map(len, ref.values()))} tokens, "
              "equal to the single-process run")


if __name__ == "__main__":
    main(sys.argv)
