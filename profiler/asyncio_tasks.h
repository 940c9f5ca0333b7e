// asyncio tasks read from outside (C _asyncio.Task and pure-Python Task, any loop that
// registers them with asyncio: default loop, uvloop), and per-task stacks, yappi-style:
// each leaf task's await chain under the chains of the tasks awaiting it, the running
// task stitched onto its thread's real frames.
//
// 3.14: C tasks are in per-thread circular lists in the thread states (and the
// interpreter's, for finished threads); a thread state names its running C task.
// Where things are (3.8-3.13): asyncio.tasks._all_tasks (<=3.11) or _scheduled_tasks +
// _eager_tasks (3.12+) hold every task (the C module creates these objects and tasks.py
// imports them, so C and Python tasks land in the same ones); _current_tasks maps
// loop -> running task. A task's _fut_waiter says what it waits on (a task, or a future
// that some task's done callback completes: gather, shield, wait_for, TaskGroup); a
// suspended coroutine's "yield from" target is the top of its frame's value stack (_PyGen_yf).
//
// Reads are batched across tasks (one readv per step of every chain, neighbouring objects
// merged into one iovec), so a thousand tasks cost tens of system calls. Every pointer is
// untrusted: loops are capped, cycles cut, and a task that does not decode is dropped and
// counted, never a crash.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "profiler/asyncio_layout.h"
#include "profiler/layout.h"
#include "profiler/py_objects.h"
#include "profiler/remote_memory.h"
#include "profiler/span_batch.h"
#include "profiler/stack_walker.h"
#include "profiler/thread_reader.h"

namespace pyprofd {

enum class TaskState { kPending, kDone, kCancelled };

// Which tasks read_tasks follows into their await chains: every task (wall mode, dump),
// or only running ones and the tasks awaiting them (cpu mode samples nothing else).
enum class TaskScope { kAll, kRunning };

struct TaskInfo {
  uint64_t addr = 0;
  std::string name;
  TaskState state = TaskState::kPending;
  uint64_t loop = 0;
  uint64_t coro = 0;             // the task's coroutine object
  uint64_t coro_frame = 0;       // its outermost coroutine frame (matches RawFrame::frame on a thread stack)
  uint64_t fut_waiter = 0;       // what the task waits on (0: nothing)
  std::vector<RawFrame> chain;   // suspended await chain, innermost first: deepest awaited coroutine ... task's coroutine
  std::vector<size_t> awaits;    // indices of tasks this task waits on
  std::string awaiting;          // for display: a task's name, "gather", "sleep", "Future", ...
  bool running = false;          // some loop's current task
  uint64_t awaited_by = 0;       // 3.14+: the task awaiting this one, or a set of them
  bool awaited_by_set = false;
};

struct AsyncFrame {
  uint64_t code = 0;
  int32_t byte_offset = -1;
  int32_t task = -1;             // >= 0: a synthetic "<task NAME>" frame for tasks[task]
};

struct AsyncStack {
  size_t leaf = 0;               // index of the leaf task
  uint64_t native_thread = 0;    // thread running the task, or the thread running its loop; 0 = its loop is not running
  bool running = false;          // stitched onto the thread's real frames
  uint32_t paths = 1;            // stacks of this leaf (one per chain of awaiters): each weighs 1/paths
  std::vector<AsyncFrame> frames;  // innermost first
};

class AsyncioReader : public FrameHints {
 public:
  static constexpr size_t kMaxTasks = 100000;
  static constexpr size_t kMaxChainDepth = 256;    // coroutines per await chain
  static constexpr size_t kMaxTaskDepth = 256;     // tasks per stack
  static constexpr size_t kMaxPaths = 16;          // stacks per leaf task (chains of awaiters)
  static constexpr size_t kMaxStackFrames = 8192;  // frames in one task stack
  static constexpr size_t kStackPeek = 256;        // value-stack bytes read along with each frame
  static constexpr size_t kMaxPrefetch = 1 << 16;  // chain objects remembered for the next tick
  static constexpr size_t kMaxPrefetchBytes = 16 << 20;
  static constexpr int64_t kLoopRefreshNs = 200 * 1000 * 1000;

  // pid: the target whose mapped files may hold .AsyncioDebug (3.14+; 0: the table only).
  AsyncioReader(RemoteMemory& mem, const Layout& layout, uint64_t interp_state, pid_t pid = 0);
  // Tests: starts from `table` instead of the built-in one (e.g. a wrong one the section corrects).
  AsyncioReader(RemoteMemory& mem, const Layout& layout, uint64_t interp_state, pid_t pid, const AsyncioLayout& table);

  // The asyncio offsets in use (nullptr: none for this version) and where they came from:
  // "table", or ".AsyncioDebug in FILE" once the target's own section was applied.
  const AsyncioLayout* asyncio_layout_used() const { return al_; }
  const std::string& offsets_source() const { return offsets_source_; }

  // Every live task of the interpreter (kRunning: only running tasks and, up to their
  // roots, the tasks awaiting them). False only if the registries exist but cannot be read.
  // threads: this tick's thread list if the caller has one (3.14+ reads the per-thread
  // task lists of those thread states instead of walking the thread list again).
  bool read_tasks(std::vector<TaskInfo>* tasks, const std::vector<ThreadSample>* threads = nullptr,
                  TaskScope scope = TaskScope::kAll);

  // One stack per leaf task and chain of awaiters (a task awaited by two tasks is under
  // each, at half weight), innermost first:
  // leaf chain, <task LEAF>, awaiter chain, <task AWAITER>, ..., <task ROOT>; a running
  // leaf's part is its thread's frames down to the task's coroutine frame, and the
  // thread's outer frames (run_forever, ...) follow <task ROOT>. Threads with no running
  // task are left to the caller.
  void build_stacks(const std::vector<TaskInfo>& tasks, const std::vector<ThreadSample>& threads,
                    std::vector<AsyncStack>* out);

  // 3.14+ (for dump): finished tasks that pending ones still refer to, appended to tasks.
  // The per-thread lists drop a task once it is done, where 3.8-3.13's registries keep
  // every live task; these are the ones a suspended coroutine holds in its locals or
  // value stack, or a gather holds as children.
  void add_done_referenced(std::vector<TaskInfo>* tasks);

  // Reads last tick's await-chain objects now rather than in the next read_tasks (which
  // must follow in the same tick), so that the thread walk before it finds the frames
  // of tasks that were suspended then and run now among them (3.11+: a coroutine's frame
  // lives in it) instead of reading them one by one.
  void prefetch_before_threads();
  // Forgets an early prefetch that no read_tasks used (the tick ended before it).
  void drop_early_prefetch() { prefetched_early_ = false; }
  // FrameHints: a frame inside a coroutine object of this tick's prefetch.
  const uint8_t* frame(uint64_t addr, size_t len) const override;

  // Objects found in the registries that did not decode as tasks in the last read_tasks.
  size_t invalid_tasks() const { return invalid_; }
  // Task names of the last read_tasks that could not be read cleanly (shown as "?").
  size_t unreadable_names() const { return unreadable_names_; }

  // Which thread runs each event loop, from each thread state's running loop. Loops
  // start and stop rarely: re-read at most every kLoopRefreshNs unless force.
  void read_running_loops(const std::vector<ThreadSample>& threads, bool force = false);
  // Native id of the thread running loop (as of read_running_loops), 0 if none does.
  uint64_t loop_thread(uint64_t loop) const;

  // Executor threads running a work item that a task awaits (loop.run_in_executor);
  // build_stacks then puts each such thread's stack under the awaiting task.
  void read_executor_threads(const std::vector<ThreadSample>& threads);

 private:
  enum class Kind : uint8_t {
    kOther, kNone, kCTask, kPyTask, kGathering, kFuture, kCoro, kGen, kWeakref,
    kStr, kInt, kList, kTuple, kPartial, kFunction, kMethod, kCell,
  };
  struct TypeInfo {
    Kind kind = Kind::kOther;
    std::string name;  // tp_name without its module
  };
  struct Registries {
    bool resolved = false;
    uint64_t all_tasks = 0;    // the set inside the WeakSet (_all_tasks / _scheduled_tasks)
    uint64_t eager_tasks = 0;  // 3.12+: a plain set
    uint64_t current_tasks = 0;
    uint64_t c_task = 0, py_task = 0, gathering = 0, c_future = 0, py_future = 0;
  };

  // One coroutine of an await chain being followed.
  struct ChainItem {
    size_t task;
    uint64_t obj;
    uint64_t frame = 0;
    uint64_t tos_addr = 0;  // where the awaited object is
    uint64_t op_addr = 0;   // <=3.10: opcode byte; 3.11/3.12: the code unit after the yield; 0: no check
    uint64_t code = 0;
    uint64_t tos = 0;
    uint16_t op = 0;
    bool tos_read = false;  // tos comes from this level's own read
  };
  // State of one read_chains: the items of the current level and what was found.
  struct ChainWalk {
    std::vector<TaskInfo>* tasks;
    std::vector<std::pair<uint64_t, uint64_t>>* end;
    std::vector<std::vector<RawFrame>> frames;  // per task, outermost first
    std::vector<ChainItem> cur, live, next;
    std::vector<uint8_t> buf, fbuf;
    std::vector<uint64_t> addrs;
    std::vector<size_t> got;         // read_objects: bytes read of each object (0: not read)
    std::vector<size_t> remembered;  // its entry in chain_reads_next_ (SIZE_MAX: none)
    size_t depth = 0;
  };

  int resolve();
  void use_debug_section();  // 3.14+: the target's .AsyncioDebug over the table, once
  TypeInfo type_info(uint64_t type);  // a copy: the cache may be reset by the next call
  // Valid until the next call (the cache may be reset): compare it at once, no copy per frame.
  const std::string& code_name(uint64_t code);

  // read_tasks, step by step.
  bool registry_objects(std::vector<uint64_t>* objs);  // 1. registered task objects
  void thread_states(std::vector<uint64_t>* out);       // 3.14+: for the per-thread task lists
  void list_tasks(uint64_t head, std::vector<uint64_t>* out);
  void listed_tasks(std::vector<uint64_t>* out);
  bool next_node(uint64_t node, uint64_t* next);
  bool awaited_address(const uint8_t* frame_bytes, uint64_t frame, uint64_t* addr) const;
  // 2. Tasks decoded from their objects, with their name objects and done callbacks.
  void decode_tasks(const std::vector<uint64_t>& objs, std::vector<TaskInfo>* tasks, std::vector<uint64_t>* names,
                    std::vector<std::vector<uint64_t>>* callbacks);
  bool decode_c_task(const uint8_t* obj, TaskInfo* t, uint64_t* name, std::vector<uint64_t>* cbs);
  bool decode_py_task(TaskInfo* t, uint64_t* name, std::vector<uint64_t>* cbs);
  // The callables of a list of (callback, context) tuples.
  void callback_funcs(uint64_t list, std::vector<uint64_t>* cbs);
  void read_names(std::vector<TaskInfo>* tasks, const std::vector<uint64_t>& name_objs);
  // 3. What each task waits on: a task, or a future (typed by its chain's end).
  void link_waiters(std::vector<TaskInfo>* tasks, const std::vector<std::pair<uint64_t, uint64_t>>& chain_end,
                    const std::unordered_map<uint64_t, size_t>& index);
  void link_callbacks(std::vector<TaskInfo>* tasks, const std::vector<std::vector<uint64_t>>& callbacks,
                      const std::unordered_map<uint64_t, size_t>& index);
  struct Held {
    size_t task;   // whose callable
    uint64_t obj;  // the callable, or what it holds
  };
  uint64_t awaited_through(uint64_t work_item);
  std::vector<int64_t> executor_parents(const std::vector<TaskInfo>& tasks) const;
  void callback_holdings(const std::vector<Held>& cbs, std::vector<Held>* refs, std::vector<Held>* selves);
  // Children whose callbacks hold (refs, selves) the object a parent is suspended in a method of.
  void link_frame_owners(std::vector<TaskInfo>* tasks, const std::vector<Held>& refs, const std::vector<Held>& selves,
                         const std::unordered_map<uint64_t, size_t>& waiter_owner);
  static void add_await(std::vector<TaskInfo>* tasks, size_t waiter, size_t child);
  // 3.14+: the awaiters asyncio records itself (fut_awaited_by).
  void link_awaited_by(std::vector<TaskInfo>* tasks, const std::unordered_map<uint64_t, size_t>& index);
  // kRunning: drops every task that is neither running nor awaiting (through any number
  // of tasks) a running one, before their chains are read; drops nothing where an awaiter
  // can only be found through every task's frames (as_completed, Queue.get).
  // index: address -> position in tasks.
  void keep_running_lines(std::vector<TaskInfo>* tasks, std::vector<uint64_t>* names,
                          std::vector<std::vector<uint64_t>>* callbacks,
                          const std::unordered_map<uint64_t, size_t>& index);
  // The tasks found to await tasks[c] without reading any chain; false if one may hide.
  bool direct_awaiters(const std::vector<TaskInfo>& tasks, const std::vector<size_t>& level,
                       const std::vector<std::vector<uint64_t>>& callbacks,
                       const std::unordered_multimap<uint64_t, size_t>& waiting_on,
                       const std::unordered_map<uint64_t, size_t>& index, std::vector<size_t>* found);
  // 4. The running task of each loop.
  void mark_running(std::vector<TaskInfo>* tasks, const std::unordered_map<uint64_t, size_t>& index);

  // end[i]: the object task i's chain ends on (not a coroutine) and its type. remember_running:
  // the coroutines on this tick's thread stacks are prefetched next tick too (every task is read).
  void read_chains(std::vector<TaskInfo>* tasks, std::vector<std::pair<uint64_t, uint64_t>>* end,
                   bool remember_running);
  // read_chains, one level: the generators of w.cur, then (<=3.10) their frame objects,
  // then the awaited objects, which become w.next.
  void chain_generators(ChainWalk& w);
  void chain_frame_objects(ChainWalk& w);
  void chain_awaited(ChainWalk& w);
  void read_co_code(std::vector<uint64_t>* need_code);  // <=3.10: co_code_ for these code objects
  // Reads w.addrs (len bytes each, retrying failures with min bytes: an object at a
  // mapping's end) into out; w.ok says which were read. Prefetched objects cost nothing.
  void read_objects(ChainWalk& w, std::vector<uint8_t>* out, size_t len, size_t min);
  void prefetch_chains();
  void remember_running_coroutines();
  struct Prefetched {
    uint64_t addr;
    size_t offset, len;  // in prefetch_buf_
  };
  const Prefetched* prefetched(uint64_t addr) const;  // this tick's prefetch of the object at addr, or nullptr
  // Copies the prefetched bytes of addr (if their length is within [min, max]) to dst:
  // their length, or 0 if not prefetched.
  size_t from_prefetch(uint64_t addr, size_t min, size_t max, uint8_t* dst) const;
  // Prefetch len bytes at addr next tick.
  // Its index in chain_reads_next_ (SIZE_MAX when full).
  size_t remember_read(uint64_t addr, size_t len);
  // Shrinks what is prefetched of w.addrs[j] next tick to need bytes, within [min, max].
  void trim_remembered(const ChainWalk& w, size_t j, size_t need, size_t min, size_t max);
  void readv_merged(std::vector<ReadOp>* ops) { merged_.read(mem_, ops); }

  RemoteMemory& mem_;
  const Layout& l_;
  AsyncioLayout al_own_;     // the table, or the table corrected by the target's section
  const AsyncioLayout* al_;  // &al_own_, or nullptr: no asyncio layout for this version
  uint64_t interp_;
  pid_t pid_;
  bool section_tried_ = false;
  std::string offsets_source_ = "table";
  PyObjects objs_;
  Registries reg_;
  std::unordered_map<uint64_t, TypeInfo> types_;      // type address -> kind and name
  std::unordered_map<uint64_t, std::string> code_names_;
  std::unordered_map<uint64_t, uint64_t> co_code_;    // <=3.10: code -> co_code bytes
  std::unordered_map<uint64_t, bool> await_op_;       // instruction address -> "suspended in an await"
  size_t invalid_ = 0;
  size_t unreadable_names_ = 0;
  struct ExecutorRun {
    size_t thread, depth;  // the thread and its _WorkItem.run frame
    uint64_t future;       // the asyncio future a task awaits, completed by that work item
  };
  std::vector<ExecutorRun> executor_runs_;
  std::unordered_set<uint64_t> other_runs_;  // code of "run" methods whose self is no _WorkItem
  std::unordered_map<uint64_t, uint64_t> loop_threads_;  // loop -> native id of the thread running it
  int64_t loops_read_at_ = 0;                            // CLOCK_MONOTONIC ns; 0: never
  std::optional<uint64_t> modules_sig_;  // sys.modules when asyncio.tasks was last found missing
  std::vector<std::pair<uint64_t, size_t>> chain_reads_, chain_reads_next_;  // (address, length) per tick
  std::vector<Prefetched> prefetched_;  // sorted by address
  std::vector<ReadOp> prefetch_ops_;
  std::vector<uint8_t> prefetch_buf_;
  MergedReads merged_;
  std::vector<ReadOp> ops_;     // read_chains' reads of the current step
  std::vector<size_t> missed_;  // read_objects: which were not prefetched
  size_t hits_ = 0, misses_ = 0;  // chain objects from the prefetch / read level by level
  std::vector<uint64_t> tstates_;  // 3.14+: thread states of the last listed_tasks
  const std::vector<ThreadSample>* threads_ = nullptr;  // during read_tasks: the caller's thread list
  bool prefetched_early_ = false;                        // prefetch_before_threads ran this tick
  bool use_early_ = false;                               // this read_tasks uses it
  std::vector<uint64_t> nodes_;    // 3.14+: task list nodes the last walk saw (read in one batch next time)
  std::unordered_map<uint64_t, uint64_t> next_of_;  // 3.14+: node -> next, from this tick's batch
};

}  // namespace pyprofd
