#include "tools/native_options.h"

namespace po = boost::program_options;

namespace pyprofd::cli {

void add_native_options(po::options_description& opts, std::string* pause) {
  // Switches that also read from the daemon's --config file ("native = true").
  opts.add_options()("native", po::bool_switch(), "also unwind each thread's native (C) stack and merge it with the Python frames")(
      "native-all", po::bool_switch(), "with --native: keep the interpreter's own call machinery and start-up frames")(
      "native-pause", po::value<std::string>(pause)->default_value("auto"),
      "with --native: never|auto|always stop a thread briefly (ptrace) to read its native stack; auto only "
      "where perf events are not allowed");
}

bool read_native_options(const po::variables_map& vm, const std::string& pause, NativeOptions* out,
                         std::string* error) {
  out->enabled = vm.count("native") && vm["native"].as<bool>();
  out->all = vm.count("native-all") && vm["native-all"].as<bool>();
  if (pause == "never") out->pause = NativePause::kNever;
  else if (pause == "auto") out->pause = NativePause::kAuto;
  else if (pause == "always") out->pause = NativePause::kAlways;
  else {
    *error = "--native-pause must be never, auto or always, not '" + pause + "'";
    return false;
  }
  if (!out->enabled && (out->all || !vm["native-pause"].defaulted())) {
    *error = "--native-all and --native-pause need --native";
    return false;
  }
  return true;
}

}  // namespace pyprofd::cli
