"""Starts `attnedit-run serve`, sends it requests read from stdin, prints
what FileCheck checks, and stops it.

usage: serve_client.py WORKDIR -- ATTNEDIT_RUN serve MODEL [OPTIONS...]
(--port 0 --port-file are added). Each stdin line is one request:
  GET PATH | POST PATH JSON     a JSON answer is printed as received; a
                                stream (SSE) as its events' text joined,
                                its last finish_reason and usage
  POST-CHUNKED PATH JSON        the body sent with Transfer-Encoding: chunked
                                (in JSON, @xN@ stands for N x's)
  RAW PYTHON_BYTES_EXPRESSION   (b'...' + b'x' * 9000) sent as is on a new
                                connection; prints the status line and body
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

def start_server(work, command):
    """Starts `command` on a free port; returns the process and the port."""
    os.makedirs(work, exist_ok=True)
    # A stale port, as an earlier server left it: the server replaces it
    # (and removes it when it stops, checked after it has).
    port_file = os.path.join(work, "port")
    with open(port_file, "w") as stale:
        stale.write("1\n")
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen(command + ["--port", "0", "--port-file", port_file],
                              stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        if os.path.exists(port_file) and open(port_file).read().strip():
            port = int(open(port_file).read())
            if port != 1:
                return server, port
        if server.poll() is not None:
            break
        time.sleep(0.1)
    server.kill()
    sys.exit("the server did not start: " + open(os.path.join(work, "server.log")).read())


def summarize_stream(body, show_text=True):
    """The events' text joined (or, show_text False, its length), the last
    finish_reason, usage, errors and [DONE]."""
    text, finish, usage, other = [], None, None, []
    for event in body.split("\n\n"):
        if not event.startswith("data: "):
            continue
        data = event[len("data: "):]
        if data == "[DONE]":
            other.append("[DONE]")
            continue
        chunk = json.loads(data)
        if "error" in chunk:
            other.append("error: " + chunk["error"]["message"])
            continue
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            text.append(choice.get("text") or choice.get("delta", {}).get("content") or "")
            finish = choice["finish_reason"] or finish
    text = "".join(text)
    return "stream: %s finish=%s usage=%s %s" % (
        json.dumps(text) if show_text else "%d characters" % len(text), finish,
        json.dumps(usage, sort_keys=True), " ".join(other))


def main():
    work = sys.argv[1]
    server, port = start_server(work, sys.argv[sys.argv.index("--") + 1:])
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            method, rest = line.split(" ", 1)
            if method == "RAW":
                with socket.create_connection(("127.0.0.1", port)) as s:
                    # No half-close: cpp-httplib takes it for a client gone
                    # and answers nothing. Send Connection: close.
                    s.sendall(eval(rest, {"__builtins__": {}}))
                    answer = b""
                    while chunk := s.recv(65536):
                        answer += chunk
                head, _, body = answer.decode(errors="replace").partition("\r\n\r\n")
                print(head.split("\r\n")[0], body)
                continue
            path, _, body = rest.partition(" ")
            body = re.sub(r"@x(\d+)@", lambda m: "x" * int(m.group(1)), body).encode()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Content-Type": "application/json"} if body else {}
            if method.endswith("-CHUNKED"):
                method = method[:-len("-CHUNKED")]
                pieces = (body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20))
                conn.request(method, path, body=pieces, headers=headers, encode_chunked=True)
            else:
                conn.request(method, path, body=body or None, headers=headers)
            res = conn.getresponse()
            answer = res.read().decode()
            if res.getheader("Content-Type", "").startswith("text/event-stream"):
                print(summarize_stream(answer))
            else:
                print(answer, "HTTP", res.status)
            conn.close()
    finally:
        server.terminate()
        server.wait()
    if os.path.exists(os.path.join(work, "port")):
        sys.exit("the port file outlived the server")


if __name__ == "__main__":
    main()
