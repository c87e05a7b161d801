//===- ChatFormat.h - chat messages written as a prompt --------*- C++ -*-===//
//
// A chat completion's messages become the prompt the model was tuned on:
// its tokenizer's chat template, recognised by family as llama.cpp does
// (ChatML for Qwen, Llama 3's headers, Llama 2's [INST], Zephyr's <|user|>
// as TinyLlama's chat model uses it), not run: templates are Jinja
// programs, and no Jinja engine is packaged for C++ here. Without a
// template, plain "role: content" lines end in "assistant:".
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_CHATFORMAT_H
#define ATTNEDIT_RUNTIME_INFERENCE_CHATFORMAT_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>

namespace mlir::attnedit {

struct ChatMessage {
  std::string role, content;
  /// An answer's reasoning given apart (`reasoning_content`, as vLLM and
  /// DeepSeek return it), which Qwen3's template writes in <think>; without
  /// it the template splits `content` at </think>.
  std::optional<std::string> reasoning = std::nullopt;
};

class ChatFormat {
public:
  /// The format of the chat template beside `tokenizerPath`: the
  /// `chat_template` of its tokenizer_config.json, else chat_template.jinja
  /// (errors name a file that does not parse).
  static llvm::Expected<ChatFormat> forTokenizer(llvm::StringRef tokenizerPath);
  /// The format a template's text is of.
  static ChatFormat fromTemplate(llvm::StringRef chatTemplate);

  /// The prompt of `messages`, ending where the assistant's answer begins;
  /// `thinking` false asks a model that reasons in <think> (Qwen3) to
  /// answer at once, as its template's enable_thinking does.
  std::string render(llvm::ArrayRef<ChatMessage> messages, bool thinking = true) const;
  /// Whether the template reasons in <think> blocks (Qwen3's).
  bool thinks() const { return reasons; }
  /// "ChatML", "Llama 3", "Llama 2", "Zephyr" or "plain lines".
  llvm::StringRef name() const;
  /// Whether a template was there that is of no family above (rendered as
  /// plain lines).
  bool unrecognised() const { return unknownTemplate; }

private:
  enum class Kind { Plain, ChatML, Llama3, Llama2, Zephyr } kind = Kind::Plain;
  bool unknownTemplate = false;
  /// The system message a ChatML template adds when the chat has none
  /// (Qwen2 and Qwen2.5 do; Qwen3 does not).
  std::string defaultSystem;
  /// Qwen3's template: an answer before the last user message keeps only
  /// its text after </think>, and enable_thinking false opens the answer
  /// with an empty <think> block.
  bool reasons = false;
  /// Qwen2.5's and Qwen3's: tool answers are <tool_response> blocks in one
  /// user turn per run of them.
  bool toolResponses = false;
  /// Llama 3.1 to 3.3: a system turn always opens the chat, headed by the
  /// knowledge cut-off and this date ("26 Jul 2024", or today's for a
  /// template that asks strftime_now, as 3.2's does).
  std::optional<std::string> knowledgeDate;
  /// The tokenizer's bos_token and eos_token as the template writes them
  /// (tokenizer_config.json's, else Llama 2's).
  std::string bosText = "<s>", eosText = "</s>";
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_CHATFORMAT_H
