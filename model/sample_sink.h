// Where a sampling session delivers its samples: the in-memory Profile for `record`,
// anything else (a daemon's rolling window) later. One virtual call per sample; a
// function is interned once per code object, so there is none per frame.
#pragma once
#include <cstdint>
#include <vector>

#include "model/sample.h"

namespace pyprofd {

class SampleSink {
 public:
  virtual ~SampleSink() = default;

  // A stable id for a function; StackFrame::function holds it.
  virtual uint32_t intern(const FunctionKey& key) = 0;

  // One sample of `frames` (root first, leaf last) standing for weight_ns of CPU or wall time.
  virtual void add(const SampleLabels& labels, const std::vector<StackFrame>& frames, uint64_t weight_ns) = 0;
};

}  // namespace pyprofd
