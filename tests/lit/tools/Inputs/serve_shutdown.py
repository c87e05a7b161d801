"""Sends `attnedit-run serve` signals while requests run, and prints what
each client got, whether new connections are refused, the server's exit
code and its log lines about shutting down.

usage: serve_shutdown.py WORKDIR SIGNALS -- ATTNEDIT_RUN serve MODEL [OPTIONS...]
SIGNALS is how many SIGTERMs to send, 0.2 s apart, once the first of four
requests (two streamed, two not, each of 4000 tokens after [1, 410]) has
streamed a token; the server should run them one at a time (--max-batch 1)
on make_det_llama.py's model named "det" with a long context.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_client import start_server, summarize_stream  # noqa: E402

work, signals = sys.argv[1], int(sys.argv[2])
server, port = start_server(work, sys.argv[sys.argv.index("--") + 1:])
started = threading.Event()
answers = {}


def client(name, stream):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = {"model": "det", "prompt": [1, 410], "max_tokens": 4000,
            "temperature": 0, "stream": stream}
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body))
        res = conn.getresponse()
        if stream:
            pieces = [res.read1()]
            started.set()
            while chunk := res.read1():
                pieces.append(chunk)
            answers[name] = summarize_stream(b"".join(pieces).decode(), show_text=False)
        else:
            answer = json.loads(res.read())
            answers[name] = "HTTP %d %s" % (
                res.status, answer["error"]["code"] if "error" in answer
                else answer["choices"][0]["finish_reason"])
    except (OSError, http.client.HTTPException) as e:
        answers[name] = "failed: " + type(e).__name__


threads = []
for i, stream in enumerate([True, False, True, False]):
    threads.append(threading.Thread(target=client, args=("request %d" % i, stream)))
    threads[-1].start()
    time.sleep(0.05)  # in this order
started.wait(60)
for i in range(signals):
    server.send_signal(signal.SIGTERM)
    time.sleep(0.2)
try:
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    print("new connection: accepted")
except OSError as e:
    print("new connection:", type(e).__name__)
for t in threads:
    t.join()
for name in sorted(answers):
    print(name + ":", answers[name])
try:
    print("exit", server.wait(timeout=60))
except subprocess.TimeoutExpired:
    server.kill()
    print("still running 60 s after the signals")
for line in open(os.path.join(work, "server.log")):
    if any(w in line for w in ("SIGTERM: ", "every request finished", "still running after",
                               "second signal", "server stopped")):
        print(line.rstrip())
