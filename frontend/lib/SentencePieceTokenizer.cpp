//===- SentencePieceTokenizer.cpp - SentencePiece .model files -------------===//
//
// tokenizer.model (Llama-2, Mistral, TinyLlama) and llama2.c's tok*.model are
// SentencePiece ModelProtos: normalisation, the dummy prefix and BPE/unigram
// segmentation are the library's (Debian's libsentencepiece), so encoding is
// exactly SentencePiece's. Decoding goes piece by piece, as streaming output
// needs: "▁" is a space, <0xNN> byte pieces are their byte, control pieces
// print nothing, and the first piece after BOS loses its leading space, as
// SentencePiece's own decoder and llama2.c's run.c do.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/Tokenizer.h"

#include "llvm/Support/FileSystem.h"

#include <sentencepiece_processor.h>

using namespace mlir::attnedit;

namespace {

class SentencePieceTokenizer : public Tokenizer {
public:
  std::vector<int32_t> encode(llvm::StringRef text) const override {
    std::vector<int> ids;
    if (!processor.Encode(absl::string_view(text.data(), text.size()), &ids).ok())
      return {};
    return std::vector<int32_t>(ids.begin(), ids.end());
  }

  std::string decodeToken(int32_t prev, int32_t id) const override {
    if (id < 0 || id >= processor.GetPieceSize() || processor.IsControl(id))
      return std::string();
    llvm::StringRef piece = processor.IdToPiece(id);
    std::optional<uint8_t> byte = processor.IsByte(id) ? parseBytePiece(piece) : std::nullopt;
    if (byte)
      return std::string(1, static_cast<char>(*byte));
    if (processor.IsUnknown(id))
      return " \xE2\x81\x87 "; // " ⁇ ", SentencePiece's rendering of <unk>
    std::string text;
    for (size_t at = 0; at < piece.size();) {
      if (piece.substr(at).starts_with("\xE2\x96\x81")) { // ▁
        text += ' ';
        at += 3;
      } else {
        text += piece[at++];
      }
    }
    if ((prev < 0 || prev == processor.bos_id()) && llvm::StringRef(text).starts_with(" "))
      text.erase(0, 1);
    return text;
  }

  int64_t vocabSize() const override { return processor.GetPieceSize(); }
  std::optional<int32_t> bosId() const override { return idOrNone(processor.bos_id()); }
  std::optional<int32_t> eosId() const override { return idOrNone(processor.eos_id()); }

  sentencepiece::SentencePieceProcessor processor;

private:
  static std::optional<int32_t> idOrNone(int id) {
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
  }
};

} // namespace

llvm::Expected<std::unique_ptr<Tokenizer>>
mlir::attnedit::loadSentencePieceTokenizer(llvm::StringRef path) {
  auto tok = std::make_unique<SentencePieceTokenizer>();
  if (!llvm::sys::fs::exists(path))
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: no such file",
                                   path.str().c_str());
  sentencepiece::util::Status status = tok->processor.Load(path.str());
  if (!status.ok())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "%s: not a SentencePiece model: %s", path.str().c_str(),
                                   status.ToString().c_str());
  return std::unique_ptr<Tokenizer>(std::move(tok));
}
