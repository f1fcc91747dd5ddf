#!/usr/bin/env python3
"""hpcinfer serve end to end with real clients (ctest: serve_*).

    test_serve.py BIN SOURCE_DIR CASE      CASE: single | pipeline | tensor | replicas | chat | lm_eval

single    one process on stories260K (../shared/data): the openai package for completions, streaming, logprobs,
          echo, n and seeds, token-id prompts; greedy completions equal `hpcinfer run`'s; PIQA scored through the
          server (echo + logprobs) picks exactly the endings `hpcinfer eval mc` picks; 64 concurrent clients
          (asyncio) all complete and correct, 429 when the queue is full, no slot left after clients vanish
          mid-stream; malformed input answered with the right status naming the field; SIGTERM drains and exits 0.
pipeline  pp=2 over gloo (hpcinfer launch --serve): greedy completions equal `hpcinfer run`'s, streaming too.
tensor    tp=2 x pp=2 (4 ranks; the leader schedules for its tp peer): the same.
replicas  world.dp=2: the same, and the front sends requests to both replicas.
chat      SmolLM2-135M-Instruct (models/smollm2, scripts/fetch_smollm2.sh): chat completions equal
          `hpcinfer run` with inputs.chat, streamed and not.
lm_eval   lm-evaluation-harness (PyPI lm-eval[api]) as the client: `--model local-completions` with its remote
          tokenizer (/tokenizer_info, /tokenize) on a local PIQA task over the same items, offline: its per-item
          choices must equal `hpcinfer eval mc`'s. Needs LM_EVAL=/path/to/lm_eval or lm_eval on PATH (its venv is
          about 800 MB: datasets, pandas, pyarrow; the CI setup does not install it):
              python3 -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install "lm-eval[api]"
              LM_EVAL=/tmp/lmeval/bin/lm_eval ctest --test-dir build -R serve_lm_eval
Exit 0 = passed, 1 = failed, 77 = skipped (the reason printed): no ../shared/data, no openai package, no SmolLM2.
"""
import asyncio
import glob
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SKIP = 77
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def skip(why):
    print("SKIP: " + why, flush=True)
    sys.exit(SKIP)


class Server:
    """hpcinfer serve (or launch --serve -n N) on a free port; stopped with SIGTERM, which must exit 0."""

    def __init__(self, bin_, config, out, sets=(), ranks=1):
        self.out = out
        args = ["serve", config] if ranks == 1 else ["launch", "-n", str(ranks), "--serve", config]
        sets = ["serve.port=0", "outputs.dir=" + out, "world.timeout_s=20"] + list(sets)
        for s in sets:
            args += ["--set", s]
        self.log = open(os.path.join(os.path.dirname(out), os.path.basename(out) + ".log"), "w")
        self.proc = subprocess.Popen([bin_] + args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        info = os.path.join(out, "server.json")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %d; log %s" % (self.proc.returncode, self.log.name))
            if os.path.exists(info):
                try:
                    self.url = json.load(open(info))["url"]
                    if http_get(self.url + "/health")[0] == 200:
                        return
                except (ValueError, KeyError, OSError):
                    pass
            time.sleep(0.1)
        raise RuntimeError("server not ready in 120 s; log " + self.log.name)

    def host_port(self):
        hp = self.url.split("//")[1]
        return hp.split(":")[0], int(hp.split(":")[1])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = -9
        if code != 0:  # what the ranks said
            self.log.flush()
            logs = [self.log.name] + sorted(glob.glob(os.path.join(self.out, "ranks", "*.log")))
            for f in logs:
                print("---- " + f + "\n" + open(f).read()[-2000:])
        return code


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def raw_post(srv, path, body, content_type="application/json"):
    host, port = srv.host_port()
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("POST", path, body=body, headers={"Content-Type": content_type})
    r = c.getresponse()
    data = r.read().decode(errors="replace")
    c.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def metric(srv, name):
    text = http_get(srv.url + "/metrics")[1]
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return None


def run_reference(bin_, config, out, prompts, sets):
    """`hpcinfer run` on the same prompts: {prompt: (completion text, tokens, finish_reason)}."""
    os.makedirs(out, exist_ok=True)
    pf = os.path.join(out, "prompts.jsonl")
    with open(pf, "w") as f:
        for i, p in enumerate(prompts):
            f.write(json.dumps({"id": str(i), "prompt": p}) + "\n")
    cmd = [bin_, "run", config, "--set", "inputs.prompts=" + pf, "--set", "outputs.dir=" + out]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = [json.loads(l) for l in open(os.path.join(out, "completions.jsonl")) if l.strip()]
    return {prompts[int(r["id"])]: (r["completion"], len(r["token_ids"]), r["finish_reason"]) for r in rows}


def check_greedy_equals_run(client, model, ref, max_tokens, label):
    same = 0
    for prompt, (text, ntok, finish) in ref.items():
        r = client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0)
        c = r.choices[0]
        same += c.text == text and r.usage.completion_tokens == ntok and c.finish_reason == finish
    check(same == len(ref), "%s: greedy completions equal hpcinfer run's (%d/%d)" % (label, same, len(ref)))
    prompt, (text, ntok, _) = next(iter(ref.items()))
    chunks = list(client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0, stream=True))
    streamed = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    check(streamed == text and chunks[-1].choices[0].finish_reason is not None,
          "%s: the streamed completion equals the whole one and ends with a finish reason" % label)


# ---- single process ----

def curl_checks(srv, prompt, text):
    import shutil
    if not check(shutil.which("curl") is not None, "curl is installed (scripts/setup.sh installs it)"):
        return
    body = json.dumps({"prompt": prompt, "max_tokens": 24, "temperature": 0})
    out = subprocess.run(["curl", "-s", srv.url + "/v1/completions", "-H", "Content-Type: application/json", "-d", body],
                         capture_output=True, text=True).stdout
    check(json.loads(out)["choices"][0]["text"] == text, "curl: the completion equals run's")
    body = json.dumps({"prompt": prompt, "max_tokens": 24, "temperature": 0, "stream": True})
    out = subprocess.run(["curl", "-sN", srv.url + "/v1/completions", "-d", body], capture_output=True, text=True).stdout
    events = [l[6:] for l in out.splitlines() if l.startswith("data: ")]
    streamed = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])
    check(events[-1] == "[DONE]" and streamed == text, "curl -N: server-sent events ending in [DONE], the same text")


def piqa_check(client, srv, model, bin_, data, items):
    piqa = os.path.join(data, "eval", "piqa")
    rows = [json.loads(l) for l in open(os.path.join(piqa, "valid.jsonl"))][:items]
    labels = [int(l) for l in open(os.path.join(piqa, "valid-labels.lst"))][:items]

    def tok(text):
        return raw_post(srv, "/tokenize", json.dumps({"content": text}))[1]["tokens"]

    picks = []
    for row in rows:  # the ending's tokens after the common prefix with the context's (as eval mc does)
        context = "Question: " + row["goal"] + "\nAnswer:"
        ctx = tok(context)
        seqs, firsts = [], []
        for ending in (" " + row["sol1"], " " + row["sol2"]):
            ids = tok(context + ending)
            common = 0
            while common < min(len(ctx), len(ids)) and ctx[common] == ids[common]:
                common += 1
            seqs.append(ids)
            firsts.append(min(max(common, 1), max(len(ids), 2) - 1))
        r = client.completions.create(model=model, prompt=seqs, max_tokens=0, echo=True, logprobs=0)
        sums = [sum(c.logprobs.token_logprobs[f:]) for c, f in zip(sorted(r.choices, key=lambda c: c.index), firsts)]
        picks.append(0 if sums[0] >= sums[1] else 1)
    out = subprocess.run([bin_, "eval", "mc", "--model", os.path.join(data, "models/stories260K/stories260K.bin"),
                          "--tokenizer", os.path.join(data, "models/stories260K/tok512.bin"), "--task", "piqa",
                          "--limit", str(items), "--json"], check=True, capture_output=True, text=True).stdout
    ev = json.loads(out)
    acc = sum(p == l for p, l in zip(picks, labels)) / items
    check(picks == ev["predictions"] and abs(acc - ev["acc"]) < 1e-12,
          "PIQA through the server (echo + logprobs, %d items): the same endings as eval mc (acc %.3f vs %.3f)"
          % (items, acc, ev["acc"]))


async def concurrent_clients(url, model, prompts, expect, n_clients):
    import openai
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)
    stats = {"ok": 0, "wrong": 0, "429": 0}

    async def one(i):
        prompt = prompts[i % len(prompts)]
        for attempt in range(200):  # a real client backs off on 429
            try:
                if i % 2:
                    r = await client.completions.create(model=model, prompt=prompt, max_tokens=16, temperature=0)
                    text, finish = r.choices[0].text, r.choices[0].finish_reason
                else:
                    text, finish = "", None
                    async for ch in await client.completions.create(model=model, prompt=prompt, max_tokens=16,
                                                                    temperature=0, stream=True):
                        text += ch.choices[0].text
                        finish = ch.choices[0].finish_reason or finish
                stats["ok" if (text, finish) == expect[prompt] else "wrong"] += 1
                return
            except openai.RateLimitError:
                stats["429"] += 1
                await asyncio.sleep(0.05)
            except openai.APIConnectionError as e:
                stats.setdefault("connection errors", []).append(("stream" if i % 2 == 0 else "whole") + " " + repr(e.__cause__)[:60])
                return

    await asyncio.gather(*[one(i) for i in range(n_clients)])
    await client.close()
    return stats


def vanishing_stream_clients(srv, count):
    """Streaming clients that read the headers and one chunk, then close the connection."""
    host, port = srv.host_port()
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 400, "stream": True, "temperature": 0.8})
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
        socks.append(s)
    for s in socks:
        s.recv(512)
        s.close()


def wait_idle(srv, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if metric(srv, "hpcinfer:num_requests_running") == 0 and metric(srv, "hpcinfer:num_requests_waiting") == 0:
            return True
        time.sleep(0.1)
    return False


def bad_input_checks(srv, model):
    cases = [
        ("malformed JSON", "{\"prompt\": ", 400, None),
        ("a body that is not an object", "[1, 2]", 400, None),
        ("max_tokens of the wrong type", json.dumps({"prompt": "a", "max_tokens": "ten"}), 400, "max_tokens"),
        ("negative max_tokens", json.dumps({"prompt": "a", "max_tokens": -1}), 400, "max_tokens"),
        ("an unknown field", json.dumps({"prompt": "a", "frobnicate": 1}), 400, "frobnicate"),
        ("temperature as a string", json.dumps({"prompt": "a", "temperature": "hot"}), 400, "temperature"),
        ("a token id outside the vocabulary", json.dumps({"prompt": [1, 99999]}), 400, "prompt"),
        ("no prompt", json.dumps({"max_tokens": 3}), 400, "prompt"),
        ("stop of the wrong type", json.dumps({"prompt": "a", "stop": 5}), 400, "stop"),
        ("another model", json.dumps({"prompt": "a", "model": "gpt-9"}), 404, "model"),
        ("a prompt longer than the context", json.dumps({"prompt": [1] * 600}), 413, "prompt"),
        ("chat on a model without a chat template", json.dumps({"messages": [{"role": "user", "content": "hi"}]}),
         400, "messages"),
    ]
    for what, body, status, param in cases:
        path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
        st, j = raw_post(srv, path, body)
        err = j.get("error", {}) if isinstance(j, dict) else {}
        check(st == status and isinstance(err.get("message"), str) and (param is None or err.get("param") == param),
              "bad input, %s: HTTP %d naming %s (got %d, %s)" % (what, status, param, st, err.get("message")))
    st, j = raw_post(srv, "/v1/nothing", "{}")
    check(st == 404 and "error" in j, "an unknown route: 404 in OpenAI's error shape")
    host, port = srv.host_port()
    try:  # 10 MB: refused (413) or the connection closed, never taken in
        c = http.client.HTTPConnection(host, port, timeout=30)
        c.request("POST", "/v1/completions", body=b"{\"prompt\": \"" + b"a" * (10 << 20) + b"\"}",
                  headers={"Content-Type": "application/json"})
        st = c.getresponse().status
    except (ConnectionError, OSError):
        st = "closed"
    check(st in (413, "closed"), "a 10 MB body: 413 or a closed connection (got %s)" % st)
    # A client that sends a streaming request and never reads: the others are served meanwhile.
    s = socket.create_connection((host, port))
    body = json.dumps({"prompt": "Once", "max_tokens": 300, "stream": True})
    s.sendall(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
    st, j = raw_post(srv, "/v1/completions", json.dumps({"prompt": "Lily", "max_tokens": 8}))
    check(st == 200 and j["choices"][0]["finish_reason"] == "length", "a client that never reads does not stop the others")
    check(wait_idle(srv, 30), "... and its request ends without holding a slot")
    s.close()


def case_single(bin_, src, data, tmp):
    import openai
    config = os.path.join(src, "configs", "local_single.yaml")
    prompts = [json.loads(l)["prompt"] for l in open(os.path.join(data, "prompts", "stories8.jsonl")) if l.strip()]
    ref = run_reference(bin_, config, os.path.join(tmp, "run"), prompts, ["generation.max_new_tokens=24"])
    srv = Server(bin_, config, os.path.join(tmp, "srv"), ["batching.batch_size=4", "serve.max_waiting=8"])
    model = json.loads(http_get(srv.url + "/v1/models")[1])["data"][0]["id"]
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)
    check_greedy_equals_run(client, model, ref, 24, "single process")

    p = prompts[0]
    r = client.completions.create(model=model, prompt=p, max_tokens=12, temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    check(len(lp.tokens) == r.usage.completion_tokens == 12 and "".join(lp.tokens) == r.choices[0].text and
          all(len(t) <= 3 and abs(max(t.values()) - x) < 1e-9 for t, x in zip(lp.top_logprobs, lp.token_logprobs)),
          "logprobs: one entry per token, the greedy token is the top one, the tokens spell the text")
    r = client.completions.create(model=model, prompt=p, max_tokens=0, echo=True, logprobs=1)
    lp = r.choices[0].logprobs
    ids = raw_post(srv, "/tokenize", json.dumps({"content": p}))[1]["tokens"]
    check(r.usage.completion_tokens == 0 and r.choices[0].text == p and len(lp.token_logprobs) == len(ids) and
          lp.token_logprobs[0] is None and all(x <= 0 for x in lp.token_logprobs[1:]),
          "echo with max_tokens 0: the prompt's text and one logprob per prompt token after the first")
    r2 = client.completions.create(model=model, prompt=ids, max_tokens=24, temperature=0)
    check(r2.choices[0].text == ref[p][0], "a prompt given as token ids completes like its text")
    a = client.completions.create(model=model, prompt=p, max_tokens=16, temperature=0.9, n=3, seed=7)
    b = client.completions.create(model=model, prompt=p, max_tokens=16, temperature=0.9, n=3, seed=7)
    ta, tb = [c.text for c in a.choices], [c.text for c in b.choices]
    check(ta == tb and len(set(ta)) > 1, "n=3 sampled with a seed: three different choices, the same again next time")
    r = client.completions.create(model=model, prompt=p, max_tokens=40, temperature=0, stop=[" girl"])
    full = ref[p][0]
    check(" girl" in full and r.choices[0].text == full[:full.index(" girl")] and r.choices[0].finish_reason == "stop",
          "a stop string ends the completion before it")
    chunks = list(client.completions.create(model=model, prompt=p, max_tokens=40, temperature=0, stop=[" girl"],
                                            stream=True, stream_options={"include_usage": True}))
    check("".join(c.choices[0].text for c in chunks if c.choices) == r.choices[0].text and
          chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == r.usage.completion_tokens,
          "streamed with a stop string: the same text (nothing of the stop string leaks), usage in the last chunk")

    piqa_check(client, srv, model, bin_, data, 40)
    curl_checks(srv, p, ref[p][0])

    expect = {q: (ref_text, "length") for q, (ref_text, _, _) in
              run_reference(bin_, config, os.path.join(tmp, "run16"), prompts, ["generation.max_new_tokens=16"]).items()}
    stats = asyncio.run(concurrent_clients(srv.url, model, prompts, expect, 64))
    check(stats["ok"] == 64 and stats["wrong"] == 0,
          "64 concurrent clients (half streaming): every response complete and equal to run's (%s)" % stats)
    print("info 64 clients against 4 slots + 8 queue places: %d answers were 429 (timing decides how many)" % stats["429"])
    st, j = raw_post(srv, "/v1/completions", json.dumps({"prompt": "a", "n": 13, "max_tokens": 2}))
    check(st == 400 and j["error"]["param"] == "n",
          "more choices than slots + serve.max_waiting could ever hold: 400 naming n, not 429 (got %d)" % st)
    vanishing_stream_clients(srv, 16)
    check(wait_idle(srv, 20), "16 streaming clients gone mid-stream: no slot and no queue entry left behind")
    check((metric(srv, "hpcinfer:request_failure_total{reason=\"cancelled\"}") or 0) >= 1,
          "... counted as cancelled in /metrics")
    r = client.completions.create(model=model, prompt=p, max_tokens=24, temperature=0)
    check(r.choices[0].text == ref[p][0], "... and the server still answers correctly")
    bad_input_checks(srv, model)

    mt = http_get(srv.url + "/metrics")[1]
    check(all(n in mt for n in ["hpcinfer:num_requests_running", "hpcinfer:num_requests_waiting",
                                "hpcinfer:kv_cache_usage_perc", "hpcinfer:prompt_tokens_total",
                                "hpcinfer:generation_tokens_total", "hpcinfer:time_to_first_token_seconds_bucket",
                                "hpcinfer:time_per_output_token_seconds_count", "hpcinfer:e2e_request_latency_seconds_sum"])
          and metric(srv, "hpcinfer:e2e_request_latency_seconds_count") >= 64,
          "/metrics: Prometheus text with the running/waiting gauges, token counters and latency histograms")

    # SIGTERM while a stream runs: it finishes, new requests are refused, exit 0.
    host, port = srv.host_port()
    c = http.client.HTTPConnection(host, port, timeout=60)
    c.request("POST", "/v1/completions", body=json.dumps({"prompt": p, "max_tokens": 300, "stream": True,
                                                          "temperature": 0.8, "seed": 1}),
              headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    first = resp.readline()
    srv.proc.send_signal(signal.SIGTERM)
    rest = resp.read().decode()
    check(first.startswith(b"data: ") and rest.rstrip().endswith("data: [DONE]"),
          "SIGTERM during a stream: the stream still ends with [DONE]")
    code = srv.proc.wait(timeout=60)
    check(code == 0, "... and the server exits 0 (got %s)" % code)


def case_pipeline(bin_, src, data, tmp, dp, tp=False):
    import openai
    config = os.path.join(src, "configs", "local_tp2pp2_gloo.yaml" if tp else "local_pp2_gloo.yaml")
    prompts = [json.loads(l)["prompt"] for l in open(os.path.join(data, "prompts", "stories8.jsonl")) if l.strip()][:4]
    ref = run_reference(bin_, os.path.join(src, "configs", "local_single.yaml"), os.path.join(tmp, "run"), prompts,
                        ["generation.max_new_tokens=24"])
    sets = ["batching.batch_size=4", "batching.micro_batches=2"]
    if dp:
        sets += ["world.dp=2", "world.pp=1", "batching.micro_batches=1"]
    srv = Server(bin_, config, os.path.join(tmp, "srv"), sets, ranks=4 if tp else 2)
    label = "dp=2 replicas" if dp else "tp=2 x pp=2 over gloo" if tp else "pp=2 over gloo"
    model = json.loads(http_get(srv.url + "/v1/models")[1])["data"][0]["id"]
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)
    check_greedy_equals_run(client, model, ref, 24, label)
    expect = {q: (t, "length") for q, (t, _, _) in
              run_reference(bin_, os.path.join(src, "configs", "local_single.yaml"), os.path.join(tmp, "run16"),
                            prompts, ["generation.max_new_tokens=16"]).items()}
    stats = asyncio.run(concurrent_clients(srv.url, model, prompts, expect, 16))
    check(stats["ok"] == 16, "%s: 16 concurrent clients all complete and correct (%s)" % (label, stats))
    if dp:
        r0 = metric(srv, "hpcinfer:replica_requests_total{replica=\"0\"}") or 0
        r1 = metric(srv, "hpcinfer:replica_requests_total{replica=\"1\"}") or 0
        check(r0 > 0 and r1 > 0, "dp=2: the front sent requests to both replicas (%d and %d)" % (r0, r1))
    code = srv.stop()
    check(code == 0, "%s: SIGTERM to the launcher stops every rank, exit 0 (got %s)" % (label, code))


def case_chat(bin_, src, tmp):
    import openai
    model_path = os.path.join(src, "models", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(model_path):
        skip("no " + model_path + " (bash scripts/fetch_smollm2.sh fetches it)")
    config = os.path.join(src, "configs", "smollm2_pp2_gloo.yaml")
    sets = ["world.pp=1", "model.path=" + model_path]
    prompts = ["What is the capital of France?", "Name three colours."]
    ref = run_reference(bin_, config, os.path.join(tmp, "run"), prompts,
                        sets + ["generation.max_new_tokens=24", "inputs.chat=true"])
    srv = Server(bin_, config, os.path.join(tmp, "srv"), sets)
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)
    model = client.models.list().data[0].id
    same = 0
    for p in prompts:
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": p}], max_tokens=24,
                                           temperature=0)
        same += r.choices[0].message.content == ref[p][0] and r.choices[0].message.role == "assistant"
    check(same == len(prompts), "chat completions equal hpcinfer run with inputs.chat (%d/%d)" % (same, len(prompts)))
    chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompts[0]}],
                                                 max_tokens=24, temperature=0, stream=True, logprobs=True,
                                                 top_logprobs=2))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    n_lp = sum(len(c.choices[0].logprobs.content) for c in chunks if c.choices and c.choices[0].logprobs)
    check(text == ref[prompts[0]][0] and chunks[0].choices[0].delta.role == "assistant" and n_lp == ref[prompts[0]][1],
          "streamed chat: the same text, the role first, one logprob entry per token")
    check(srv.stop() == 0, "chat server: SIGTERM, exit 0")


def case_lm_eval(bin_, src, data, tmp):
    import shutil
    lm_eval = os.environ.get("LM_EVAL") or shutil.which("lm_eval")
    if not lm_eval or not os.path.exists(lm_eval):
        skip("lm-evaluation-harness not found (set LM_EVAL=/path/to/lm_eval; see this script's doc for the venv)")
    items = 40
    piqa = os.path.join(data, "eval", "piqa")
    rows = [json.loads(l) for l in open(os.path.join(piqa, "valid.jsonl"))][:items]
    labels = [int(l) for l in open(os.path.join(piqa, "valid-labels.lst"))][:items]
    with open(os.path.join(tmp, "piqa.jsonl"), "w") as f:
        for r, l in zip(rows, labels):
            f.write(json.dumps(dict(r, label=l)) + "\n")
    os.makedirs(os.path.join(tmp, "tasks"))
    with open(os.path.join(tmp, "tasks", "piqa_local.yaml"), "w") as f:  # lm-eval's own piqa prompt, local data
        f.write("task: piqa_local\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    validation: %s\n"
                "output_type: multiple_choice\nvalidation_split: validation\n"
                "doc_to_text: \"Question: {{goal}}\\nAnswer:\"\ndoc_to_target: label\n"
                "doc_to_choice: \"{{[sol1, sol2]}}\"\nmetric_list:\n  - metric: acc\n" % os.path.join(tmp, "piqa.jsonl"))
    srv = Server(bin_, os.path.join(src, "configs", "local_single.yaml"), os.path.join(tmp, "srv"))
    model = json.loads(http_get(srv.url + "/v1/models")[1])["data"][0]["id"]
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    r = subprocess.run([lm_eval, "--model", "local-completions", "--model_args",
                        "model=%s,base_url=%s/v1/completions,tokenizer_backend=remote,tokenized_requests=True,"
                        "num_concurrent=4,max_retries=1" % (model, srv.url),
                        "--include_path", os.path.join(tmp, "tasks"), "--tasks", "piqa_local", "--log_samples",
                        "--output_path", os.path.join(tmp, "lm_out")], capture_output=True, text=True, env=env)
    if not check(r.returncode == 0, "lm_eval ran offline against the server"):
        print(r.stdout[-2000:] + r.stderr[-3000:])
        return
    samples = sorted((json.loads(l) for f in glob.glob(os.path.join(tmp, "lm_out", "*", "samples_piqa_local_*.jsonl"))
                      for l in open(f)), key=lambda x: x["doc_id"])
    picks = [max(range(2), key=lambda i: float(x["filtered_resps"][i][0])) for x in samples]
    ev = json.loads(subprocess.run([bin_, "eval", "mc", "--model", os.path.join(data, "models/stories260K/stories260K.bin"),
                                    "--tokenizer", os.path.join(data, "models/stories260K/tok512.bin"), "--task",
                                    "piqa", "--limit", str(items), "--json"], check=True, capture_output=True,
                                   text=True).stdout)
    check(picks == ev["predictions"], "lm-eval's PIQA choices through the server equal eval mc's (%d items, acc %.3f)"
          % (len(picks), ev["acc"]))
    check(srv.stop() == 0, "lm_eval server: SIGTERM, exit 0")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    bin_, src, case = sys.argv[1:]
    data = os.path.abspath(os.path.join(src, "..", "shared", "data"))
    if not os.path.isdir(os.path.join(data, "models", "stories260K")):
        skip("no " + data + "/models/stories260K")
    try:
        import openai  # noqa: F401
    except ImportError:
        skip("the openai package is not importable by " + sys.executable + " (scripts/setup_serve_test.sh installs it)")
    os.chdir(src)
    with tempfile.TemporaryDirectory(prefix="hpcinfer-serve-") as tmp:
        try:
            if case == "single":
                case_single(bin_, src, data, tmp)
            elif case in ("pipeline", "replicas", "tensor"):
                case_pipeline(bin_, src, data, tmp, case == "replicas", case == "tensor")
            elif case == "chat":
                case_chat(bin_, src, tmp)
            elif case == "lm_eval":
                case_lm_eval(bin_, src, data, tmp)
            else:
                print("unknown case " + case)
                return 2
        except Exception as e:  # a crash of the test itself, or of the server it talks to
            check(False, "%s: %s: %s" % (case, type(e).__name__, e))
            for f in os.listdir(tmp):
                if f.endswith(".log"):
                    print("---- " + f + "\n" + open(os.path.join(tmp, f)).read()[-3000:])
    print("%s: %s" % (case, "FAILED: " + "; ".join(FAILS) if FAILS else "passed"))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
