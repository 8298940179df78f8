// Host semantics of cp.async (PTX `cp.async.ca/cg.shared.global`, `cp.async.commit_group`,
// `cp.async.wait_group N`) for one CUDA thread, without fibers: the emulator keeps one CpAsyncQueue
// per emulated thread (copies are per-thread state in PTX too).
//
// Emulated conservatively (see docs/spec/simt_emulation.md): issuing a copy POISONS its
// destination at once (0xFF bytes: NaN as fp32, bf16 and fp16), and the copy itself happens at the
// wait that retires its group, reading the source as it is then. A kernel that reads a destination
// before waiting for it sees NaNs and fails its test instead of passing by luck.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "simt/emu_error.h"

namespace lf::emu {

class CpAsyncQueue {
 public:
  static constexpr unsigned char kPoison = 0xff;

  // cp.async with cp-size `cp_size` (4, 8 or 16) and src-size `src_size` (0..cp_size): bytes
  // [src_size, cp_size) of the destination become zeros. Both addresses must be aligned to cp_size
  // (PTX requires naturally aligned operands; 16 is the case kernels use), the source too when
  // src_size is 0 (PTX does not exempt it: kernels pass an in-bounds address for masked rows). The
  // copy joins the thread's open group, which the next commit() closes.
  void issue(void* dst, const void* src, int cp_size, int src_size) {
    if (cp_size != 4 && cp_size != 8 && cp_size != 16)
      throw DialectError("cp.async: cp-size must be 4, 8 or 16, got " + std::to_string(cp_size));
    if (src_size < 0 || src_size > cp_size)
      throw DialectError("cp.async: src-size " + std::to_string(src_size) + " outside [0, cp-size " +
                         std::to_string(cp_size) + "]");
    if (dst == nullptr || src == nullptr) throw DialectError("cp.async: null address");
    const auto misaligned = [&](const void* p) { return reinterpret_cast<uintptr_t>(p) % cp_size != 0; };
    if (misaligned(dst) || misaligned(src))
      throw DialectError("cp.async: " + std::string(misaligned(dst) ? "destination" : "source") +
                         " not aligned to its cp-size " + std::to_string(cp_size));
    std::memset(dst, kPoison, static_cast<size_t>(cp_size));
    open_.push_back({static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), cp_size,
                     src_size});
  }

  // cp.async.commit_group: closes the open group (possibly empty: an empty group is complete at once).
  void commit() {
    committed_.push_back(std::move(open_));
    open_.clear();
  }

  // cp.async.wait_group n: performs the copies of every committed group but the n most recent.
  // Copies issued since the last commit belong to no group and stay pending (as in PTX).
  void wait(int n) {
    if (n < 0) throw DialectError("cp.async.wait_group: negative group count " + std::to_string(n));
    while (committed_.size() > static_cast<size_t>(n)) {
      for (const Copy& c : committed_.front()) {
        if (c.src_size > 0) std::memcpy(c.dst, c.src, static_cast<size_t>(c.src_size));
        std::memset(c.dst + c.src_size, 0, static_cast<size_t>(c.cp_size - c.src_size));
      }
      committed_.pop_front();
    }
  }

  // Groups committed and not yet retired by a wait (a kernel should end with none, nor open copies).
  size_t pending_groups() const { return committed_.size(); }
  size_t open_copies() const { return open_.size(); }

 private:
  struct Copy {
    unsigned char* dst;
    const unsigned char* src;
    int cp_size, src_size;
  };
  std::vector<Copy> open_;
  std::deque<std::vector<Copy>> committed_;  // oldest first
};

}  // namespace lf::emu
