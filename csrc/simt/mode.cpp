#include "simt/mode.h"

#include <mutex>

namespace lf::emu {
namespace {

std::mutex g_mutex;
Mode g_mode;

}  // namespace

Mode mode() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_mode;
}

void set_mode(const Mode& m) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_mode = m;
}

}  // namespace lf::emu
