//===- ChatFormatTest.cpp - chat messages written as a prompt --------------===//
//
// The prompts HF's apply_chat_template(add_generation_prompt=True) gives for
// Qwen2.5's and Qwen3's ChatML templates and Llama 3's (abridged to the
// parts ChatFormat reads, with the literals as the released
// tokenizer_config.json files spell them), Llama 2 chat's and TinyLlama
// chat's (Zephyr's) whole templates (their prompts rendered by
// transformers.js's Jinja, @lenml/tokenizers, as transformers renders them),
// and plain lines without one.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Inference/ChatFormat.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace mlir::attnedit;

namespace {

const std::vector<ChatMessage> kChat = {{"system", "Be brief."}, {"user", "Hi"}};
const std::vector<ChatMessage> kNoSystem = {{"user", "Hi"}};

// Qwen2.5-Instruct: a default system message when the chat has none.
const char *kQwen25 =
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == "
    "'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are "
    "Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n{%- "
    "else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' "
    "+ messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- "
    "'<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}";

// Qwen3: no default system message; literals hold real newlines.
const char *kQwen3 =
    "{%- if tools %}\n    {{- '<|im_start|>system\n' }}\n{%- else %}\n    {%- if "
    "messages[0].role == 'system' %}\n        {{- '<|im_start|>system\n' + "
    "messages[0].content + '<|im_end|>\n' }}\n    {%- endif %}\n{%- endif %}";

const char *kLlama3 = "{% set content = '<|start_header_id|>' + message['role'] + "
                      "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}";

TEST(ChatFormat, Qwen25AddsItsDefaultSystemMessage) {
  ChatFormat f = ChatFormat::fromTemplate(kQwen25);
  EXPECT_EQ(f.name(), "ChatML");
  EXPECT_EQ(f.render(kNoSystem),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(f.render(kChat), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"
                             "<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatFormat, Qwen3HasNone) {
  ChatFormat f = ChatFormat::fromTemplate(kQwen3);
  EXPECT_EQ(f.render(kNoSystem), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

// Qwen3's reasoning and tool parts, as its template reads them.
const char *kQwen3Thinking =
    "{%- if '</think>' in message.content %} ... '\n<tool_response>\n' ... "
    "'<|im_start|>assistant\n' ... '<think>\n\n</think>\n\n'";

TEST(ChatFormat, Qwen3DropsEarlierReasoningAndCanSkipThinking) {
  ChatFormat f = ChatFormat::fromTemplate(kQwen3Thinking);
  EXPECT_TRUE(f.thinks());
  std::vector<ChatMessage> chat = {
      {"user", "a"}, {"assistant", "<think>\nlong reasoning here\n</think>\n\nb"}, {"user", "c"}};
  std::string asked = "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n"
                      "<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(f.render(chat), asked);
  EXPECT_EQ(f.render(chat, /*thinking=*/false), asked + "<think>\n\n</think>\n\n");
  // An answer after the last question keeps its reasoning, in the model's form.
  EXPECT_EQ(f.render({{"user", "a"}, {"assistant", "<think>\nr\n</think>\n\nb"}}),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\nb"
            "<|im_end|>\n<|im_start|>assistant\n");
  // reasoning_content, given apart, in the same places; the content is
  // then the answer as it is.
  EXPECT_EQ(f.render({{"user", "a"}, {"assistant", "b", "r"}}),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\nb"
            "<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(f.render({{"user", "a"}, {"assistant", "b", "r"}, {"user", "c"}}), asked);
  EXPECT_EQ(f.render({{"user", "a"}, {"assistant", "x</think>b", ""}}),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
            "x</think>b<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(f.render({{"user", "a"}, {"assistant", "plain"}}),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nplain"
            "<|im_end|>\n<|im_start|>assistant\n");
  // Tool answers: one user turn of <tool_response> blocks per run of them.
  EXPECT_EQ(f.render({{"user", "a"}, {"assistant", "x"}, {"tool", "r1"}, {"tool", "r2"}}),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nx<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n"
            "</tool_response><|im_end|>\n<|im_start|>assistant\n");
  // A ChatML template without <think> (the abridged Qwen3 above): thinking
  // off changes nothing.
  EXPECT_EQ(ChatFormat::fromTemplate(kQwen3).render(kNoSystem, /*thinking=*/false),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatFormat, Llama3) {
  ChatFormat f = ChatFormat::fromTemplate(kLlama3);
  EXPECT_EQ(f.name(), "Llama 3");
  EXPECT_EQ(f.render(kChat),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>"
            "user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
            "\n\n");
}

// Llama-2-7b-chat-hf's template.
const char *kLlama2 =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% "
    "set system_message = false %}{% endif %}{% for message in loop_messages %}{% if "
    "(message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation "
    "roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == "
    "0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
    "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' "
    "+ content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + "
    "content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

// TinyLlama-1.1B-Chat-v1.0's.
const char *kZephyr =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
    "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ "
    "'<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == "
    "'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif "
    "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif "
    "%}\n{% endfor %}";

const std::vector<ChatMessage> kTurns = {
    {"user", " Hi "}, {"assistant", "Hello."}, {"user", "Again"}};

TEST(ChatFormat, Llama2) {
  ChatFormat f = ChatFormat::fromTemplate(kLlama2);
  EXPECT_EQ(f.name(), "Llama 2");
  // HF's, less the first "<s>": the model's BOS token opens every prompt.
  EXPECT_EQ(f.render(kChat), "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
  EXPECT_EQ(f.render(kTurns), "[INST] Hi [/INST] Hello. </s><s>[INST] Again [/INST]");
}

TEST(ChatFormat, Zephyr) {
  ChatFormat f = ChatFormat::fromTemplate(kZephyr);
  EXPECT_EQ(f.name(), "Zephyr");
  EXPECT_EQ(f.render(kChat), "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n");
  EXPECT_EQ(f.render(kTurns),
            "<|user|>\n Hi </s>\n<|assistant|>\nHello.</s>\n<|user|>\nAgain</s>\n<|assistant|>\n");
}

// Llama 3.1's, abridged: the system turn it always writes.
const char *kLlama31 =
    "{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n{%- "
    "endif %}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{{- \"Cutting "
    "Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + "
    "\"\\n\\n\" }}";

TEST(ChatFormat, Llama31WritesItsSystemTurn) {
  ChatFormat f = ChatFormat::fromTemplate(kLlama31);
  EXPECT_EQ(f.name(), "Llama 3");
  std::string head = "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                     "December 2023\nToday Date: 26 Jul 2024\n\n";
  EXPECT_EQ(f.render(kChat), head + "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>"
                                    "\n\nHi<|eot_id|><|start_header_id|>assistant"
                                    "<|end_header_id|>\n\n");
  EXPECT_EQ(f.render(kNoSystem), head + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
                                        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
                                        "\n\n");
}

TEST(ChatFormat, PlainLinesWithoutARecognisedTemplate) {
  ChatFormat none = ChatFormat::fromTemplate("");
  EXPECT_FALSE(none.unrecognised());
  EXPECT_EQ(none.render(kChat), "system: Be brief.\nuser: Hi\nassistant:");
  // Phi-3's <|user|> turns end in <|end|>, not EOS.
  EXPECT_TRUE(ChatFormat::fromTemplate("{{'<|user|>' + '\n' + message['content'] + '<|end|>'}}"
                                       "{% else %}{{ eos_token }}")
                  .unrecognised());
  // Mistral's [INST] has no <<SYS>> and other spacing.
  ChatFormat other = ChatFormat::fromTemplate("{{ bos_token }}[INST] {{ m }} [/INST]");
  EXPECT_TRUE(other.unrecognised());
  EXPECT_EQ(other.name(), "plain lines");
}

TEST(ChatFormat, ReadsTheTemplateBesideTheTokenizer) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("chat-format", dir));
  std::string tokenizer = (dir + "/tokenizer.json").str();
  auto write = [&](llvm::StringRef name, llvm::StringRef text) {
    std::error_code ec;
    llvm::raw_fd_ostream((dir + "/" + name).str(), ec) << text;
    ASSERT_FALSE(ec);
  };
  auto none = ChatFormat::forTokenizer(tokenizer);
  ASSERT_TRUE(bool(none)) << llvm::toString(none.takeError());
  EXPECT_EQ(none->name(), "plain lines");
  write("chat_template.jinja", kLlama3);
  auto jinja = ChatFormat::forTokenizer(tokenizer);
  ASSERT_TRUE(bool(jinja)) << llvm::toString(jinja.takeError());
  EXPECT_EQ(jinja->name(), "Llama 3");
  write("tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "x"},
                              {"name": "default", "template": "<|im_start|>"}]})");
  auto named = ChatFormat::forTokenizer(tokenizer);
  ASSERT_TRUE(bool(named)) << llvm::toString(named.takeError());
  EXPECT_EQ(named->name(), "ChatML");
  // The template's eos_token is the tokenizer's, text or an AddedToken.
  write("tokenizer_config.json",
        R"({"chat_template": "<|user|>{{ eos_token }}", "eos_token": {"content": "<|e|>"}})");
  auto eos = ChatFormat::forTokenizer(tokenizer);
  ASSERT_TRUE(bool(eos)) << llvm::toString(eos.takeError());
  EXPECT_EQ(eos->render(kNoSystem), "<|user|>\nHi<|e|>\n<|assistant|>\n");
  // ... and so it is beside chat_template.jinja.
  write("chat_template.jinja", "<|user|>{{ eos_token }}");
  write("tokenizer_config.json", R"({"eos_token": "<|e|>"})");
  auto eosJinja = ChatFormat::forTokenizer(tokenizer);
  ASSERT_TRUE(bool(eosJinja)) << llvm::toString(eosJinja.takeError());
  EXPECT_EQ(eosJinja->render(kNoSystem), "<|user|>\nHi<|e|>\n<|assistant|>\n");
  write("tokenizer_config.json", "{");
  auto bad = ChatFormat::forTokenizer(tokenizer);
  ASSERT_FALSE(bool(bad));
  EXPECT_NE(llvm::toString(bad.takeError()).find("tokenizer_config.json: not valid JSON"),
            std::string::npos);
  llvm::sys::fs::remove_directories(dir);
}

} // namespace
