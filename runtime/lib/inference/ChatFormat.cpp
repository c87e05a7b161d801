//===- ChatFormat.cpp - chat messages written as a prompt ------------------===//

#include "attnedit/Runtime/Inference/ChatFormat.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/ModelConfig.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cstring>
#include <ctime>

using namespace mlir;
using namespace mlir::attnedit;

llvm::Expected<ChatFormat> ChatFormat::forTokenizer(llvm::StringRef tokenizerPath) {
  llvm::StringRef dir = llvm::sys::path::parent_path(tokenizerPath);
  std::string config = joinPath(dir, "tokenizer_config.json");
  std::optional<llvm::json::Value> parsed;
  std::optional<std::string> chatTemplate;
  if (llvm::sys::fs::exists(config)) {
    auto json = readConfigJson(config);
    if (!json)
      return json.takeError();
    parsed = std::move(*json);
  }
  const llvm::json::Object *object = parsed ? parsed->getAsObject() : nullptr;
  const llvm::json::Value *field = object ? object->get("chat_template") : nullptr;
  if (auto text = field ? field->getAsString() : std::nullopt)
    chatTemplate = text->str();
  // Several named templates: [{"name", "template"}], "default" the chat's.
  if (const llvm::json::Array *named = field ? field->getAsArray() : nullptr)
    for (const llvm::json::Value &entry : *named)
      if (const llvm::json::Object *e = entry.getAsObject();
          e && e->getString("name") == llvm::StringRef("default") && e->getString("template"))
        chatTemplate = e->getString("template")->str();
  // Newer transformers save the template on its own.
  std::string jinja = joinPath(dir, "chat_template.jinja");
  if (!chatTemplate && llvm::sys::fs::exists(jinja)) {
    auto buffer = readInputFile(jinja, /*isText=*/true);
    if (!buffer)
      return makeError(jinja, "cannot read: " + buffer.getError().message());
    chatTemplate = (*buffer)->getBuffer().str();
  }
  if (!chatTemplate)
    return ChatFormat();
  ChatFormat format = fromTemplate(*chatTemplate);
  // A token is its text, or {"content": text, ...} (an AddedToken).
  for (auto [key, text] :
       {std::pair{"bos_token", &format.bosText}, std::pair{"eos_token", &format.eosText}}) {
    const llvm::json::Value *token = object ? object->get(key) : nullptr;
    const llvm::json::Object *added = token ? token->getAsObject() : nullptr;
    if (auto spelled = added ? added->getString("content")
                             : token ? token->getAsString() : std::nullopt)
      *text = spelled->str();
  }
  return format;
}

ChatFormat ChatFormat::fromTemplate(llvm::StringRef chatTemplate) {
  ChatFormat format;
  if (chatTemplate.contains("<|im_start|>")) {
    format.kind = Kind::ChatML;
    format.reasons = chatTemplate.contains("</think>");
    format.toolResponses = chatTemplate.contains("<tool_response>");
    // A default system message is a string literal holding the whole turn:
    // '<|im_start|>system\nYou are ...<|im_end|>\n' (the newline written
    // as one, or as Jinja's \n escape).
    for (llvm::StringRef open : {"'<|im_start|>system\n", "'<|im_start|>system\\n"}) {
      size_t at = chatTemplate.find(open);
      while (at != llvm::StringRef::npos) {
        llvm::StringRef rest = chatTemplate.drop_front(at + open.size());
        size_t end = rest.find("<|im_end|>");
        llvm::StringRef text = rest.take_front(end);
        if (end != llvm::StringRef::npos && !text.empty() &&
            text.find_first_of("'\"{}+") == llvm::StringRef::npos) {
          format.defaultSystem = text.str();
          return format;
        }
        at = chatTemplate.find(open, at + 1);
      }
    }
  } else if (chatTemplate.contains("<|start_header_id|>")) {
    format.kind = Kind::Llama3;
    if (chatTemplate.contains("Cutting Knowledge Date:")) {
      // The template's fallback date: {%- set date_string = "26 Jul 2024" %}.
      llvm::StringRef fallback = chatTemplate.split("date_string = \"").second.split('"').first;
      format.knowledgeDate = fallback.str();
      if (chatTemplate.contains("strftime_now")) {
        char today[32];
        std::time_t now = std::time(nullptr);
        std::strftime(today, sizeof today, "%d %b %Y", std::localtime(&now));
        format.knowledgeDate = today;
      }
    }
  } else if (chatTemplate.contains("[INST]") && chatTemplate.contains("<<SYS>>")) {
    format.kind = Kind::Llama2;
  } else if (chatTemplate.contains("<|user|>") && chatTemplate.contains("eos_token") &&
             !chatTemplate.contains("<|end|>")) {
    // Phi-3 writes <|user|> too, with its turns ended by <|end|>.
    format.kind = Kind::Zephyr;
  } else {
    format.unknownTemplate = !chatTemplate.trim().empty();
  }
  return format;
}

/// Qwen3's template's reading of an answer: its reasoning (inside <think>)
/// and its text after </think>.
static std::pair<std::string, std::string> splitThinking(llvm::StringRef content) {
  size_t close = content.rfind("</think>");
  if (close == llvm::StringRef::npos)
    return {"", content.str()};
  llvm::StringRef before = content.take_front(content.find("</think>")).rtrim('\n');
  size_t open = before.rfind("<think>");
  llvm::StringRef reasoning =
      open == llvm::StringRef::npos ? before : before.drop_front(open + strlen("<think>"));
  return {reasoning.ltrim('\n').str(),
          content.drop_front(close + strlen("</think>")).ltrim('\n').str()};
}

std::string ChatFormat::render(llvm::ArrayRef<ChatMessage> messages, bool thinking) const {
  std::string text;
  switch (kind) {
  case Kind::ChatML: {
    if (!defaultSystem.empty() && (messages.empty() || messages.front().role != "system"))
      text += "<|im_start|>system\n" + defaultSystem + "<|im_end|>\n";
    // The last question: the last user message that is not a tool's answer.
    size_t lastQuery = messages.empty() ? 0 : messages.size() - 1;
    for (auto [i, m] : llvm::enumerate(messages))
      if (m.role == "user" && !(llvm::StringRef(m.content).starts_with("<tool_response>") &&
                                llvm::StringRef(m.content).ends_with("</tool_response>")))
        lastQuery = i;
    for (auto [i, m] : llvm::enumerate(messages)) {
      std::string content = m.content;
      if (reasons && m.role == "assistant") {
        auto [reasoning, answer] =
            m.reasoning ? std::pair{*m.reasoning, m.content} : splitThinking(m.content);
        // Earlier answers lose their reasoning; one after the last question
        // keeps it in the form the model writes.
        content = answer;
        if (i > lastQuery && (i + 1 == messages.size() || !reasoning.empty()))
          content = "<think>\n" + llvm::StringRef(reasoning).trim('\n').str() +
                    "\n</think>\n\n" + llvm::StringRef(answer).ltrim('\n').str();
      }
      if (toolResponses && m.role == "tool") {
        bool first = i == 0 || messages[i - 1].role != "tool";
        bool last = i + 1 == messages.size() || messages[i + 1].role != "tool";
        text += std::string(first ? "<|im_start|>user" : "") + "\n<tool_response>\n" + content +
                "\n</tool_response>" + (last ? "<|im_end|>\n" : "");
        continue;
      }
      text += "<|im_start|>" + m.role + "\n" + content + "<|im_end|>\n";
    }
    text += "<|im_start|>assistant\n";
    return reasons && !thinking ? text + "<think>\n\n</think>\n\n" : text;
  }
  case Kind::Llama3: {
    // The model's BOS (<|begin_of_text|>) is the prompt's first token.
    llvm::ArrayRef<ChatMessage> turns = messages;
    if (knowledgeDate) {
      std::string system;
      if (!turns.empty() && turns.front().role == "system") {
        system = llvm::StringRef(turns.front().content).trim().str();
        turns = turns.drop_front();
      }
      text += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
              "2023\nToday Date: " +
              *knowledgeDate + "\n\n" + system + "<|eot_id|>";
    }
    for (const ChatMessage &m : turns)
      text += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" +
              llvm::StringRef(m.content).trim().str() + "<|eot_id|>";
    return text + "<|start_header_id|>assistant<|end_header_id|>\n\n";
  }
  case Kind::Llama2: {
    // The system message opens the first turn; each user turn is an
    // [INST] block after BOS, each answer ends in EOS. The first BOS is the
    // model's, the prompt's first token.
    llvm::ArrayRef<ChatMessage> turns = messages;
    std::string system;
    if (!turns.empty() && turns.front().role == "system") {
      system = "<<SYS>>\n" + turns.front().content + "\n<</SYS>>\n\n";
      turns = turns.drop_front();
    }
    for (auto [i, m] : llvm::enumerate(turns)) {
      std::string content = llvm::StringRef((i == 0 ? system : "") + m.content).trim().str();
      if (m.role == "assistant")
        text += " " + content + " " + eosText;
      else
        text += (i == 0 ? "" : bosText) + "[INST] " + content + " [/INST]";
    }
    return text;
  }
  case Kind::Zephyr:
    for (const ChatMessage &m : messages)
      text += "<|" + m.role + "|>\n" + m.content + eosText + "\n";
    return text + "<|assistant|>\n";
  case Kind::Plain:
    break;
  }
  for (const ChatMessage &m : messages)
    text += m.role + ": " + m.content + "\n";
  return text + "assistant:";
}

llvm::StringRef ChatFormat::name() const {
  switch (kind) {
  case Kind::ChatML:
    return "ChatML";
  case Kind::Llama3:
    return "Llama 3";
  case Kind::Llama2:
    return "Llama 2";
  case Kind::Zephyr:
    return "Zephyr";
  case Kind::Plain:
    break;
  }
  return "plain lines";
}
