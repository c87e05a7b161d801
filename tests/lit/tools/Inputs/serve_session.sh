#!/bin/bash
# Starts `attnedit-run serve MODEL` on a free port, runs a client session
# with curl against it, prints what FileCheck checks, and stops the server.
#   serve_session.sh ATTNEDIT_RUN MODEL WORKDIR
set -u
run=$1 model=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
"$run" serve "$model" --port 0 --port-file "$work/port" --model-name stories \
  >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "server did not start"; cat "$work/server.log"; exit 1; }
url=http://127.0.0.1:$(cat "$work/port")
post() { curl -s -w ' HTTP %{http_code}\n' "$url$1" -H 'Content-Type: application/json' -d "$2"; }

echo "== health"; curl -s -w ' HTTP %{http_code}\n' "$url/health"
echo "== models"; curl -s "$url/v1/models"; echo
echo "== completion"
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}'
echo "== completion stream"
curl -sN "$url/v1/completions" -d '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 3, "temperature": 0, "stream": true}'
echo "== chat"
post /v1/chat/completions '{"model": "stories", "messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 5, "temperature": 0}'
echo "== chat stream"
curl -sN "$url/v1/chat/completions" -d '{"model": "stories", "messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 2, "temperature": 0, "stream": true}'
echo "== stop"
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "stop": ["Lily"]}'
echo "== concurrent"
for i in 1 2 3 4 5 6; do
  curl -s "$url/v1/completions" -d "{\"model\": \"stories\", \"prompt\": \"Once upon a time\", \"max_tokens\": $((8 + i)), \"temperature\": 0}" >"$work/c$i.json" &
done
wait $(jobs -p | grep -v "^$server\$") 2>/dev/null
for i in 1 2 3 4 5 6; do sed -e 's/.*"text":"\([^"]*\)".*/\1/' "$work/c$i.json"; echo; done
echo "== burst"
python3 "$(dirname "$0")/serve_burst.py" "$(cat "$work/port")" 64
echo "== errors"
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 2'
post /v1/completions '{"model": "gpt-4", "prompt": "x"}'
post /v1/completions "{\"model\": \"stories\", \"prompt\": \"$(printf 'a b %.0s' $(seq 400))\"}"
post /v1/completions '{"model": "stories", "prompt": "x", "temperature": 7}'
post /v1/completions '{"model": "stories"}'
post /v1/chat/completions '{"model": "stories", "messages": []}'
curl -s -w ' HTTP %{http_code}\n' "$url/v1/nothing"
echo "== still serving"
post /v1/completions '{"model": "stories", "prompt": [1, 403, 407, 261, 378], "max_tokens": 3, "temperature": 0}'
echo "== metrics"
curl -s "$url/metrics" | grep -E '^attnedit_(requests_total|request_errors_total|generation_tokens_total|kv_blocks_in_use) '
echo "== sampling"
for i in 1 2 3 4; do
  curl -s "$url/v1/completions" -d '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 30, "temperature": 1.5}' | sed -e 's/.*"text":"\([^"]*\)".*/\1/'; echo
done | sort -u | wc -l | sed -e 's/^/distinct unseeded: /'
for i in 1 2; do
  curl -s "$url/v1/completions" -d '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 30, "temperature": 1.5, "seed": 5}' | sed -e 's/.*"text":"\([^"]*\)".*/\1/'; echo
done | sort -u | wc -l | sed -e 's/^/distinct seeded: /'
echo "== unsupported"
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 2, "logprobs": 5}'
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 2, "echo": true}'
post /v1/chat/completions '{"model": "stories", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": -1}'
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 9223372036854775807}'
post /v1/chat/completions '{"model": "stories", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "temperature": 0, "logprobs": false, "presence_penalty": 0, "response_format": {"type": "text"}, "user": "u1"}' | sed -e 's/.*"finish_reason":"\([a-z]*\)".*HTTP/\1 HTTP/'
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 2, "logprobs": 0}'
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 0}'
echo "== vllm fields"
post /v1/completions '{"model": "stories", "prompt": [[1, 403, 407, 261, 378]], "max_tokens": 12, "temperature": 1.5, "top_k": -1, "min_p": 1, "seed": -1}'
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 360, "temperature": 0}' | sed -e 's/.*"finish_reason":"\([a-z]*\)".*"completion_tokens":\([0-9]*\).*/\1 \2/'
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 360, "temperature": 0, "ignore_eos": true}' | sed -e 's/.*"finish_reason":"\([a-z]*\)".*"completion_tokens":\([0-9]*\).*/\1 \2/'
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 360, "temperature": 0, "min_tokens": 350}' | sed -e 's/.*"finish_reason":"\([a-z]*\)".*"completion_tokens":\([0-9]*\).*/\1 \2/'
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 360, "temperature": 0, "min_tokens": 100}' | sed -e 's/.*"finish_reason":"\([a-z]*\)".*"completion_tokens":\([0-9]*\).*/\1 \2/'
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "ignore_eos": true, "stop_token_ids": [426]}' | sed -e 's/.*"finish_reason":"\([a-z]*\)".*"completion_tokens":\([0-9]*\).*/\1 \2/'
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "stop_token_ids": [426]}'
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "stop": ["ttle", "Lily"], "include_stop_str_in_output": true}'
post /v1/completions '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "stop": "Lily", "min_tokens": 10}'
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 5, "min_tokens": 6}'
curl -sN "$url/v1/completions" -d '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "stop": "ttle", "stream": true}' | grep -o '"text":"[^"]*"' | tr '\n' ' '; echo
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 5, "stop_token_ids": [512]}'
echo "== chat forms"
post /v1/chat/completions '{"model": "stories", "messages": [{"role": "wizard", "content": "hi"}]}'
post /v1/chat/completions '{"model": "stories", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}'
post /v1/chat/completions '{"model": "stories", "messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 5, "temperature": 0}' | sed -e 's/.*"content":"\([^"]*\)".*/string: \1/'
post /v1/chat/completions '{"model": "stories", "messages": [{"role": "user", "content": [{"type": "text", "text": "Tell me "}, {"type": "text", "text": "a story"}]}], "max_tokens": 5, "temperature": 0}' | sed -e 's/.*"content":"\([^"]*\)".*/parts: \1/'
post /v1/chat/completions '{"model": "stories", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9, "max_completion_tokens": 2, "temperature": 0}' | sed -e 's/.*"completion_tokens":\([0-9]*\).*/completion_tokens: \1/'
echo "== stream usage"
curl -sN "$url/v1/completions" -d '{"model": "stories", "prompt": "Once upon a time", "max_tokens": 2, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}'
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 2, "stream_options": {"include_usage": true}}'
post /v1/completions '{"model": "stories", "prompt": "x", "max_tokens": 2, "seed": 1.5}'
echo "== large body"
curl -s -w ' HTTP %{http_code}\n' "$url/v1/completions" -d "{\"model\": \"stories\", \"prompt\": \"$(printf 'a b %.0s' $(seq 3000))\"}"
echo "== busy port"
timeout 60 "$run" serve "$model" --port "$(cat "$work/port")" 2>&1 | grep -E "error"
echo "exit ${PIPESTATUS[0]}"
echo "== capped cache"
# 8 blocks of 16 tokens: each request below needs 5, so they run one by
# one instead of failing once the cache fills; one needing 13 is refused.
"$run" serve "$model" --port 0 --port-file "$work/port8" --kv-blocks 8 >"$work/server8.log" 2>&1 &
server8=$!
trap 'kill $server $server8 2>/dev/null; wait $server $server8 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$work/port8" ] && break; sleep 0.1; done
url8=http://127.0.0.1:$(cat "$work/port8")
for i in 1 2 3 4; do
  curl -s "$url8/v1/completions" -d '{"model": "stories260K.bin", "prompt": "Once upon a time", "max_tokens": 70, "temperature": 0}' >"$work/k$i.json" &
done
wait $(jobs -p | grep -v -e "^$server\$" -e "^$server8\$") 2>/dev/null
for i in 1 2 3 4; do sed -e 's/.*"finish_reason":"\([a-z]*\)".*"completion_tokens":\([0-9]*\).*/\1 \2/' "$work/k$i.json"; echo; done
curl -s -w ' HTTP %{http_code}\n' "$url8/v1/completions" -d '{"model": "stories260K.bin", "prompt": "Once upon a time", "max_tokens": 200}'
# No max_tokens: chat's default (the context) is capped to what the cache holds.
curl -s "$url8/v1/chat/completions" -H 'Content-Type: application/json' -d '{"model": "stories260K.bin", "messages": [{"role": "user", "content": "Once upon a time"}], "temperature": 0}' | sed -e 's/.*"finish_reason":"\([a-z]*\)".*"completion_tokens":\([0-9]*\).*/chat default: \1 \2/'; echo
