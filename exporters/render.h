// Turning graph text into pictures, and the text handling the DOT and SVG
// writers share. render_with_dot runs graphviz's `dot` as a child process
// (fork/exec, no shell), so nothing in a profile reaches a command line.
#pragma once
#include <string>
#include <string_view>

#include "model/text.h"  // append_utf8, for the writers that use display_code_points

namespace pyprofd {

// Runs `dot -T<format>` on `dot_source` and puts the rendered bytes in *out.
// `format` is a graphviz output format name such as "png" or "svg" (letters,
// digits and ':' only). On failure returns false with a one-line *error: dot not
// installed ("graphviz's dot is not installed: apt-get install graphviz"), or
// dot's exit status and first line of stderr.
bool render_with_dot(const std::string& dot_source, const std::string& format, std::string* out,
                     std::string* error);

// Code points of `utf8` that are safe in DOT labels and XML text: invalid or
// overlong UTF-8, surrogates, U+FFFE/U+FFFF and control characters each become
// U+FFFD, so readers never reject or warn about a function name.
std::u32string display_code_points(std::string_view utf8);

}  // namespace pyprofd
