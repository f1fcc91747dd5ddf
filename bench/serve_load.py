#!/usr/bin/env python3
"""Load generator for bench/serve_bench.sh: C concurrent streaming clients (openai.AsyncOpenAI) against one server.

    serve_load.py URL PROMPTS_JSONL --concurrency C --requests N --max-tokens T

Each client sends its next request as soon as the previous one ends (closed loop), N in all. Per request: TTFT
(send -> first chunk with text), the gaps between chunks after it (inter-token latency: a chunk per token, except
where a stop string or an unfinished UTF-8 character holds text back) and the generated tokens (usage). Prints one
JSON object: requests/s and output tokens/s over the whole run (first send to last end), p50/p99 TTFT and ITL (s).
"""
import argparse
import asyncio
import json
import time


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("prompts")
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--max-tokens", type=int, default=64)
    a = ap.parse_args()
    import openai
    prompts = [json.loads(l)["prompt"] for l in open(a.prompts) if l.strip()]
    client = openai.AsyncOpenAI(base_url=a.url + "/v1", api_key="none", max_retries=0, timeout=600)
    model = (await client.models.list()).data[0].id
    ttft, itl, tokens, errors = [], [], [], 0
    error_kinds = {}
    next_req = 0

    async def worker():
        nonlocal next_req, errors
        while next_req < a.requests:
            i = next_req
            next_req += 1
            t0 = time.perf_counter()
            last, first, n = None, None, 0
            try:
                stream = await client.completions.create(model=model, prompt=prompts[i % len(prompts)],
                                                         max_tokens=a.max_tokens, temperature=0, stream=True,
                                                         stream_options={"include_usage": True})
                async for ch in stream:
                    now = time.perf_counter()
                    if ch.choices and ch.choices[0].text:
                        if first is None:
                            first = now
                            ttft.append(now - t0)
                        else:
                            itl.append(now - last)
                        last = now
                    if ch.usage:
                        n = ch.usage.completion_tokens
                tokens.append(n)
            except openai.APIError as e:
                errors += 1
                kind = f"{type(e).__name__} {getattr(e, 'status_code', '')}: {str(e)[:160]} ({e.__cause__!r:.200})"
                error_kinds[kind] = error_kinds.get(kind, 0) + 1

    t_start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(a.concurrency)])
    wall = time.perf_counter() - t_start
    await client.close()
    print(json.dumps({"concurrency": a.concurrency, "requests": len(tokens), "errors": errors,
                      "error_kinds": error_kinds, "wall_s": wall,
                      "req_per_s": len(tokens) / wall, "output_tok_per_s": sum(tokens) / wall,
                      "mean_output_tokens": sum(tokens) / max(len(tokens), 1),
                      "ttft_p50_s": pct(ttft, 50), "ttft_p99_s": pct(ttft, 99),
                      "itl_p50_s": pct(itl, 50), "itl_p99_s": pct(itl, 99)}))


asyncio.run(main())
