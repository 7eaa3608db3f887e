#include "dataloader/tokenizer/tokenizer.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <queue>
#include <unordered_map>

#include "core/util/error.h"
#include "dataloader/tokenizer/byte_level.h"

namespace qwen3 {

namespace {

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();

// FNV-1a, 64 bits: for the word cache (words are a few bytes) and the fingerprint.
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull, kFnvPrime = 0x100000001b3ull;
uint64_t fnv1a(std::string_view bytes, uint64_t hash = kFnvOffset) {
  for (const char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= kFnvPrime;
  }
  return hash;
}
uint64_t fnv1a_u32(uint32_t value, uint64_t hash) {
  char bytes[4];
  std::memcpy(bytes, &value, 4);
  return fnv1a(std::string_view(bytes, 4), hash);
}

// Words of up to this many bytes are merged by scanning a rank per adjacent pair (quadratic, but
// fast for the short words nearly all text is made of); longer ones through a priority queue.
constexpr size_t kShortWordBytes = 64;
// Longer words (runs of spaces or symbols, base64) are rare and not worth their cache space.
constexpr size_t kMaxCachedWordBytes = 256;

}  // namespace

// (left id, right id) -> (rank, merged id): open addressing with linear probing over a table at
// most a third full, so a lookup is a multiply and one or two probes.
struct Tokenizer::MergeTable {
  struct Slot {
    uint64_t pair = kEmpty;
    uint32_t rank = 0, merged = 0;
  };
  static constexpr uint64_t kEmpty = std::numeric_limits<uint64_t>::max();

  explicit MergeTable(size_t count) {
    size_t capacity = 16;
    while (capacity < 3 * count)
      capacity *= 2;
    slots.resize(capacity);
    mask = capacity - 1;
    shift = 64 - static_cast<int>(__builtin_ctzll(capacity));
  }
  size_t home(uint64_t pair) const { return (pair * 0x9E3779B97F4A7C15ull) >> shift; }
  static uint64_t key(uint32_t left, uint32_t right) { return (uint64_t{left} << 32) | right; }

  // Later duplicates replace earlier ones, as in Hugging Face's merge map.
  void insert(uint32_t left, uint32_t right, uint32_t rank, uint32_t merged) {
    const uint64_t pair = key(left, right);
    for (size_t i = home(pair);; i = (i + 1) & mask) {
      if (slots[i].pair == kEmpty || slots[i].pair == pair) {
        slots[i] = {pair, rank, merged};
        return;
      }
    }
  }
  const Slot* find(uint32_t left, uint32_t right) const {
    const uint64_t pair = key(left, right);
    for (size_t i = home(pair);; i = (i + 1) & mask) {
      if (slots[i].pair == pair) return &slots[i];
      if (slots[i].pair == kEmpty) return nullptr;
    }
  }

  std::vector<Slot> slots;
  size_t mask = 0;
  int shift = 0;
};

// Words already merged, with their ids: most words of a text have been seen before. Open
// addressing over slots that point into two arenas (the words' bytes and their ids), so a lookup
// allocates nothing. The table doubles while it is small and starts over empty once it holds
// kMaxWords, which bounds its memory.
class Encoder::WordCache {
 public:
  WordCache() : slots_(kInitialSlots) {}

  // The cached ids of `word` (and their count), or nullptr.
  const uint32_t* find(std::string_view word, uint64_t hash, uint32_t& count) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.hash == 0) return nullptr;
      if (slot.hash == hash && slot.word_bytes == word.size() &&
          std::memcmp(words_.data() + slot.word_offset, word.data(), word.size()) == 0) {
        count = slot.id_count;
        return ids_.data() + slot.id_offset;
      }
    }
  }

  void insert(std::string_view word, uint64_t hash, const uint32_t* ids, uint32_t count) {
    if (2 * (used_ + 1) > slots_.size()) {
      if (slots_.size() < kMaxSlots) {
        grow();
      } else {
        std::fill(slots_.begin(), slots_.end(), Slot{});
        words_.clear();
        ids_.clear();
        used_ = 0;
      }
    }
    place({hash, static_cast<uint32_t>(words_.size()), static_cast<uint32_t>(word.size()),
           static_cast<uint32_t>(ids_.size()), count});
    words_.append(word.data(), word.size());
    ids_.insert(ids_.end(), ids, ids + count);
    ++used_;
  }

  // A hash that is never 0, which marks an empty slot.
  static uint64_t hash_of(std::string_view word) { return fnv1a(word) | 1; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t word_offset = 0, word_bytes = 0, id_offset = 0, id_count = 0;
  };
  static constexpr size_t kInitialSlots = size_t{1} << 12;
  static constexpr size_t kMaxSlots = size_t{1} << 20;  // 24 MiB of slots, 512 Ki words

  void place(const Slot& slot) {
    const size_t mask = slots_.size() - 1;
    size_t i = slot.hash & mask;
    while (slots_[i].hash != 0)
      i = (i + 1) & mask;
    slots_[i] = slot;
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& slot : old)
      if (slot.hash != 0) place(slot);
  }

  std::vector<Slot> slots_;
  std::string words_;
  std::vector<uint32_t> ids_;
  size_t used_ = 0;
};

Tokenizer::Tokenizer(const TokenizerDefinition& definition)
    : pattern_(std::make_unique<Qwen2SplitPattern>()) {
  const std::string& source = definition.source;
  const ByteLevelAlphabet alphabet;
  uint32_t largest = 0;
  for (const auto& [token, id] : definition.vocab)
    largest = std::max(largest, id);
  for (const AddedToken& added : definition.added_tokens)
    largest = std::max(largest, added.id);
  QWEN3_CHECK(!definition.vocab.empty(), "{}: the vocabulary is empty", source);
  QWEN3_CHECK(largest < (uint32_t{1} << 31), "{}: token id {} is too large", source, largest);
  token_bytes_.resize(size_t{largest} + 1);
  token_known_.assign(size_t{largest} + 1, 0);

  std::unordered_map<std::string, uint32_t> id_of;  // vocabulary strings, for the merges
  id_of.reserve(definition.vocab.size());
  for (const auto& [token, id] : definition.vocab) {
    QWEN3_CHECK(!token_known_[id], "{}: token id {} is given twice (again for '{}')", source, id,
                token);
    QWEN3_CHECK(!token.empty(), "{}: token id {} is the empty string", source, id);
    QWEN3_CHECK(id_of.emplace(token, id).second, "{}: token '{}' is given twice", source, token);
    token_bytes_[id] = alphabet.to_bytes(token, source);
    token_known_[id] = 1;
  }
  for (unsigned b = 0; b < 256; ++b) {
    const auto found = id_of.find(alphabet.to_token(std::string(1, static_cast<char>(b))));
    QWEN3_CHECK(found != id_of.end(),
                "{}: the vocabulary has no token for byte 0x{:02X}, which byte-level BPE needs for "
                "every byte",
                source, b);
    byte_token_[b] = found->second;
  }

  merges_ = std::make_unique<MergeTable>(definition.merges.size());
  num_merges_ = static_cast<int64_t>(definition.merges.size());
  uint32_t rank = 0;
  for (const auto& [left, right] : definition.merges) {
    const auto left_id = id_of.find(left), right_id = id_of.find(right);
    const auto merged_id = id_of.find(left + right);
    if (left_id == id_of.end() || right_id == id_of.end() || merged_id == id_of.end())
      throw_error(
          fmt::format("{}: merge {} '{} {}' uses or makes '{}', which is not in the "
                      "vocabulary",
                      source, rank + 1, left, right,
                      left_id == id_of.end()    ? left
                      : right_id == id_of.end() ? right
                                                : left + right));
    merges_->insert(left_id->second, right_id->second, rank++, merged_id->second);
  }

  for (const AddedToken& added : definition.added_tokens) {
    QWEN3_CHECK(!added.content.empty(), "{}: added token {} is the empty string", source, added.id);
    const auto in_vocab = id_of.find(alphabet.to_token(added.content));
    // An added token may repeat a vocabulary token, but only under the same id.
    if (in_vocab != id_of.end()) {
      QWEN3_CHECK(in_vocab->second == added.id,
                  "{}: added token '{}' has id {}, but the vocabulary gives it id {}", source,
                  added.content, added.id, in_vocab->second);
    } else {
      QWEN3_CHECK(!token_known_[added.id], "{}: added token '{}' reuses id {}", source,
                  added.content, added.id);
    }
    for (const AddedToken& earlier : added_)
      QWEN3_CHECK(earlier.content != added.content, "{}: added token '{}' is given twice", source,
                  added.content);
    token_bytes_[added.id] = added.content;
    token_known_[added.id] = 1;
    added_.push_back(added);
    if (!added_first_byte_[static_cast<uint8_t>(added.content[0])]) ++added_first_byte_count_;
    added_first_byte_[static_cast<uint8_t>(added.content[0])] = true;
    single_added_first_byte_ = static_cast<uint8_t>(added.content[0]);
  }
  std::stable_sort(added_.begin(), added_.end(), [](const AddedToken& a, const AddedToken& b) {
    return a.content.size() > b.content.size();
  });

  uint64_t hash = kFnvOffset;
  for (uint32_t id = 0; id <= largest; ++id)
    if (token_known_[id]) hash = fnv1a(token_bytes_[id], fnv1a_u32(id, hash));
  for (const auto& [left, right] : definition.merges)
    hash = fnv1a(right, fnv1a(" ", fnv1a(left, hash)));
  // Which ids are added tokens matters too: they are matched before pre-tokenizing.
  for (const AddedToken& added : added_)
    hash = fnv1a(added.content, fnv1a_u32(added.id, fnv1a("added", hash)));
  fingerprint_ = fmt::format("{:016x}", hash);
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::optional<uint32_t> Tokenizer::find_token(std::string_view text) const {
  for (const AddedToken& added : added_)
    if (added.content == text) return added.id;
  for (size_t id = 0; id < token_bytes_.size(); ++id)
    if (token_known_[id] && token_bytes_[id] == text) return static_cast<uint32_t>(id);
  return std::nullopt;
}

const AddedToken* Tokenizer::find_added(std::string_view text, size_t offset,
                                        size_t& position) const {
  if (added_.empty()) return nullptr;
  while (offset < text.size()) {
    if (added_first_byte_count_ == 1) {
      const void* found =
          std::memchr(text.data() + offset, single_added_first_byte_, text.size() - offset);
      if (!found) return nullptr;
      offset = static_cast<size_t>(static_cast<const char*>(found) - text.data());
    } else if (!added_first_byte_[static_cast<uint8_t>(text[offset])]) {
      ++offset;
      continue;
    }
    for (const AddedToken& added : added_) {
      if (text.compare(offset, added.content.size(), added.content) == 0) {
        position = offset;
        return &added;
      }
    }
    ++offset;
  }
  return nullptr;
}

std::string Tokenizer::decode(const uint32_t* ids, size_t count) const {
  std::string text;
  for (size_t i = 0; i < count; ++i) {
    QWEN3_CHECK(ids[i] < token_known_.size() && token_known_[ids[i]],
                "cannot decode token id {} (at {}): it is not in the tokenizer's vocabulary of {}",
                ids[i], i, token_known_.size());
    text += token_bytes_[ids[i]];
  }
  return text;
}

std::vector<uint32_t> Tokenizer::encode(std::string_view text) const {
  Encoder encoder(*this);
  std::vector<uint32_t> ids;
  encoder.encode(text, ids);
  return ids;
}

Encoder::Encoder(const Tokenizer& tokenizer)
    : tokenizer_(tokenizer),
      pre_tokenizer_(*tokenizer.pattern_),
      cache_(std::make_unique<WordCache>()) {}

Encoder::~Encoder() = default;

void Encoder::encode(std::string_view text, std::vector<uint32_t>& ids) {
  const size_t invalid = find_invalid_utf8(text);
  QWEN3_CHECK(invalid == std::string_view::npos,
              "cannot tokenize text that is not UTF-8: byte 0x{:02X} at offset {} does not "
              "belong to a well-formed UTF-8 sequence",
              static_cast<uint8_t>(text[invalid]), invalid);
  size_t offset = 0;
  for (;;) {
    size_t position = text.size();
    const AddedToken* added = tokenizer_.find_added(text, offset, position);
    encode_ordinary(text.substr(offset, position - offset), ids);
    if (!added) return;
    ids.push_back(added->id);
    offset = position + added->content.size();
  }
}

void Encoder::encode_ordinary(std::string_view text, std::vector<uint32_t>& ids) {
  if (text.empty()) return;
  const std::string_view normalized = pre_tokenizer_.split(text, pieces_);
  for (const auto& [offset, length] : pieces_)
    encode_word(normalized.substr(offset, length), ids);
}

void Encoder::encode_word(std::string_view word, std::vector<uint32_t>& ids) {
  if (word.size() == 1) {
    ids.push_back(tokenizer_.byte_token_[static_cast<uint8_t>(word[0])]);
    return;
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  const uint64_t hash = cacheable ? WordCache::hash_of(word) : 0;
  if (cacheable) {
    uint32_t count = 0;
    if (const uint32_t* cached = cache_->find(word, hash, count)) {
      ids.insert(ids.end(), cached, cached + count);
      return;
    }
  }
  symbols_.resize(word.size());
  for (size_t i = 0; i < word.size(); ++i)
    symbols_[i] = tokenizer_.byte_token_[static_cast<uint8_t>(word[i])];
  if (word.size() <= kShortWordBytes)
    merge_short();
  else
    merge_long();
  if (cacheable)
    cache_->insert(word, hash, symbols_.data(), static_cast<uint32_t>(symbols_.size()));
  ids.insert(ids.end(), symbols_.begin(), symbols_.end());
}

// Repeatedly merges the adjacent pair of lowest rank, the leftmost of equal ones, as Hugging Face
// does. ranks_[i] and merged_[i] describe the pair (symbols_[i], symbols_[i + 1]); a merge
// changes only its neighbours' entries.
void Encoder::merge_short() {
  const Tokenizer::MergeTable& table = *tokenizer_.merges_;
  const auto rank_pair = [&](size_t i) {
    const auto* slot = table.find(symbols_[i], symbols_[i + 1]);
    ranks_[i] = slot ? slot->rank : kNoRank;
    merged_[i] = slot ? slot->merged : 0;
  };
  ranks_.resize(symbols_.size() - 1);
  merged_.resize(symbols_.size() - 1);
  for (size_t i = 0; i + 1 < symbols_.size(); ++i)
    rank_pair(i);
  while (!ranks_.empty()) {
    const size_t best =
        static_cast<size_t>(std::min_element(ranks_.begin(), ranks_.end()) - ranks_.begin());
    if (ranks_[best] == kNoRank) break;
    symbols_[best] = merged_[best];
    symbols_.erase(symbols_.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    ranks_.erase(ranks_.begin() + static_cast<std::ptrdiff_t>(best));
    merged_.erase(merged_.begin() + static_cast<std::ptrdiff_t>(best));
    if (best > 0) rank_pair(best - 1);
    if (best < ranks_.size()) rank_pair(best);
  }
}

// The same merges for long words in O(n log n): symbols in a linked list, candidate pairs in a
// priority queue by (rank, position). A candidate records the ids it was made from; one whose
// symbols have changed since is stale and skipped (a symbol only ever grows, so its id never
// returns to an earlier value).
void Encoder::merge_long() {
  const Tokenizer::MergeTable& table = *tokenizer_.merges_;
  struct Candidate {
    uint32_t rank, position, left, right, merged;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : position > other.position;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto n = static_cast<int32_t>(symbols_.size());
  next_.resize(static_cast<size_t>(n));
  previous_.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    next_[i] = i + 1 < n ? i + 1 : -1;
    previous_[i] = i - 1;
  }
  const auto push = [&](int32_t left) {
    if (left < 0 || next_[left] < 0) return;
    const uint32_t a = symbols_[left], b = symbols_[next_[left]];
    if (const auto* slot = table.find(a, b))
      queue.push({slot->rank, static_cast<uint32_t>(left), a, b, slot->merged});
  };
  for (int32_t i = 0; i + 1 < n; ++i)
    push(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const auto left = static_cast<int32_t>(c.position);
    const int32_t right = next_[left];
    if (right < 0 || symbols_[left] != c.left || symbols_[right] != c.right) continue;
    symbols_[left] = c.merged;
    next_[left] = next_[right];
    if (next_[right] >= 0) previous_[next_[right]] = left;
    next_[right] = -1;
    push(previous_[left]);
    push(left);
  }
  size_t kept = 0;
  for (int32_t i = 0; i >= 0; i = next_[i])
    symbols_[kept++] = symbols_[i];
  symbols_.resize(kept);
}

}  // namespace qwen3
