// What an op's launch logic (csrc/<op>/*_launch.h, shared by the CUDA and simt launchers) reports.
#pragma once

namespace lavin_fast {

// kUnsupported: the arguments are outside what the kernels take (the host checks first, with messages);
// kFailed: a launch itself failed (CUDA error; the emulator throws instead).
enum class LaunchStatus { kOk, kUnsupported, kFailed };

}  // namespace lavin_fast
