// Streams and events of runtime.h. Work queued on a stream (kernel launches, asynchronous copies
// and fills, cuBLASLt and NCCL calls) runs in the stream's order, but when it runs depends on the
// stream order (runtime.h): in kLatest, only when the program's synchronisation forces it, so that
// a missing wait reads memory the work has not written yet. Handles are checked on every use: a
// stream or event destroyed, or never created, is cudaErrorInvalidResourceHandle, as on a GPU.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/emulator/runtime.h"

// One queue of work. Positions count the operations ever queued: an operation at position p has
// run once `completed >= p`.
struct CUstream_st {
  struct Operation {
    std::function<void()> work;             // empty for a wait
    std::shared_ptr<CUstream_st> wait_for;  // a wait: run that stream up to `wait_position` first
    uint64_t wait_position = 0;
  };
  unsigned flags = 0;
  std::deque<Operation> queue;
  uint64_t queued = 0, completed = 0;
};

struct CUevent_st {
  unsigned flags = 0;
  // The most recent cudaEventRecord: the stream and its position then. Complete once that stream
  // has run that far.
  std::shared_ptr<CUstream_st> stream;
  uint64_t position = 0;
  // When the recorded point ran, for cudaEventElapsedTime; shared with the queued operation, which
  // may run after the event is destroyed.
  std::shared_ptr<std::chrono::steady_clock::time_point> when;
};

namespace {

using qwen3::emulator::StreamOrder;
using qwen3::emulator::detail::record_error;

StreamOrder order_from_environment() {
  const char* value = std::getenv("QWEN3_EMULATED_STREAM_ORDER");
  if (value == nullptr || std::strcmp(value, "latest") == 0) return StreamOrder::kLatest;
  if (std::strcmp(value, "eager") == 0) return StreamOrder::kEager;
  throw std::invalid_argument(std::string("QWEN3_EMULATED_STREAM_ORDER is '") + value +
                              "': it is 'latest' (the default) or 'eager'");
}

StreamOrder& current_order() {
  static StreamOrder order = order_from_environment();
  return order;
}

// Live streams by handle; the legacy default stream (the null handle) is one more, never
// destroyed.
std::map<const CUstream_st*, std::shared_ptr<CUstream_st>>& live_streams() {
  static std::map<const CUstream_st*, std::shared_ptr<CUstream_st>> all;
  return all;
}

const std::shared_ptr<CUstream_st>& legacy_stream() {
  static const std::shared_ptr<CUstream_st> legacy = std::make_shared<CUstream_st>();
  return legacy;
}

std::shared_ptr<CUstream_st> stream_of(cudaStream_t handle) {
  if (handle == nullptr) return legacy_stream();
  const auto found = live_streams().find(handle);
  return found == live_streams().end() ? nullptr : found->second;
}

std::set<const CUevent_st*>& live_events() {
  static std::set<const CUevent_st*> all;
  return all;
}

bool live_event(cudaEvent_t event) {
  return event != nullptr && live_events().count(event) > 0;
}

// Planted bugs (runtime.h): streams whose waits are dropped, and synchronisations to skip.
std::set<const CUstream_st*>& streams_without_waits() {
  static std::set<const CUstream_st*> all;
  return all;
}

std::map<const CUstream_st*, int>& synchronisations_to_skip() {
  static std::map<const CUstream_st*, int> all;
  return all;
}

// Runs `stream`'s queue up to `position`, first running whatever each wait names.
void run_through(CUstream_st& stream, uint64_t position) {
  while (stream.completed < position) {
    CUstream_st::Operation operation = std::move(stream.queue.front());
    stream.queue.pop_front();
    ++stream.completed;  // before running: work that throws (a faulting kernel) is not retried
    if (operation.wait_for) run_through(*operation.wait_for, operation.wait_position);
    if (operation.work) operation.work();
  }
}

void run_all(CUstream_st& stream) {
  run_through(stream, stream.queued);
}

void push(CUstream_st& stream, CUstream_st::Operation operation) {
  stream.queue.push_back(std::move(operation));
  ++stream.queued;
  if (current_order() == StreamOrder::kEager) run_all(stream);
}

void push_wait(CUstream_st& stream, const std::shared_ptr<CUstream_st>& other, uint64_t position) {
  if (other.get() == &stream || other->completed >= position) return;
  push(stream, {{}, other, position});
}

bool blocking(const CUstream_st& stream) {
  return (stream.flags & cudaStreamNonBlocking) == 0;
}

// The legacy default stream waits for every blocking stream's work queued so far, and a blocking
// stream waits for the legacy stream's; non-blocking streams wait for neither (the runtime's
// documented implicit synchronisation).
void add_implicit_waits(CUstream_st& stream) {
  const std::shared_ptr<CUstream_st>& legacy = legacy_stream();
  if (&stream == legacy.get()) {
    for (const auto& [handle, other] : live_streams())
      if (blocking(*other)) push_wait(stream, other, other->queued);
  } else if (blocking(stream)) {
    push_wait(stream, legacy, legacy->queued);
  }
}

}  // namespace

namespace qwen3::emulator {

bool is_live_stream(cudaStream_t stream) {
  return stream_of(stream) != nullptr;
}

void set_stream_order(StreamOrder order) {
  if (order == StreamOrder::kEager) run_all_queued_work();
  current_order() = order;
}

StreamOrder stream_order() {
  return current_order();
}

ScopedStreamOrder::ScopedStreamOrder(StreamOrder order) : saved_(stream_order()) {
  run_all_queued_work();
  set_stream_order(order);
}

ScopedStreamOrder::~ScopedStreamOrder() {
  run_all_queued_work();
  set_stream_order(saved_);
}

const char* stream_order_name(StreamOrder order) {
  return order == StreamOrder::kEager ? "eager" : "latest";
}

bool enqueue(cudaStream_t handle, std::function<void()> work) {
  const std::shared_ptr<CUstream_st> stream = stream_of(handle);
  if (!stream) return false;
  add_implicit_waits(*stream);
  push(*stream, {std::move(work), nullptr, 0});
  return true;
}

bool run_stream(cudaStream_t handle) {
  const std::shared_ptr<CUstream_st> stream = stream_of(handle);
  if (!stream) return false;
  run_all(*stream);
  return true;
}

void run_all_queued_work() {
  // Work may not queue more work, but a stream's run can finish another's: loop until all idle.
  bool ran = true;
  while (ran) {
    ran = false;
    for (const std::shared_ptr<CUstream_st>& stream : [] {
           std::vector<std::shared_ptr<CUstream_st>> all{legacy_stream()};
           for (const auto& [handle, s] : live_streams())
             all.push_back(s);
           return all;
         }()) {
      if (stream->completed < stream->queued) ran = true;
      run_all(*stream);
    }
  }
}

void plant_dropped_waits(cudaStream_t stream, bool drop) {
  if (drop)
    streams_without_waits().insert(stream);
  else
    streams_without_waits().erase(stream);
}

void plant_skipped_synchronisations(cudaStream_t stream, int count) {
  synchronisations_to_skip()[stream] = count;
}

size_t queued_operations() {
  size_t total = legacy_stream()->queue.size();
  for (const auto& [handle, stream] : live_streams())
    total += stream->queue.size();
  return total;
}

}  // namespace qwen3::emulator

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (stream == nullptr || (flags & ~cudaStreamNonBlocking) != 0)
    return record_error(cudaErrorInvalidValue);
  auto created = std::make_shared<CUstream_st>();
  created->flags = flags;
  *stream = created.get();
  live_streams().emplace(*stream, std::move(created));
  return cudaSuccess;
}

// The runtime lets a stream be destroyed with work still queued and finishes that work first; so
// does the emulator, at once (other streams may be waiting on it).
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  const auto found = stream == nullptr ? live_streams().end() : live_streams().find(stream);
  if (found == live_streams().end()) return record_error(cudaErrorInvalidResourceHandle);
  run_all(*found->second);
  live_streams().erase(found);
  return cudaSuccess;
}

// A polling loop must end: a query that finds work queued reports cudaErrorNotReady (without
// recording it as an error, as the runtime does) and the work then runs, as a GPU would get to it.
cudaError_t cudaStreamQuery(cudaStream_t handle) {
  const std::shared_ptr<CUstream_st> stream = stream_of(handle);
  if (!stream) return record_error(cudaErrorInvalidResourceHandle);
  if (stream->completed == stream->queued) return cudaSuccess;
  run_all(*stream);
  return cudaErrorNotReady;
}

cudaError_t cudaStreamSynchronize(cudaStream_t handle) {
  if (int& skip = synchronisations_to_skip()[handle];
      skip > 0 && qwen3::emulator::is_live_stream(handle)) {
    --skip;
    return cudaSuccess;
  }
  return qwen3::emulator::run_stream(handle) ? cudaSuccess
                                             : record_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaDeviceSynchronize() {
  qwen3::emulator::run_all_queued_work();
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t handle, cudaEvent_t event, unsigned flags) {
  const std::shared_ptr<CUstream_st> stream = stream_of(handle);
  if (!stream || !live_event(event)) return record_error(cudaErrorInvalidResourceHandle);
  if (flags != 0) return record_error(cudaErrorInvalidValue);
  if (streams_without_waits().count(handle) > 0) return cudaSuccess;
  // The event as recorded now: a later cudaEventRecord does not change what this waits for.
  if (event->stream) push_wait(*stream, event->stream, event->position);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  if (event == nullptr || (flags & ~(cudaEventBlockingSync | cudaEventDisableTiming)) != 0)
    return record_error(cudaErrorInvalidValue);
  *event = new CUevent_st{flags, nullptr, 0, nullptr};
  live_events().insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr || live_events().erase(event) == 0)
    return record_error(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t handle) {
  const std::shared_ptr<CUstream_st> stream = stream_of(handle);
  if (!live_event(event) || !stream) return record_error(cudaErrorInvalidResourceHandle);
  auto when = std::make_shared<std::chrono::steady_clock::time_point>();
  event->stream = stream;
  event->when = when;
  qwen3::emulator::enqueue(handle, [when] { *when = std::chrono::steady_clock::now(); });
  event->position = stream->queued;
  return cudaSuccess;
}

namespace {

bool event_complete(const CUevent_st& event) {
  return !event.stream || event.stream->completed >= event.position;
}

}  // namespace

// An event never recorded has captured no work, so it is complete. As cudaStreamQuery, a query of
// pending work says cudaErrorNotReady and lets the work run.
cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (!live_event(event)) return record_error(cudaErrorInvalidResourceHandle);
  if (event_complete(*event)) return cudaSuccess;
  run_through(*event->stream, event->position);
  return cudaErrorNotReady;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!live_event(event)) return record_error(cudaErrorInvalidResourceHandle);
  if (event->stream) run_through(*event->stream, event->position);
  return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return record_error(cudaErrorInvalidValue);
  if (!live_event(start) || !live_event(end)) return record_error(cudaErrorInvalidResourceHandle);
  // Events created with cudaEventDisableTiming, or never recorded, have no time to subtract.
  if ((start->flags | end->flags) & cudaEventDisableTiming)
    return record_error(cudaErrorInvalidResourceHandle);
  if (!start->stream || !end->stream) return record_error(cudaErrorInvalidResourceHandle);
  if (!event_complete(*start) || !event_complete(*end)) return record_error(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(*end->when - *start->when).count();
  return cudaSuccess;
}
