#include "simt/mode.h"

namespace lf::emu {
namespace {

// One per OS thread (see mode.h); a thread starts with the switch off.
thread_local Mode t_mode;

}  // namespace

Mode mode() { return t_mode; }

void set_mode(const Mode& m) { t_mode = m; }

}  // namespace lf::emu
