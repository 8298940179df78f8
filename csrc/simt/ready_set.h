// The scheduler's set of ready threads (ids < 1024, CUDA's block limit) as a bitset: the lowest, the
// highest or a uniformly random member in a few word operations, since the scheduler picks one after
// every switch.
#pragma once

#include <cstdint>
#include <random>

namespace lf::emu {

class ReadySet {
 public:
  static constexpr unsigned kMaxThreads = 1024;

  void insert(unsigned id) {
    if (!(words_[id / 64] >> (id % 64) & 1u)) ++count_;
    words_[id / 64] |= uint64_t{1} << (id % 64);
  }
  void erase(unsigned id) {
    if (words_[id / 64] >> (id % 64) & 1u) --count_;
    words_[id / 64] &= ~(uint64_t{1} << (id % 64));
  }
  bool empty() const { return count_ == 0; }

  unsigned lowest() const {
    for (unsigned w = 0; w < kWords; ++w) {
      if (words_[w]) return w * 64 + static_cast<unsigned>(__builtin_ctzll(words_[w]));
    }
    return kMaxThreads;
  }
  unsigned highest() const {
    for (unsigned w = kWords; w-- > 0;) {
      if (words_[w]) return w * 64 + 63 - static_cast<unsigned>(__builtin_clzll(words_[w]));
    }
    return kMaxThreads;
  }
  unsigned random(std::mt19937_64& rng) const {
    unsigned k = static_cast<unsigned>(rng() % count_);  // the k-th member
    for (unsigned w = 0; w < kWords; ++w) {
      const unsigned n = static_cast<unsigned>(__builtin_popcountll(words_[w]));
      if (k >= n) {
        k -= n;
        continue;
      }
      uint64_t bits = words_[w];
      for (; k > 0; --k) bits &= bits - 1;  // drop the k lowest members
      return w * 64 + static_cast<unsigned>(__builtin_ctzll(bits));
    }
    return kMaxThreads;
  }

 private:
  static constexpr unsigned kWords = kMaxThreads / 64;
  uint64_t words_[kWords] = {};
  unsigned count_ = 0;
};

}  // namespace lf::emu
