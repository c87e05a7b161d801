"""Opens N connections at once (a barrier), each POSTs one short completion;
prints how many answered 200 and the failures' kinds.
    serve_burst.py PORT N"""
import collections, http.client, json, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
barrier, results = threading.Barrier(n), []
def one(i):
    barrier.wait()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/v1/completions", json.dumps({"model": "stories", "prompt": "Once", "max_tokens": 2, "temperature": 0}))
        results.append(str(c.getresponse().status))
    except Exception as e:
        results.append(type(e).__name__)
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join("%s x%d" % kv for kv in sorted(collections.Counter(results).items())))
