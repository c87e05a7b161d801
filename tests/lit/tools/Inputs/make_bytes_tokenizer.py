"""Writes DIR/tokenizer.json, a byte-level BPE tokenizer of VOCAB ids (the
256 bytes, then unused fillers; no merges), and DIR/tokenizer_config.json
with a ChatML chat template. Each ID:CONTENT[:special] argument makes id ID
an added token spelled CONTENT, special or not.

usage: make_bytes_tokenizer.py DIR VOCAB [ID:CONTENT[:special] ...]
"""
import json
import sys

directory, vocab_size = sys.argv[1], int(sys.argv[2])
added = []
for arg in sys.argv[3:]:
    parts = arg.split(":")
    added.append({"id": int(parts[0]), "content": parts[1], "single_word": False,
                  "lstrip": False, "rstrip": False, "normalized": False,
                  "special": parts[2:] == ["special"]})
# GPT-2's byte-to-unicode table: printable bytes stand for themselves.
printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
chars, extra = {}, 0
for b in range(256):
    if b in printable:
        chars[b] = chr(b)
    else:
        chars[b] = chr(256 + extra)
        extra += 1
vocab = {chars[b]: b for b in range(256)}
for i in range(256, vocab_size):
    vocab["<filler%d>" % i] = i
for token in added:
    del vocab["<filler%d>" % token["id"]]
    vocab[token["content"]] = token["id"]
tokenizer = {
    "version": "1.0",
    "added_tokens": added,
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                      "use_regex": True},
    "post_processor": None,
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None,
              "continuing_subword_prefix": None, "end_of_word_suffix": None,
              "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": []},
}
json.dump(tokenizer, open(directory + "/tokenizer.json", "w"))
json.dump({"chat_template": "{{ '<|im_start|>' + message['role'] + '\\n' }}",
           "add_bos_token": False}, open(directory + "/tokenizer_config.json", "w"))
