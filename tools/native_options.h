// --native, --native-all and --native-pause, shared by record and dump.
#pragma once
#include <boost/program_options.hpp>
#include <string>

#include "profiler/native_stacks.h"

namespace pyprofd::cli {

void add_native_options(boost::program_options::options_description& opts, std::string* pause);
// Fills *out from the parsed flags; false with *error (one line) for a bad --native-pause.
bool read_native_options(const boost::program_options::variables_map& vm, const std::string& pause,
                         NativeOptions* out, std::string* error);

}  // namespace pyprofd::cli
