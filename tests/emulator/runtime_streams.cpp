// Streams and events of runtime.h. Work runs when it is issued, so every stream is always idle and
// every recorded event complete; what is checked is the handles: a stream or event used after it
// was destroyed, or never created, is cudaErrorInvalidResourceHandle, as on a GPU.
#include <chrono>
#include <set>

#include "tests/emulator/runtime.h"

struct CUstream_st {
  unsigned flags;
};

struct CUevent_st {
  unsigned flags;
  bool recorded = false;
  std::chrono::steady_clock::time_point when;
};

namespace {

using qwen3::emulator::detail::record_error;

std::set<const CUstream_st*>& live_streams() {
  static std::set<const CUstream_st*> all;
  return all;
}

std::set<const CUevent_st*>& live_events() {
  static std::set<const CUevent_st*> all;
  return all;
}

bool live_event(cudaEvent_t event) {
  return event != nullptr && live_events().count(event) > 0;
}

}  // namespace

bool qwen3::emulator::is_live_stream(cudaStream_t stream) {
  return stream == nullptr || live_streams().count(stream) > 0;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (stream == nullptr || (flags & ~cudaStreamNonBlocking) != 0)
    return record_error(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags};
  live_streams().insert(*stream);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  // The null stream cannot be destroyed; neither can a stream twice.
  if (stream == nullptr || live_streams().erase(stream) == 0)
    return record_error(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  return qwen3::emulator::is_live_stream(stream) ? cudaSuccess
                                                 : record_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags) {
  if (!qwen3::emulator::is_live_stream(stream) || !live_event(event))
    return record_error(cudaErrorInvalidResourceHandle);
  if (flags != 0) return record_error(cudaErrorInvalidValue);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  if (event == nullptr || (flags & ~(cudaEventBlockingSync | cudaEventDisableTiming)) != 0)
    return record_error(cudaErrorInvalidValue);
  *event = new CUevent_st{flags};
  live_events().insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr || live_events().erase(event) == 0)
    return record_error(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!live_event(event) || !qwen3::emulator::is_live_stream(stream))
    return record_error(cudaErrorInvalidResourceHandle);
  event->recorded = true;
  event->when = std::chrono::steady_clock::now();
  return cudaSuccess;
}

// An event never recorded has captured no work, so it is complete.
cudaError_t cudaEventQuery(cudaEvent_t event) {
  return live_event(event) ? cudaSuccess : record_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return live_event(event) ? cudaSuccess : record_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return record_error(cudaErrorInvalidValue);
  if (!live_event(start) || !live_event(end)) return record_error(cudaErrorInvalidResourceHandle);
  // Events created with cudaEventDisableTiming, or not yet recorded, have no time to subtract.
  if ((start->flags | end->flags) & cudaEventDisableTiming)
    return record_error(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return record_error(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}
