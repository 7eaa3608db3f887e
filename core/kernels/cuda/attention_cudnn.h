#pragma once
// cuDNN's fused attention (cudnn-frontend's SDPA graphs) beside the project's own kernels
// (attention.h), with the same semantics and layouts: q[batch, seq, q_heads, head_dim], k, v
// [batch, seq, kv_heads, head_dim] read in place by strides (cuDNN's BSHD), causal, lse[batch,
// q_heads, seq] the natural-log log-sum-exp of the scaled scores; the backward deterministic.
// Graphs are built once per shape and cached; one workspace, grown as needed, serves every layer.
//
// Built where CMake found cuDNN and the frontend's headers (QWEN3_HAVE_CUDNN,
// attention_cudnn.cpp); elsewhere make_cudnn_attention says why there is none
// (attention_cudnn_absent.cpp). Document masking is not taken yet (cuDNN's ragged layout is the
// way): supports() refuses it, and callers run the project's kernels.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "core/kernels/cuda/attention.h"
#include "core/kernels/cuda/document_spans.h"

namespace qwen3::cuda {

class CudnnAttention {
 public:
  virtual ~CudnnAttention() = default;
  // "cudnn 9.25.0": the library's version at run time.
  virtual std::string name() const = 0;
  // Whether cuDNN takes this shape, building (once) the forward and backward graphs for it: dense
  // rows where `document_bucket` is 0, else the ragged layout with that many entries
  // (DocumentSpans::bucket). When not, `why_not` says why (the shape, the library's refusal).
  virtual bool supports(const AttentionDims& d, int64_t document_bucket, std::string* why_not) = 0;
  // The documents the following calls with `documents` mask by (spans of doc_ids[d.batch,
  // d.seq]): their lengths and offsets queued for upload on `stream`.
  virtual void set_documents(const AttentionDims& d, const DocumentSpans& spans,
                             cudaStream_t stream) = 0;
  // Shapes supports() accepted (with documents: at the bucket of the spans last set). Queued on
  // `stream`; the host never waits.
  virtual void forward(const AttentionDims& d, bool documents, const __nv_bfloat16* q,
                       const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out,
                       float* lse, cudaStream_t stream) = 0;
  virtual void backward(const AttentionDims& d, bool documents, const __nv_bfloat16* dout,
                        const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                        const __nv_bfloat16* out, const float* lse, __nv_bfloat16* dq,
                        __nv_bfloat16* dk, __nv_bfloat16* dv, cudaStream_t stream) = 0;
};

// Whether this build has cuDNN's attention (attention_cudnn.cpp rather than the absent stub).
bool cudnn_in_build();

// cuDNN's attention on the current device, or null with `why_not` set: the build has no cuDNN,
// the library is older than 9.25 (whose deterministic backward needs no S² workspace on Hopper),
// or it cannot start.
std::unique_ptr<CudnnAttention> make_cudnn_attention(std::string* why_not);

}  // namespace qwen3::cuda
